"""Batch jobs: route every line first, group the calls by expert, run the groups, aggregate, write the files.

Workers only run expert calls; routing and aggregation need the router and the aggregators, so the
job is driven from here. Every step reads and writes the database, so a job resumes where it stopped.
Lines whose model is a workflow (`moe:<name>`) run through the same graph as online queries, a chunk
at a time and beside the grouped lines; their expert calls go through the same executor, whose
micro-batcher groups them by expert.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agents.aggregators import ExpertAnswer, get_aggregator
from agents.completion import completion_body, completion_from_state
from agents.graph import QueryGraph, routing_text
from agents.runtime import Runtime
from agents.workflow_spec import WorkflowSpec
from core.errors import MoEError, NotFound
from experts.generation import ExpertCall
from experts.schemas import ExpertOut
from router.decision import ExpertScore, RoutingDecision
from workers.dispatch import BatchDispatcher
from workers.factory import make_dispatcher
from workers.models import BatchRequest, BatchResult
from workers.output import write_output
from workers.results import results_for
from workers.scheduler import STOPPED, BatchCall, group_calls, pool_key
from workers.store import BatchStore, LineOutcome
from workers.wire import error_to_json, request_from_json

log = logging.getLogger(__name__)


class BatchService:
    """Runs each batch job as one asyncio task in this process; expert calls go to the dispatcher."""

    def __init__(
        self, runtime: Runtime, dispatcher: BatchDispatcher | None = None, graph: QueryGraph | None = None
    ) -> None:
        self.runtime = runtime
        self.store = BatchStore(runtime.sessions)
        self.dispatcher = dispatcher or make_dispatcher(runtime.pool, runtime.sessions, runtime.settings)
        self.graph = graph or QueryGraph(runtime)
        self._jobs: dict[str, asyncio.Task[None]] = {}

    def start(self, batch_id: str) -> None:
        if batch_id not in self._jobs or self._jobs[batch_id].done():
            self._jobs[batch_id] = asyncio.create_task(self.run(batch_id), name=f"batch:{batch_id}")

    async def resume(self) -> list[str]:
        """Pick up the jobs a previous process left unfinished (their stored outcomes are kept)."""
        ids = await asyncio.to_thread(self.store.active_ids)
        for batch_id in ids:
            self.start(batch_id)
        return ids

    async def wait(self, batch_id: str) -> None:
        if batch_id in self._jobs:
            await asyncio.shield(self._jobs[batch_id])

    async def aclose(self) -> None:
        for job in self._jobs.values():
            job.cancel()
        await asyncio.gather(*self._jobs.values(), return_exceptions=True)
        await self.dispatcher.aclose()

    async def run(self, batch_id: str) -> None:
        try:
            await asyncio.to_thread(self._route_all, batch_id)
            calls = await asyncio.to_thread(self._pending_calls, batch_id)
            groups = group_calls(calls, pool_key(self.runtime.pool))
            is_stopped, aggregate = (lambda: self._stopped(batch_id)), (lambda: self._aggregate(batch_id))
            await asyncio.gather(
                self.dispatcher.run(batch_id, groups, is_stopped, aggregate), self._run_workflows(batch_id)
            )
            await self._aggregate(batch_id)
            stopped = await self._stopped(batch_id)
            if not stopped:
                await asyncio.to_thread(self.store.set_status, batch_id, "finalizing")
            await asyncio.to_thread(
                write_output, self.runtime.sessions, batch_id, "cancelled" if stopped else "completed"
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("batch %s failed", batch_id)
            await asyncio.to_thread(self.store.set_status, batch_id, "failed")

    async def _stopped(self, batch_id: str) -> bool:
        return await asyncio.to_thread(self.store.status, batch_id) in STOPPED

    def _route_all(self, batch_id: str) -> None:
        experts = self.runtime.enabled_experts()
        decisions = []
        for row in self.store.rows(batch_id, status="pending"):
            if _names_workflow(row):
                continue  # the graph routes these itself
            try:
                decision = self._route(row.request, experts)
                decisions.append((row.custom_id, decision.model_dump(), None))
            except MoEError as exc:
                decisions.append((row.custom_id, None, error_to_json(exc)))
        self.store.save_decisions(batch_id, decisions)

    def _route(self, request: dict[str, Any], experts: dict[str, ExpertOut]) -> RoutingDecision:
        target = request["target"]
        if target.get("expert"):
            name = target["expert"]
            if name not in experts:
                raise NotFound(f"the model '{name}' does not exist or is disabled", param="model")
            return RoutingDecision(strategy="direct", experts=[ExpertScore(name=name, score=1.0)], confidence=1.0)
        text = routing_text(request["messages"])
        return self.runtime.router.route(text, target.get("strategy"), int(request.get("k", 1)))

    async def _run_workflows(self, batch_id: str) -> None:
        """Workflow lines, a chunk at a time so a cancel stops them promptly; each chunk is saved as it ends."""
        rows = [r for r in await asyncio.to_thread(self.store.rows, batch_id, "pending") if _names_workflow(r)]
        size = self.runtime.settings.batch_chunk_size
        for start in range(0, len(rows), size):
            if await self._stopped(batch_id):
                return
            outcomes = await asyncio.gather(*(self._run_workflow(row) for row in rows[start : start + size]))
            await asyncio.to_thread(self.store.finish_lines, batch_id, outcomes)

    async def _run_workflow(self, row: BatchRequest) -> LineOutcome:
        # The workflow as it was when the job was submitted (stored with the line).
        workflow = WorkflowSpec.model_validate(row.request["target"]["workflow"])
        try:
            state = await self.graph.run(request_from_json(row.request), workflow=workflow)
        except MoEError as exc:
            return LineOutcome(row.custom_id, error=error_to_json(exc))
        except Exception as exc:  # one line's failure is that line's error, never the whole job's
            log.exception("batch line %s failed in workflow %s", row.custom_id, row.request["model"])
            failure = MoEError(f"the workflow failed: {exc!r}", param="model", code="workflow_failed")
            return LineOutcome(row.custom_id, error=error_to_json(failure))
        return LineOutcome(row.custom_id, response=completion_from_state(row.request["model"], state))

    def _pending_calls(self, batch_id: str) -> list[BatchCall]:
        experts = self.runtime.enabled_experts()
        calls, lost = [], []
        for row in self.store.rows(batch_id, status="routed"):
            names = [e["name"] for e in row.decision["experts"]] if row.decision else []
            if any(n not in experts for n in names):
                missing = NotFound(f"expert(s) {names} were disabled or removed mid-batch", param="model")
                lost.append(LineOutcome(row.custom_id, error=error_to_json(missing)))
                continue
            request = request_from_json(row.request)
            calls.extend(BatchCall(row.custom_id, ExpertCall(experts[n], request)) for n in names)
        self.store.finish_lines(batch_id, lost)
        return calls

    async def _aggregate(self, batch_id: str) -> None:
        """Fuse every line whose experts all answered, one aggregator group at a time."""
        ready = await asyncio.to_thread(self._ready_lines, batch_id)
        by_aggregator: dict[str, list[tuple[BatchRequest, list[BatchResult]]]] = {}
        for row, results in ready:
            by_aggregator.setdefault(row.decision["aggregator"], []).append((row, results))
        outcomes: list[LineOutcome] = []
        for name, items in by_aggregator.items():
            outcomes.extend(await asyncio.gather(*(self._fuse(name, row, results) for row, results in items)))
        await asyncio.to_thread(self.store.finish_lines, batch_id, outcomes)

    def _ready_lines(self, batch_id: str) -> list[tuple[BatchRequest, list[BatchResult]]]:
        rows = self.store.rows(batch_id, status="routed")
        with self.runtime.sessions() as session:
            found = results_for(session, batch_id, [r.custom_id for r in rows])
            session.expunge_all()
        return [(r, found[r.custom_id]) for r in rows if len(found[r.custom_id]) >= len(r.decision["experts"])]

    async def _fuse(self, aggregator_name: str, row: BatchRequest, results: list[BatchResult]) -> LineOutcome:
        answered = [r for r in results if r.error is None]
        if not answered:
            return LineOutcome(row.custom_id, error=results[0].error)
        decision = RoutingDecision.model_validate(row.decision)
        weights = {e.name: e.score for e in decision.experts}
        answers = [
            ExpertAnswer(r.expert_id, weights.get(r.expert_id, 0.0), r.text, r.prompt_tokens, r.completion_tokens,
                         r.finish_reason, 0.0)
            for r in answered
        ]  # fmt: skip
        try:
            aggregator = get_aggregator(aggregator_name)
            fused = await aggregator.aggregate(answers, decision)
        except MoEError as exc:
            return LineOutcome(row.custom_id, error=error_to_json(exc))
        decision.aggregator = aggregator.name
        response = completion_body(row.request["model"], fused.text, fused.finish_reason, answers, decision)
        return LineOutcome(row.custom_id, response=response)


def _names_workflow(row: BatchRequest) -> bool:
    return bool(row.request["target"].get("workflow"))
