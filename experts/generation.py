"""What an expert is asked to do and what it gives back, independent of the backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from experts.schemas import ExpertOut

Message = dict[str, str]


@dataclass(frozen=True)
class GenerationRequest:
    messages: list[Message]
    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"] = "stop"
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ExpertCall:
    """One request bound for one expert; several calls may share one batch."""

    expert: ExpertOut
    request: GenerationRequest


def apply_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Cut `text` at the first stop string; say whether one was found."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
