"""A workflow's routing parameters applied to the router's decision: top-k, top-p, threshold, shared expert.

The router scores every enabled expert (`decision.candidates`); which of them answer is decided
here, so a workflow can ask for any mix without the router knowing about workflows.
"""

from __future__ import annotations

from agents.workflow_spec import RoutingSpec
from router.decision import ExpertScore, RoutingDecision


def _renormalised(chosen: list[ExpertScore]) -> list[ExpertScore]:
    total = sum(c.score for c in chosen)
    if total <= 0:
        return [ExpertScore(name=c.name, score=1.0 / len(chosen)) for c in chosen]
    return [ExpertScore(name=c.name, score=c.score / total) for c in chosen]


def top_p(ranked: list[ExpertScore], p: float, k: int) -> list[ExpertScore]:
    """The fewest best-scored experts whose scores add up to at least p, never more than k."""
    chosen: list[ExpertScore] = []
    mass = 0.0
    for candidate in ranked[:k]:
        chosen.append(candidate)
        mass += candidate.score
        if mass >= p:
            break
    return chosen


def fixed_decision(experts: list[str]) -> RoutingDecision:
    weight = 1.0 / len(experts)
    return RoutingDecision(
        strategy="fixed",
        experts=[ExpertScore(name=e, score=weight) for e in experts],
        confidence=1.0,
        aggregator="pass-through" if len(experts) == 1 else "majority-vote",
    )


def apply_routing(decision: RoutingDecision, spec: RoutingSpec) -> RoutingDecision:
    ranked = sorted(decision.candidates or decision.experts, key=lambda c: (-c.score, c.name))
    if spec.threshold is not None and spec.fallback and decision.confidence < spec.threshold:
        chosen = [ExpertScore(name=spec.fallback, score=1.0)]
    elif spec.p is not None:
        chosen = top_p(ranked, spec.p, spec.k)
    else:
        chosen = ranked[: spec.k]
    if spec.shared_expert and spec.shared_expert not in {c.name for c in chosen}:
        score = next((c.score for c in ranked if c.name == spec.shared_expert), 0.0)
        chosen.append(ExpertScore(name=spec.shared_expert, score=score))
    decision.experts = _renormalised(chosen)
    if len(decision.experts) > 1 and decision.aggregator == "pass-through":
        decision.aggregator = "majority-vote"
    return decision
