"""The aggregate node's work: pick the aggregator a workflow names, run it, fall back if it fails."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from agents.aggregators import Aggregate, AggregationContext, Aggregator, fallback_for, get_aggregator
from agents.llm_aggregators import BestOf, Synthesis, named_aggregator
from agents.per_task import PerTask
from agents.runtime import Runtime
from agents.workflow_spec import AggregatorSpec
from agents.workflow_store import AggregatorChoice, AggregatorChoiceRepository
from core.db import session_scope
from core.errors import MoEError

if TYPE_CHECKING:
    from agents.graph import QueryState

log = logging.getLogger(__name__)


def load_choices(runtime: Runtime) -> dict[str, AggregatorChoice]:
    with session_scope(runtime.sessions) as session:
        return AggregatorChoiceRepository(session).all()


async def build_aggregator(runtime: Runtime, spec: AggregatorSpec | None, suggested: str) -> Aggregator:
    if spec is None:
        try:
            return named_aggregator(suggested)
        except MoEError:  # a name the router knows and this build does not: fuse by weight
            log.warning("unknown suggested aggregator %r; using pass-through", suggested)
            return get_aggregator("pass-through")
    if spec.type == "synthesis":
        return Synthesis(spec.expert, spec.max_tokens)
    if spec.type == "best-of":
        return BestOf(spec.judge)
    if spec.type == "per-task":
        return PerTask(await asyncio.to_thread(load_choices, runtime), spec.default, spec.expert)
    return get_aggregator(spec.type)


def _fallback(spec: AggregatorSpec | None, answers: list[Any], ctx: AggregationContext) -> Aggregator:
    wanted = getattr(spec, "fallback", "auto")
    return fallback_for(answers, ctx) if wanted == "auto" else get_aggregator(wanted)


async def run_aggregator(
    runtime: Runtime, state: QueryState, ctx: AggregationContext
) -> tuple[Aggregate, str, dict[str, str] | None]:
    """(result, the aggregator that produced it, what failed if a fallback was used)."""
    spec = state["workflow"].aggregator
    answers = state["answers"]
    aggregator = await build_aggregator(runtime, spec, state["decision"].aggregator)
    try:
        return await aggregator.aggregate(answers, ctx), aggregator.name, None
    except MoEError as exc:
        backup = _fallback(spec, answers, ctx)
        log.warning("aggregator %s failed (%s); falling back to %s", aggregator.name, exc.message, backup.name)
        note = {"from": aggregator.name, "to": backup.name, "reason": exc.message}
        return await backup.aggregate(answers, ctx), backup.name, note
