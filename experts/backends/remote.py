"""Remote experts through litellm (any provider litellm speaks, or an OpenAI-compatible server)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.errors import UpstreamError
from experts.backends.base import CallOutcome
from experts.generation import ExpertCall, GenerationResult


class LiteLLMRunner:
    """Calls in a batch are independent HTTP requests, sent concurrently."""

    def __init__(self, timeout_s: float = 120.0, retries: int = 2, concurrency: int = 16) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="litellm")

    def run(self, calls: Sequence[ExpertCall]) -> list[CallOutcome]:
        return list(self._pool.map(self._one, calls))

    def _one(self, call: ExpertCall) -> CallOutcome:
        import litellm

        expert, request = call.expert, call.request
        kwargs: dict[str, Any] = {
            "model": expert.litellm_model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "timeout": self.timeout_s,
            "num_retries": self.retries,
        }
        if request.top_p < 1.0:
            kwargs["top_p"] = request.top_p
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if expert.api_base:
            kwargs["api_base"] = expert.api_base
        # OpenAI-compatible servers often need no key, but the client insists on one.
        key = os.environ.get(expert.api_key_env) if expert.api_key_env else None
        kwargs["api_key"] = key or "none"
        try:
            response = litellm.completion(**kwargs)
            choice = response.choices[0]
            usage = response.usage
            return GenerationResult(
                text=choice.message.content or "",
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                finish_reason="length" if choice.finish_reason == "length" else "stop",
            )
        except Exception as exc:  # litellm maps every provider's failure to its own exception types
            return UpstreamError(f"expert '{expert.name}' ({expert.litellm_model}) failed: {exc}")
