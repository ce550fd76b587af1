"""The `model` field names a target: `moe:auto`, `moe:<strategy>`, `moe:<workflow>`, or an expert's name."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from agents.runtime import Runtime
from agents.workflow_spec import WorkflowSpec
from agents.workflow_store import WorkflowRepository
from core.db import session_scope
from core.errors import NotFound
from router.router import STRATEGIES, parse_route_model

MOE_PREFIX = "moe:"
AUTO = "moe:auto"


@dataclass(frozen=True)
class Target:
    strategy: str | None = None
    expert: str | None = None
    workflow: WorkflowSpec | None = None

    def to_json(self) -> dict[str, Any]:
        """What a batch line stores: the workflow as it was when the job was submitted."""
        workflow = self.workflow.model_dump(mode="json") if self.workflow else None
        return {"strategy": self.strategy, "expert": self.expert, "workflow": workflow}


def resolve_model(model: str) -> Target:
    if model == AUTO:
        return Target()
    if model.startswith(MOE_PREFIX):
        strategy = model.removeprefix(MOE_PREFIX)
        try:
            # `moe:knn`, `moe:cost-0.3`, `moe:topp-0.8`, `moe:head-topk-2`: the router parses its own specs.
            parse_route_model(strategy)
        except NotFound:
            known = ", ".join([AUTO, *(MOE_PREFIX + s for s in sorted(STRATEGIES))])
            raise NotFound(
                f"unknown model '{model}' (routing models: {known}, {MOE_PREFIX}cost-<share>, "
                f"{MOE_PREFIX}topp-<p>, {MOE_PREFIX}<strategy>-topk-<k>)",
                param="model",
            ) from None
        return Target(strategy=strategy)
    return Target(expert=model)


def routing_models() -> list[str]:
    return [AUTO, *(MOE_PREFIX + s for s in sorted(STRATEGIES))]


def _stored_workflow(runtime: Runtime, name: str) -> WorkflowSpec | None:
    with session_scope(runtime.sessions) as session:
        found = WorkflowRepository(session).find(name)
    return found.spec() if found else None


def stored_workflows(runtime: Runtime) -> dict[str, WorkflowSpec]:
    with session_scope(runtime.sessions) as session:
        return {w.name: w.spec() for w in WorkflowRepository(session).list()}


def resolve(model: str, find_workflow: Callable[[str], WorkflowSpec | None]) -> Target:
    """Like `resolve_model`, but `moe:<name>` may also name a stored workflow (strategies win on a clash)."""
    try:
        return resolve_model(model)
    except NotFound:
        if not model.startswith(MOE_PREFIX):
            raise
    return _workflow_target(model, find_workflow)


async def resolve_target(model: str, runtime: Runtime) -> Target:
    try:
        return resolve_model(model)  # routing models and experts need no database read
    except NotFound:
        if not model.startswith(MOE_PREFIX):
            raise
    return await asyncio.to_thread(_workflow_target, model, partial(_stored_workflow, runtime))


def _workflow_target(model: str, find_workflow: Callable[[str], WorkflowSpec | None]) -> Target:
    spec = find_workflow(model.removeprefix(MOE_PREFIX))
    if spec is None:
        raise NotFound(
            f"unknown model '{model}': neither a routing model ({', '.join(routing_models())}) "
            "nor a stored workflow (see GET /admin/workflows)",
            param="model",
        )
    return Target(workflow=spec)
