from __future__ import annotations

import pytest

from core.errors import InvalidRequest, NotFound
from router.dispatch import DispatchConfig, dispatch
from router.spec import RouteSpec, parse_spec

RANKED = [("a", 0.5), ("b", 0.3), ("c", 0.15), ("d", 0.05)]
NAMES = {"knn", "head", "skills", "cost"}


def names(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [n for n, _ in result.experts]


def test_top_k_and_top_p_pick_dynamic_counts() -> None:
    assert names(dispatch(RANKED, 1.0, DispatchConfig(k=2))) == ["a", "b"]
    assert names(dispatch(RANKED, 1.0, DispatchConfig(p=0.5))) == ["a"]
    assert names(dispatch(RANKED, 1.0, DispatchConfig(p=0.8))) == ["a", "b"]
    assert names(dispatch(RANKED, 1.0, DispatchConfig(p=0.9))) == ["a", "b", "c"]
    assert names(dispatch(RANKED, 1.0, DispatchConfig(p=0.99, k=2))) == ["a", "b"]  # k caps p
    weights = [w for _, w in dispatch(RANKED, 1.0, DispatchConfig(p=0.9)).experts]
    assert sum(weights) == pytest.approx(1.0) and weights[0] > weights[1] > weights[2]


def test_shared_expert_is_always_added_and_null_expert_falls_back() -> None:
    shared = dispatch(RANKED, 1.0, DispatchConfig(k=1, shared="d"))
    assert names(shared) == ["a", "d"] and sum(w for _, w in shared.experts) == pytest.approx(1.0)
    low = dispatch(RANKED, 0.2, DispatchConfig(null_threshold=0.5, fallback="helpdesk"))
    assert low.out_of_scope and names(low) == ["helpdesk"]
    flagged = dispatch(RANKED, 0.2, DispatchConfig(null_threshold=0.5))
    assert flagged.out_of_scope and names(flagged) == ["a"]
    assert not dispatch(RANKED, 0.7, DispatchConfig(null_threshold=0.5, fallback="helpdesk")).out_of_scope


@pytest.mark.parametrize("config", [DispatchConfig(k=0), DispatchConfig(p=0.0), DispatchConfig(p=1.5)])
def test_bad_k_and_p_are_refused(config: DispatchConfig) -> None:
    with pytest.raises(InvalidRequest):
        config.validated()


def test_route_specs_parse_like_routellm_model_names() -> None:
    assert parse_spec("knn", NAMES) == RouteSpec("knn")
    assert parse_spec("auto", NAMES) == RouteSpec(None)
    assert parse_spec("cost-0.3", NAMES) == RouteSpec("cost", share=0.3)
    assert parse_spec("topp-0.8", NAMES) == RouteSpec(None, p=0.8)
    assert parse_spec("head-topk-2", NAMES) == RouteSpec("head", k=2)
    assert parse_spec("cost-0.2-topk-2", NAMES) == RouteSpec("cost", share=0.2, k=2)
    for bad in ("astrology", "topp-abc", "knn-topq-1", ""):
        with pytest.raises(NotFound):
            parse_spec(bad, NAMES)
