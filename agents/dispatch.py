"""A workflow's routing parameters applied to the router's decision: top-k, top-p, threshold, shared expert.

The router scores every enabled expert (`decision.candidates`); the router's own dispatch rule
(router.dispatch) then picks who answers, with the workflow's parameters instead of the
server-wide ones. One rule, so `moe:knn-topp-0.8` and a workflow with `p: 0.8` agree.
"""

from __future__ import annotations

from agents.workflow_spec import RoutingSpec
from router.decision import ExpertScore, RoutingDecision
from router.dispatch import DispatchConfig, dispatch


def fixed_decision(experts: list[str]) -> RoutingDecision:
    weight = 1.0 / len(experts)
    return RoutingDecision(
        strategy="fixed",
        experts=[ExpertScore(name=e, score=weight) for e in experts],
        confidence=1.0,
        aggregator="pass-through" if len(experts) == 1 else "majority-vote",
    )


def overrides_dispatch(spec: RoutingSpec) -> bool:
    """k and p go to the router as they are; these need the decision re-dispatched."""
    return spec.threshold is not None or bool(spec.fallback) or bool(spec.shared_expert)


def apply_routing(decision: RoutingDecision, spec: RoutingSpec) -> RoutingDecision:
    ranked = [(c.name, c.score) for c in sorted(decision.candidates, key=lambda c: (-c.score, c.name))]
    if not ranked:
        return decision
    threshold = spec.threshold
    if threshold is None and decision.out_of_scope:
        threshold = float("inf")  # the router's own null-expert threshold already judged it out of scope
    config = DispatchConfig(
        k=spec.k, p=spec.p, shared=spec.shared_expert, null_threshold=threshold, fallback=spec.fallback
    ).validated()
    in_scope = decision.in_scope_score if decision.in_scope_score is not None else decision.confidence
    chosen = dispatch(ranked, in_scope, config)
    decision.experts = [ExpertScore(name=n, score=w) for n, w in chosen.experts]
    decision.out_of_scope = chosen.out_of_scope
    decision.aggregator = "pass-through" if len(decision.experts) == 1 else "majority-vote"
    return decision
