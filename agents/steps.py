"""Optional steps after aggregation: verify the answer, refine it with the verifier's critique."""

from __future__ import annotations

from dataclasses import dataclass

from agents.aggregators import AggregationContext, ExpertAnswer
from agents.llm_aggregators import ask

VERIFY_SYSTEM = (
    "You check answers. Read the question and the proposed answer. If the answer is correct and complete, "
    "reply with the single word CORRECT. Otherwise reply INCORRECT followed by one sentence saying what is wrong."
)
REFINE_SYSTEM = (
    "Improve the proposed answer to the question using the reviewer's feedback. Reply with the improved answer only."
)


@dataclass
class Verdict:
    passed: bool
    critique: str
    call: ExpertAnswer


def read_verdict(text: str) -> bool:
    """Passes only on an explicit CORRECT that is not INCORRECT: silence or rambling is not approval."""
    upper = text.upper()
    return "CORRECT" in upper and "INCORRECT" not in upper and "NOT CORRECT" not in upper


async def verify(ctx: AggregationContext, expert: str, answer: str) -> Verdict:
    user = f"Question:\n{ctx.question}\n\nProposed answer:\n{answer}\n\nVerdict:"
    reply = await ask(ctx, expert, VERIFY_SYSTEM, user, max_tokens=24)
    return Verdict(read_verdict(reply.text), reply.text, reply)


async def refine(ctx: AggregationContext, expert: str, answer: str, critique: str) -> ExpertAnswer:
    user = (
        f"Question:\n{ctx.question}\n\nProposed answer:\n{answer}\n\nReviewer feedback:\n{critique}\n\nImproved answer:"
    )
    return await ask(ctx, expert, REFINE_SYSTEM, user, ctx.request.max_tokens, stop=("Improved answer:",))
