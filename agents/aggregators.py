"""Fusing k expert answers into one, behind one Protocol.

Aggregators that ask a model (synthesis, best-of) live in `agents.llm_aggregators`; the
Symbolic-MoE per-task choice in `agents.per_task`. `build_aggregator` turns a workflow's
aggregator spec into an instance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from agents.answers import closed_answer
from core.errors import InvalidRequest
from experts.generation import GenerationRequest, GenerationResult
from router.decision import RoutingDecision

# Runs one expert by name through the workers' executor (the graph supplies it).
CallExpert = Callable[[str, GenerationRequest], Awaitable[GenerationResult]]


@dataclass
class ExpertAnswer:
    expert: str
    weight: float
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    elapsed_ms: float = 0.0


@dataclass
class Aggregate:
    text: str
    finish_reason: str
    detail: dict[str, object] = field(default_factory=dict)
    extra_calls: list[ExpertAnswer] = field(default_factory=list)


@dataclass
class AggregationContext:
    """What an aggregator may look at besides the answers: the question, the routing, a way to call experts."""

    request: GenerationRequest
    decision: RoutingDecision
    call: CallExpert | None = None
    task: str | None = None

    @property
    def question(self) -> str:
        return next((m["content"] for m in reversed(self.request.messages) if m["role"] == "user"), "")


def as_context(ctx: AggregationContext | RoutingDecision) -> AggregationContext:
    """Callers that only have a decision (batch jobs) get a context without a question or an expert caller."""
    if isinstance(ctx, RoutingDecision):
        return AggregationContext(GenerationRequest(messages=[]), ctx)
    return ctx


class Aggregator(Protocol):
    name: str

    async def aggregate(self, answers: list[ExpertAnswer], ctx: AggregationContext) -> Aggregate: ...


class PassThrough:
    """k = 1, or "take the best-weighted answer" when several came back."""

    name = "pass-through"

    async def aggregate(self, answers: list[ExpertAnswer], ctx: AggregationContext | RoutingDecision) -> Aggregate:
        best = max(answers, key=lambda a: a.weight)
        return Aggregate(best.text, best.finish_reason, {"chosen": best.expert})


class MajorityVote:
    """The most common closed answer (choice letter or final number); ties go to the larger routing weight.

    Answers with no closed answer do not vote. When none has one, the best-weighted answer is
    returned and the detail says the vote was empty.
    """

    name = "majority-vote"

    async def aggregate(self, answers: list[ExpertAnswer], ctx: AggregationContext | RoutingDecision) -> Aggregate:
        question = as_context(ctx).question
        votes: dict[str, list[ExpertAnswer]] = defaultdict(list)
        for answer in answers:
            key = closed_answer(answer.text, question)
            if key is not None:
                votes[key].append(answer)
        if not votes:
            best = max(answers, key=lambda a: a.weight)
            return Aggregate(best.text, best.finish_reason, {"chosen": best.expert, "votes": {}, "empty_vote": True})
        winner = max(votes, key=lambda key: (len(votes[key]), sum(a.weight for a in votes[key])))
        best = max(votes[winner], key=lambda a: a.weight)
        tally = {key: len(group) for key, group in votes.items()}
        return Aggregate(best.text, best.finish_reason, {"chosen": best.expert, "answer": winner, "votes": tally})


SIMPLE: dict[str, type[PassThrough] | type[MajorityVote]] = {
    PassThrough.name: PassThrough,
    MajorityVote.name: MajorityVote,
}


def get_aggregator(name: str, *, strict: bool = False) -> Aggregator:
    """Aggregators that need no configuration, by name (what the router's decision names).

    A name this build does not know falls back to pass-through unless `strict`; the trace names
    the aggregator actually used.
    """
    if name not in SIMPLE:
        if strict:
            known = ", ".join(sorted(SIMPLE))
            raise InvalidRequest(f"unknown aggregator '{name}' (known: {known})", param="aggregator")
        return PassThrough()
    return SIMPLE[name]()


def fallback_for(answers: list[ExpertAnswer], ctx: AggregationContext) -> Aggregator:
    """When an aggregator fails: vote if the answers are closed, else take the best-weighted one."""
    if len(answers) > 1 and any(closed_answer(a.text, ctx.question) for a in answers):
        return MajorityVote()
    return PassThrough()
