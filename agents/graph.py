"""The online path as a LangGraph StateGraph: route -> experts (in parallel) -> aggregate -> [verify/refine].

A workflow definition (agents.workflow_spec) decides the routing parameters, the aggregator and
the optional steps; the plain `moe:auto` path is the same graph with the default definition.
Every node appends a record (inputs, outputs, ms) to `state["nodes"]`: that list is the trace.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any, TypedDict, TypeVar

from langgraph.graph import END, START, StateGraph

from agents.aggregators import Aggregate, AggregationContext, ExpertAnswer
from agents.dispatch import apply_routing, fixed_decision, overrides_dispatch
from agents.graph_aggregate import run_aggregator
from agents.runtime import Runtime
from agents.steps import refine, verify
from agents.workflow_spec import MAX_ROUNDS, RefineStep, Step, VerifyStep, WorkflowSpec
from agents.workflow_store import check_references
from core.errors import InvalidRequest, NotFound
from experts.generation import ExpertCall, GenerationRequest, GenerationResult, Message
from experts.schemas import ExpertOut
from router.decision import ExpertScore, RoutingDecision

DEFAULT_WORKFLOW = WorkflowSpec(name="auto")


class QueryState(TypedDict, total=False):
    request: GenerationRequest
    workflow: WorkflowSpec
    strategy: str | None
    expert: str | None
    k: int
    experts: dict[str, ExpertOut]
    decision: RoutingDecision
    answers: list[ExpertAnswer]
    calls: list[ExpertAnswer]  # extra expert calls made by the aggregator and the steps (usage counts them)
    result: Aggregate
    passed: bool
    critique: str
    rounds: dict[str, int]
    nodes: list[dict[str, Any]]


def routing_text(messages: list[Message]) -> str:
    """The router reads the last user turn: that is what the caller is asking now."""
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def node_record(name: str, started: float, inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    return {"node": name, "ms": round((time.perf_counter() - started) * 1e3, 3), "inputs": inputs, "outputs": outputs}


def step_node(step: Step) -> str:
    return f"{step.type}.{step.id}"


class QueryGraph:
    """Compiles one StateGraph per distinct step layout and runs queries through it."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._compiled: dict[tuple[Any, ...], Any] = {}
        self.graph = self._compile(DEFAULT_WORKFLOW)

    async def run(
        self,
        request: GenerationRequest,
        *,
        strategy: str | None = None,
        expert: str | None = None,
        k: int = 1,
        workflow: WorkflowSpec | None = None,
    ) -> QueryState:
        spec = workflow or DEFAULT_WORKFLOW
        state: QueryState = {
            "request": request,
            "workflow": spec,
            "strategy": strategy or spec.routing.strategy,
            "expert": expert,
            "k": spec.routing.k if workflow else k,
            "calls": [],
            "rounds": {},
            "nodes": [],
        }
        limit = 10 + 2 * len(spec.steps) * (MAX_ROUNDS + 1)
        return await self._compile(spec).ainvoke(state, {"recursion_limit": limit})  # type: ignore[no-any-return]

    def _compile(self, spec: WorkflowSpec) -> Any:
        layout = tuple((s.type, s.id, getattr(s, "goto", None)) for s in spec.steps)
        if layout not in self._compiled:
            self._compiled[layout] = self._build(spec.steps)
        return self._compiled[layout]

    def _build(self, steps: list[Step]) -> Any:
        graph = StateGraph(QueryState)
        graph.add_node("route", self._route)
        graph.add_node("call_experts", self._call_experts)
        graph.add_node("aggregate", self._aggregate)
        graph.add_edge(START, "route")
        graph.add_edge("route", "call_experts")
        graph.add_edge("call_experts", "aggregate")
        names = [step_node(s) for s in steps]
        graph.add_edge("aggregate", names[0] if names else END)
        for i, step in enumerate(steps):
            after = names[i + 1] if i + 1 < len(names) else END
            if isinstance(step, VerifyStep):
                graph.add_node(names[i], self._verify_node(step))
                skip = _after_refines(steps, names, i)
                graph.add_conditional_edges(names[i], _verify_branch(after, skip), list({after, skip}))
            else:
                graph.add_node(names[i], self._refine_node(step))
                back = names[[s.id for s in steps].index(step.goto)] if step.goto else after
                graph.add_conditional_edges(names[i], _loop_branch(step, back, after), list({back, after}))
        return graph.compile()

    async def _route(self, state: QueryState) -> dict[str, Any]:
        started = time.perf_counter()
        spec = state["workflow"]
        experts = await self.runtime.aenabled_experts()
        text = routing_text(state["request"].messages)
        if spec is not DEFAULT_WORKFLOW:
            check_references(spec, experts)  # an expert disabled since the workflow was saved
        decision = await self._decide(state, experts, text)
        sc = spec.self_consistency
        if sc is not None:
            sampled = sc.expert or decision.experts[0].name
            decision.experts = [ExpertScore(name=sampled, score=1.0)]
            decision.aggregator = "majority-vote"
        decision.timings_ms["route"] = (time.perf_counter() - started) * 1e3
        inputs = {"query": _clip(text), "strategy": decision.strategy, "k": state["k"], "workflow": spec.name}
        outputs = {"experts": [e.model_dump() for e in decision.experts], "confidence": decision.confidence}
        record = node_record("route", started, inputs, outputs)
        return {"decision": decision, "experts": experts, "nodes": [*state["nodes"], record]}

    async def _decide(self, state: QueryState, experts: dict[str, ExpertOut], text: str) -> RoutingDecision:
        spec = state["workflow"]
        if state.get("expert"):
            name = str(state["expert"])
            if name not in experts:
                raise NotFound(f"the model '{name}' does not exist or is disabled", param="model")
            return RoutingDecision(strategy="direct", experts=[ExpertScore(name=name, score=1.0)], confidence=1.0)
        if spec.routing.experts:
            return fixed_decision(spec.routing.experts)
        if state["k"] > len(experts):
            raise InvalidRequest(f"k is {state['k']} but only {len(experts)} experts are enabled", param="k")
        decision = await self.runtime.router.aroute(text, state.get("strategy"), state["k"], spec.routing.p)
        return apply_routing(decision, spec.routing) if overrides_dispatch(spec.routing) else decision

    async def call_expert(self, expert: ExpertOut, request: GenerationRequest) -> GenerationResult:
        """The one way this graph runs a model: through the workers' executor."""
        return await self.runtime.executor.submit(ExpertCall(expert, request))

    async def _call_experts(self, state: QueryState) -> dict[str, Any]:
        started = time.perf_counter()
        experts, decision, request = state["experts"], state["decision"], state["request"]
        sc = state["workflow"].self_consistency
        if sc is None:
            jobs = [(c.name, c.score, request) for c in decision.experts]
        else:
            base = request.seed if request.seed is not None else sc.seed
            jobs = [
                (decision.experts[0].name, 1.0 / sc.samples, dataclasses.replace(
                    request, temperature=sc.temperature, seed=base + i))
                for i in range(sc.samples)
            ]  # fmt: skip

        async def call(name: str, weight: float, req: GenerationRequest) -> ExpertAnswer:
            t0 = time.perf_counter()
            result = await self.call_expert(experts[name], req)
            return _answer(name, weight, result, t0)

        answers = list(await asyncio.gather(*(call(*job) for job in jobs)))
        decision.timings_ms["generate"] = (time.perf_counter() - started) * 1e3
        inputs = {"experts": [name for name, _, _ in jobs], "samples": sc.samples if sc else None}
        outputs = {"answers": [{"expert": a.expert, "text": _clip(a.text), "ms": a.elapsed_ms} for a in answers]}
        record = node_record("call_experts", started, inputs, outputs)
        return {"answers": answers, "nodes": [*state["nodes"], record]}

    def context(self, state: QueryState) -> AggregationContext:
        experts = state["experts"]

        async def call(name: str, request: GenerationRequest) -> GenerationResult:
            if name not in experts:
                raise NotFound(f"no enabled expert named '{name}'", param="model")
            return await self.call_expert(experts[name], request)

        return AggregationContext(state["request"], state["decision"], call=call, task=task_of(state))

    async def _aggregate(self, state: QueryState) -> dict[str, Any]:
        started = time.perf_counter()
        decision = state["decision"]
        result, used, fallback = await run_aggregator(self.runtime, state, self.context(state))
        decision.aggregator = used
        decision.timings_ms["aggregate"] = (time.perf_counter() - started) * 1e3
        inputs = {"aggregator": used, "answers": len(state["answers"]), "task": task_of(state)}
        outputs = {"text": _clip(result.text), **result.detail, **({"fallback": fallback} if fallback else {})}
        record = node_record("aggregate", started, inputs, outputs)
        calls = [*state["calls"], *result.extra_calls]
        return {"result": result, "calls": calls, "passed": False, "critique": "", "nodes": [*state["nodes"], record]}

    def _verify_node(self, template: VerifyStep) -> Any:
        async def node(state: QueryState) -> dict[str, Any]:
            started = time.perf_counter()
            step = current_step(state, template)
            answer = state["result"].text
            try:
                verdict = await verify(self.context(state), step.expert, answer)
            except Exception as exc:  # noqa: BLE001  (a failed check keeps the answer; the trace says why)
                outputs = {"passed": True, "skipped": f"the verifier failed: {exc}"}
                record = node_record(step_node(step), started, {"answer": _clip(answer)}, outputs)
                return {"passed": True, "nodes": [*state["nodes"], record]}
            outputs = {"passed": verdict.passed, "critique": _clip(verdict.critique)}
            record = node_record(step_node(step), started, {"expert": step.expert, "answer": _clip(answer)}, outputs)
            calls = [*state["calls"], verdict.call]
            return {"passed": verdict.passed, "critique": verdict.critique, "calls": calls,
                    "nodes": [*state["nodes"], record]}  # fmt: skip

        return node

    def _refine_node(self, template: RefineStep) -> Any:
        async def node(state: QueryState) -> dict[str, Any]:
            started = time.perf_counter()
            step = current_step(state, template)
            rounds = {**state["rounds"], step.id: state["rounds"].get(step.id, 0) + 1}
            answer, critique = state["result"].text, state.get("critique") or "Check the answer and improve it."
            inputs = {"expert": step.expert, "answer": _clip(answer), "critique": _clip(critique)}
            try:
                reply = await refine(self.context(state), step.expert, answer, critique)
            except Exception as exc:  # noqa: BLE001  (keep the last good answer and stop looping)
                outputs = {"skipped": f"the refiner failed: {exc}", "round": rounds[step.id]}
                rounds[step.id] = MAX_ROUNDS
                record = node_record(step_node(step), started, inputs, outputs)
                return {"rounds": rounds, "nodes": [*state["nodes"], record]}
            result = Aggregate(reply.text, reply.finish_reason, {**state["result"].detail, "refined_by": step.expert})
            outputs = {"text": _clip(reply.text), "round": rounds[step.id]}
            record = node_record(step_node(step), started, inputs, outputs)
            return {"result": result, "rounds": rounds, "calls": [*state["calls"], reply],
                    "nodes": [*state["nodes"], record]}  # fmt: skip

        return node


