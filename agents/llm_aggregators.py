"""Aggregators that ask a model: LLM synthesis (Mixture-of-Agents style) and best-of by a judge.

Both call their expert through the graph's `CallExpert`, i.e. through the workers' executor.
A failure raises; the graph then falls back (majority vote or pass-through) and says so.
"""

from __future__ import annotations

import re
import time

from agents.aggregators import Aggregate, AggregationContext, Aggregator, ExpertAnswer, get_aggregator
from core.errors import InvalidRequest, MoEError, UpstreamError
from experts.generation import GenerationRequest, GenerationResult

SYNTHESIS_SYSTEM = (
    "You have been given responses from different models to the user's latest question. "
    "Synthesize them into one accurate answer. Some responses may be wrong: judge them critically, "
    "do not simply copy one. Reply with the answer only."
)
JUDGE_SYSTEM = (
    "You are a strict judge. Several models answered the same question. "
    "Reply with the number of the best response and nothing else."
)


def labelled_responses(answers: list[ExpertAnswer]) -> str:
    return "\n\n".join(f"Response from model {i} ({a.expert}):\n{a.text}" for i, a in enumerate(answers, 1))


def _record(expert: str, result: GenerationResult, started: float) -> ExpertAnswer:
    return ExpertAnswer(
        expert=expert,
        weight=0.0,
        text=result.text,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        finish_reason=result.finish_reason,
        elapsed_ms=(time.perf_counter() - started) * 1e3,
    )


async def ask(
    ctx: AggregationContext, expert: str, system: str, user: str, max_tokens: int, stop: tuple[str, ...] = ()
) -> ExpertAnswer:
    if ctx.call is None:
        raise MoEError("this aggregator needs to call an expert, and no executor was given")
    request = GenerationRequest(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        max_tokens=max_tokens,
        stop=stop,
    )
    started = time.perf_counter()
    return _record(expert, await ctx.call(expert, request), started)


def top_expert(answers: list[ExpertAnswer]) -> str:
    return max(answers, key=lambda a: a.weight).expert


class Synthesis:
    """A chosen expert reads the k answers, each labelled as a different model's response, and writes one."""

    name = "synthesis"

    def __init__(self, expert: str | None = None, max_tokens: int | None = None) -> None:
        self.expert = expert
        self.max_tokens = max_tokens

    async def aggregate(self, answers: list[ExpertAnswer], ctx: AggregationContext) -> Aggregate:
        expert = self.expert or top_expert(answers)
        user = f"Question:\n{ctx.question}\n\n{labelled_responses(answers)}\n\nYour synthesized answer:"
        # Small models echo the prompt's cues; cut there rather than return them as the answer.
        stop = ("Your synthesized answer:", "Response from model")
        reply = await ask(ctx, expert, SYNTHESIS_SYSTEM, user, self.max_tokens or ctx.request.max_tokens, stop)
        if not reply.text.strip():
            raise UpstreamError(f"the synthesis expert '{expert}' returned an empty answer")
        return Aggregate(reply.text, reply.finish_reason, {"synthesizer": expert}, extra_calls=[reply])


class BestOf:
    """A judge expert names the best of the k answers; that answer is returned unchanged."""

    name = "best-of"

    def __init__(self, judge: str) -> None:
        self.judge = judge

    async def aggregate(self, answers: list[ExpertAnswer], ctx: AggregationContext) -> Aggregate:
        user = f"Question:\n{ctx.question}\n\n{labelled_responses(answers)}\n\nThe best response is number:"
        reply = await ask(ctx, self.judge, JUDGE_SYSTEM, user, max_tokens=8)
        pick = re.search(r"\d+", reply.text)
        if pick is None or not 1 <= int(pick.group()) <= len(answers):
            raise UpstreamError(f"the judge '{self.judge}' did not name a response 1-{len(answers)}: {reply.text!r}")
        best = answers[int(pick.group()) - 1]
        detail = {"judge": self.judge, "chosen": best.expert, "verdict": reply.text}
        return Aggregate(best.text, best.finish_reason, detail, extra_calls=[reply])


def named_aggregator(name: str, expert: str | None = None) -> Aggregator:
    """Any aggregator by name; `expert` is the synthesizer or the judge for the two that ask a model."""
    if name == Synthesis.name:
        return Synthesis(expert)
    if name == BestOf.name:
        if expert is None:
            raise InvalidRequest("best-of needs a judge expert", param="aggregator.judge")
        return BestOf(expert)
    return get_aggregator(name, strict=True)
