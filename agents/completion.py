"""The chat.completion body with its `routing` object, shared by online queries and batch lines."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from openai.types.chat import ChatCompletion
from openai.types.completion_usage import CompletionUsage

from agents.aggregators import ExpertAnswer
from agents.graph import QueryState
from router.decision import RoutingDecision


def completion_body(
    model: str,
    text: str,
    finish_reason: str,
    answers: Sequence[ExpertAnswer],
    decision: RoutingDecision,
    *,
    extra_calls: Sequence[ExpertAnswer] = (),
    nodes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`extra_calls` (aggregator and step calls) cost tokens too, so they count in `usage`."""
    billed = [*answers, *extra_calls]
    prompt = sum(a.prompt_tokens for a in billed)
    generated = sum(a.completion_tokens for a in billed)
    body = ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        object="chat.completion",
        created=int(time.time()),
        model=model,
        choices=[{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        usage=CompletionUsage(prompt_tokens=prompt, completion_tokens=generated, total_tokens=prompt + generated),
    )
    routing: dict[str, Any] = {
        **decision.model_dump(),
        "answers": [
            {"expert": a.expert, "weight": a.weight, "completion_tokens": a.completion_tokens, "ms": a.elapsed_ms}
            for a in answers
        ],
    }
    if nodes is not None:
        routing["nodes"] = nodes
    return {**body.model_dump(exclude_none=True), "routing": routing}


def completion_from_state(model: str, state: QueryState) -> dict[str, Any]:
    """The body for a query the graph has run: its trace lists every node."""
    result = state["result"]
    return completion_body(
        model, result.text, result.finish_reason, state["answers"], state["decision"],
        extra_calls=state.get("calls", []), nodes=state["nodes"],
    )  # fmt: skip