def _answer(name: str, weight: float, result: GenerationResult, started: float) -> ExpertAnswer:
    return ExpertAnswer(
        expert=name,
        weight=weight,
        text=result.text,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        finish_reason=result.finish_reason,
        elapsed_ms=(time.perf_counter() - started) * 1e3,
    )


S = TypeVar("S", VerifyStep, RefineStep)


def current_step(state: QueryState, template: S) -> S:
    """This run's settings for a step (expert, max_rounds): workflows with the same layout share one compiled graph."""
    return next(s for s in state["workflow"].steps if s.id == template.id)  # type: ignore[return-value]


def task_of(state: QueryState) -> str | None:
    """The task a query belongs to: the router's first skill, else the top expert's first skill, else its name."""
    decision = state.get("decision")
    if decision is None or not decision.experts:
        return None
    if decision.skills:
        return decision.skills[0]
    top = state["experts"].get(decision.experts[0].name)
    return top.skills[0] if top and top.skills else decision.experts[0].name


def _after_refines(steps: list[Step], names: list[str], i: int) -> str:
    """Where a passed verification goes: past the refine steps that would have fixed a failure."""
    j = i + 1
    while j < len(steps) and isinstance(steps[j], RefineStep):
        j += 1
    return names[j] if j < len(steps) else END


def _verify_branch(on_fail: str, on_pass: str) -> Any:
    def branch(state: QueryState) -> str:
        return on_pass if state.get("passed") else on_fail

    return branch


def _loop_branch(template: RefineStep, back: str, after: str) -> Any:
    def branch(state: QueryState) -> str:
        step = current_step(state, template)
        if step.goto and state["rounds"].get(step.id, 0) < (step.max_rounds or 1):
            return back
        return after

    return branch
