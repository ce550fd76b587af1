"""The online path as a LangGraph StateGraph: route -> call experts (in parallel) -> aggregate."""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from agents.aggregators import Aggregate, ExpertAnswer, get_aggregator
from agents.runtime import Runtime
from core.errors import NotFound
from experts.generation import ExpertCall, GenerationRequest, Message
from experts.schemas import ExpertOut
from router.decision import ExpertScore, RoutingDecision


class QueryState(TypedDict, total=False):
    request: GenerationRequest
    strategy: str | None
    expert: str | None
    k: int
    experts: dict[str, ExpertOut]
    decision: RoutingDecision
    answers: list[ExpertAnswer]
    result: Aggregate
    nodes: list[dict[str, Any]]


def routing_text(messages: list[Message]) -> str:
    """The router reads the last user turn: that is what the caller is asking now."""
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


def _node_record(name: str, started: float, **detail: Any) -> dict[str, Any]:
    return {"node": name, "ms": round((time.perf_counter() - started) * 1e3, 3), **detail}


class QueryGraph:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        graph = StateGraph(QueryState)
        graph.add_node("route", self._route)
        graph.add_node("call_experts", self._call_experts)
        graph.add_node("aggregate", self._aggregate)
        graph.add_edge(START, "route")
        graph.add_edge("route", "call_experts")
        graph.add_edge("call_experts", "aggregate")
        graph.add_edge("aggregate", END)
        self.graph = graph.compile()

    async def run(
        self,
        request: GenerationRequest,
        *,
        strategy: str | None = None,
        expert: str | None = None,
        k: int = 1,
    ) -> QueryState:
        state: QueryState = {"request": request, "strategy": strategy, "expert": expert, "k": k, "nodes": []}
        return await self.graph.ainvoke(state)  # type: ignore[return-value]

    async def _route(self, state: QueryState) -> dict[str, Any]:
        started = time.perf_counter()
        experts = await asyncio.to_thread(self.runtime.enabled_experts)
        if state.get("expert"):
            name = str(state["expert"])
            if name not in experts:
                raise NotFound(f"the model '{name}' does not exist or is disabled", param="model")
            decision = RoutingDecision(strategy="direct", experts=[ExpertScore(name=name, score=1.0)], confidence=1.0)
        else:
            text = routing_text(state["request"].messages)
            decision = await asyncio.to_thread(self.runtime.router.route, text, state.get("strategy"), state["k"])
        decision.timings_ms["route"] = (time.perf_counter() - started) * 1e3
        record = _node_record("route", started, experts=decision.expert_names)
        return {"decision": decision, "experts": experts, "nodes": [*state["nodes"], record]}

    async def _call_experts(self, state: QueryState) -> dict[str, Any]:
        started = time.perf_counter()
        experts, decision = state["experts"], state["decision"]

        async def call(choice: ExpertScore) -> ExpertAnswer:
            t0 = time.perf_counter()
            result = await self.runtime.executor.submit(ExpertCall(experts[choice.name], state["request"]))
            return ExpertAnswer(
                expert=choice.name,
                weight=choice.score,
                text=result.text,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                finish_reason=result.finish_reason,
                elapsed_ms=(time.perf_counter() - t0) * 1e3,
            )

        answers = await asyncio.gather(*(call(c) for c in decision.experts))
        decision.timings_ms["generate"] = (time.perf_counter() - started) * 1e3
        record = _node_record("call_experts", started, answers={a.expert: a.text for a in answers})
        return {"answers": list(answers), "nodes": [*state["nodes"], record]}

    async def _aggregate(self, state: QueryState) -> dict[str, Any]:
        started = time.perf_counter()
        decision = state["decision"]
        aggregator = get_aggregator(decision.aggregator)
        result = await aggregator.aggregate(state["answers"], decision)
        decision.aggregator = aggregator.name
        decision.timings_ms["aggregate"] = (time.perf_counter() - started) * 1e3
        record = _node_record("aggregate", started, aggregator=aggregator.name, **result.detail)
        return {"result": result, "nodes": [*state["nodes"], record]}
