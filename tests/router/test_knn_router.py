from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from core.db import make_engine, make_session_factory, migrate
from core.errors import InvalidRequest, NoExpertAvailable
from experts.schemas import ExpertOut
from router.encoder import Encoder
from router.fitted import FittedRouter
from router.router import Router, build_router
from tests.conftest import make_settings


def expert(name: str, exemplars: list[str], description: str = "") -> ExpertOut:
    now = datetime.now(UTC)
    return ExpertOut(
        id=abs(hash(name)) % 1000, name=name, kind="local", base_model="b", description=description,
        exemplars=exemplars, created_at=now, updated_at=now,
    )  # fmt: skip


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder()


def test_encoder_gives_unit_vectors(encoder: Encoder) -> None:
    vectors = encoder.encode(["hello world", "what is the interest rate on my card"])
    assert vectors.shape == (2, encoder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_knn_routes_to_nearest_exemplars_and_refits_on_change(encoder: Encoder) -> None:
    router = Router(encoder)
    cooking = expert("cook", ["how long do I boil an egg", "a recipe for pancakes", "how to roast vegetables"])
    finance = expert("bank", ["what is my account balance", "transfer money to savings", "my card was declined"])
    router.refresh([cooking, finance], "v1")
    decision = router.route("how many minutes should pasta cook")
    assert decision.expert_names == ["cook"]
    assert decision.confidence > 0.5
    travel = expert("travel", ["book a flight to Paris", "do I need a visa for Japan"])
    router.refresh([cooking, finance, travel], "v2")
    assert router.route("find me a cheap flight to Rome").expert_names == ["travel"]
    two = router.route("find me a cheap flight to Rome", k=2)
    assert len(two.experts) == 2 and abs(sum(e.score for e in two.experts) - 1) < 1e-6


def test_description_stands_in_when_no_exemplars(encoder: Encoder) -> None:
    router = Router(encoder)
    router.refresh([expert("poet", [], "writes poems and song lyrics"), expert("coder", [], "writes Python code")], "v")
    assert router.route("fix this python function").expert_names == ["coder"]


def test_long_query_is_truncated_and_flagged(encoder: Encoder) -> None:
    router = Router(encoder, max_query_chars=50)
    router.refresh([expert("a", ["hello"]), expert("b", ["bye"])], "v")
    assert router.route("hello " * 100).truncated is True
    assert router.route("hello").truncated is False


def test_bad_strategy_k_and_empty_registry(encoder: Encoder) -> None:
    router = Router(encoder)
    with pytest.raises(NoExpertAvailable):
        router.route("anything")
    router.refresh([expert("a", ["hello"])], "v")
    with pytest.raises(InvalidRequest, match="unknown routing strategy"):
        router.route("x", strategy="astrology")
    with pytest.raises(InvalidRequest, match="k must be"):
        router.route("x", k=0)


def test_routing_does_not_wait_for_a_refit_in_progress(encoder: Encoder) -> None:
    # A refit holds the router's lock while the model thread fits; routing runs on that same thread,
    # so it must never need that lock (else refit and route wait on each other forever).
    router = Router(encoder)
    router.refresh([expert("cook", ["bake bread"]), expert("bank", ["my card was declined"])], "v1")
    pool = ThreadPoolExecutor(1)
    try:
        with router._lock:
            decision = pool.submit(router.route, "how do I bake a cake").result(timeout=30)
    finally:
        pool.shutdown(wait=False)  # on a timeout the route finishes once the lock is released
    assert decision.experts[0].name == "cook"


def test_a_fit_whose_encoder_is_gone_is_ignored_not_misread(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    FittedRouter(encoder_dir=str(tmp_path / "deleted-encoder")).save(settings.data_dir / "router")
    migrate(settings.sqlalchemy_url)
    router = build_router(settings, make_session_factory(make_engine(settings.sqlalchemy_url)))
    # Its head would read vectors of another space: the router runs unfitted on the bundled encoder.
    assert router.fitted is None and router.encoder.name == str(Encoder().path)
    router.close()
