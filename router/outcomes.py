"""Outcomes: how well an expert answered a query (feedback, imported evaluations). In-memory view."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Outcome:
    query: str
    expert: str
    score: float  # 1.0 right / best, 0.0 wrong / worst
    skills: tuple[str, ...] = ()
    query_id: str | None = None


@dataclass
class OutcomeLog:
    """The outcomes strategies learn from; appended to online by feedback."""

    items: list[Outcome] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: Outcome) -> None:
        with self._lock:
            self.items.append(outcome)

    def extend(self, outcomes: Iterable[Outcome]) -> None:
        with self._lock:
            self.items.extend(outcomes)

    def __iter__(self) -> Iterator[Outcome]:
        return iter(list(self.items))

    def __len__(self) -> int:
        return len(self.items)

    def experts(self) -> list[str]:
        return sorted({o.expert for o in self.items})
