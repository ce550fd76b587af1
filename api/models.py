"""The `model` field names a target: `moe:auto`, `moe:<strategy>`, or an expert's name."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import NotFound
from router.router import STRATEGIES

MOE_PREFIX = "moe:"
AUTO = "moe:auto"


@dataclass(frozen=True)
class Target:
    strategy: str | None = None
    expert: str | None = None


def resolve_model(model: str) -> Target:
    if model == AUTO:
        return Target()
    if model.startswith(MOE_PREFIX):
        strategy = model.removeprefix(MOE_PREFIX)
        if strategy in STRATEGIES:
            return Target(strategy=strategy)
        known = ", ".join([AUTO, *(MOE_PREFIX + s for s in sorted(STRATEGIES))])
        raise NotFound(f"unknown model '{model}' (routing models: {known})", param="model")
    return Target(expert=model)


def routing_models() -> list[str]:
    return [AUTO, *(MOE_PREFIX + s for s in sorted(STRATEGIES))]
