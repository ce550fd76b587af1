"""Fusing k expert answers into one. More aggregators plug in behind the same Protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from router.decision import RoutingDecision


@dataclass
class ExpertAnswer:
    expert: str
    weight: float
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    elapsed_ms: float


@dataclass
class Aggregate:
    text: str
    finish_reason: str
    detail: dict[str, object]


class Aggregator(Protocol):
    name: str

    async def aggregate(self, answers: list[ExpertAnswer], decision: RoutingDecision) -> Aggregate: ...


class PassThrough:
    """k = 1, or "take the best-weighted answer" when several came back."""

    name = "pass-through"

    async def aggregate(self, answers: list[ExpertAnswer], decision: RoutingDecision) -> Aggregate:
        best = max(answers, key=lambda a: a.weight)
        return Aggregate(best.text, best.finish_reason, {"chosen": best.expert})


AGGREGATORS: dict[str, Aggregator] = {PassThrough.name: PassThrough()}


def get_aggregator(name: str) -> Aggregator:
    # Aggregators not built yet fall back to pass-through; the trace names the one actually used.
    return AGGREGATORS.get(name, AGGREGATORS[PassThrough.name])
