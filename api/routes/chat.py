"""POST /v1/chat/completions: OpenAI's shape, plus a `routing` object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from openai.types.chat import ChatCompletionChunk
from sse_starlette.sse import EventSourceResponse

from agents.completion import completion_from_state
from api.deps import GraphDep, RuntimeDep
from api.models import resolve_target
from api.schemas import ChatCompletionRequest
from core.errors import InvalidRequest
from core.settings import Settings
from experts.generation import GenerationRequest

router = APIRouter(tags=["chat"])


def generation_request(body: ChatCompletionRequest, settings: Settings) -> GenerationRequest:
    max_tokens = body.max_completion_tokens or body.max_tokens or settings.default_max_tokens
    if max_tokens > settings.max_tokens_limit:
        raise InvalidRequest(
            f"max_tokens is {max_tokens}; the most this server allows is {settings.max_tokens_limit}",
            param="max_tokens",
        )
    return GenerationRequest(
        messages=[{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages],
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=tuple(body.stop or ()),
    )


async def _chunks(body: dict[str, Any]) -> AsyncIterator[str]:
    base = {
        "id": body["id"],
        "object": "chat.completion.chunk",
        "created": body["created"],
        "model": body["model"],
    }
    choice = body["choices"][0]
    deltas = [
        {"index": 0, "delta": {"role": "assistant", "content": ""}},
        {"index": 0, "delta": {"content": choice["message"]["content"]}},
        {"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]},
    ]
    for i, delta in enumerate(deltas):
        chunk = ChatCompletionChunk(**base, choices=[delta]).model_dump(exclude_none=True)
        if i == len(deltas) - 1:
            chunk["routing"] = body["routing"]
            chunk["usage"] = body["usage"]
        yield ChatCompletionChunk.model_validate(chunk).model_dump_json(exclude_none=True)
    yield "[DONE]"


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, runtime: RuntimeDep, graph: GraphDep, http: Request) -> Any:
    target = await resolve_target(body.model, runtime)
    request = generation_request(body, runtime.settings)
    state = await graph.run(request, strategy=target.strategy, expert=target.expert, k=body.k, workflow=target.workflow)
    metrics = http.app.state.metrics
    for answer in state["answers"]:
        metrics.expert_calls.labels(answer.expert, state["decision"].strategy).inc()
        metrics.tokens.labels(answer.expert).inc(answer.completion_tokens)
    completion = completion_from_state(body.model, state)
    if body.stream:
        return EventSourceResponse(_chunks(completion))
    return completion
