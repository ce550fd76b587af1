from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.db import session_scope
from router.outcome_store import OutcomeStore


def routed(client: TestClient, query: str, model: str = "moe:auto") -> dict:  # type: ignore[type-arg]
    response = client.post("/v1/route", json={"query": query, "model": model})
    assert response.status_code == 200, response.text
    return response.json()


def stored(client: TestClient) -> int:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with session_scope(runtime.sessions) as session:
        return OutcomeStore(session).count()


def test_feedback_is_stored_and_learned_online(client: TestClient) -> None:
    decision = routed(client, "What is 17 times 23?")
    expert = decision["experts"][0]["name"]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    before_rows, before_log = stored(client), len(runtime.router.outcomes)
    response = client.post("/v1/feedback", json={"query_id": decision["query_id"], "expert": expert, "correct": True})
    assert response.status_code == 200, response.text
    assert response.json()["score"] == 1.0 and response.json()["id"] > 0
    assert stored(client) == before_rows + 1
    assert len(runtime.router.outcomes) == before_log + 1
    cost = runtime.router.strategy("cost")
    assert cost.model is not None and len(cost.model) >= 1  # the quality model saw it without a refit


def test_feedback_moves_cost_quality_routing(client: TestClient) -> None:
    query = "Summarise the plot of Hamlet in two sentences."
    first = routed(client, query, "moe:cost-0.5")
    experts = [c["name"] for c in first["candidates"]]
    assert len(experts) >= 2
    # Tell the router, many times, that only one expert answers this kind of query well.
    good = experts[-1]
    for _ in range(6):
        decision = routed(client, query, "moe:cost-0.5")
        for name in experts:
            body = {"query_id": decision["query_id"], "expert": name, "score": 1.0 if name == good else 0.0}
            assert client.post("/v1/feedback", json=body).status_code == 200
    quality = client.app.state.runtime.router.strategy("cost").quality  # type: ignore[attr-defined]
    vector = client.app.state.runtime.router.encoder.encode([query])[0]  # type: ignore[attr-defined]
    predicted = quality(vector)
    assert max(predicted, key=predicted.get) == good


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"query_id": "rq-x", "expert": "smollm2", "score": 0.5, "correct": True}, 400, "body"),
        ({"query_id": "rq-x", "expert": "smollm2"}, 400, "body"),
        ({"query_id": "rq-x", "expert": "smollm2", "score": 1.5}, 400, "score"),
        ({"query_id": "rq-x", "expert": "nobody", "score": 1.0}, 404, "expert"),
        ({"query_id": "rq-unknown", "expert": "smollm2", "score": 1.0}, 404, "query_id"),
        ({"query_id": "rq-x", "expert": "smollm2", "score": 1.0, "skills": [""]}, 400, "skills.0"),
        ({"query_id": "rq-x", "expert": "smollm2", "score": 1.0, "skills": ["s"] * 9}, 400, "skills"),
    ],
)
def test_bad_feedback_is_a_clear_4xx_and_writes_nothing(
    client: TestClient,
    body: dict,
    status: int,
    param: str,  # type: ignore[type-arg]
) -> None:
    before = stored(client)
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    assert stored(client) == before


def test_feedback_with_query_text_works_after_the_id_is_forgotten(client: TestClient) -> None:
    body = {"query_id": "rq-from-elsewhere", "expert": "smollm2", "score": 0.25, "query": "Write a haiku."}
    assert client.post("/v1/feedback", json=body).status_code == 200


def test_route_rejects_bad_specs_and_accepts_routellm_style_names(client: TestClient) -> None:
    assert routed(client, "What is 2+2?", "moe:topp-0.9")["experts"]
    assert routed(client, "What is 2+2?", "moe:skills")["strategy"] == "skills"
    assert routed(client, "What is 2+2?", "moe:head")["strategy"] == "head"
    for model, status in (("moe:astrology", 404), ("moe:topp-1.5", 400), ("moe:knn-topk-0", 400)):
        response = client.post("/v1/route", json={"query": "hi", "model": model})
        assert response.status_code == status, (model, response.text)
        assert response.json()["error"]["param"] == "model" or response.json()["error"]["param"] in ("k", "p")
    huge = routed(client, "word " * 10_000)
    assert huge["truncated"] is True
    assert routed(client, "")["experts"]  # empty query: routed (documented), not an error


def test_feedback_skill_tags_are_kept_for_the_skill_profiles(client: TestClient) -> None:
    body = {"query_id": "rq-tagged", "expert": "math-lora", "correct": True, "query": "What is 9 squared?",
            "skills": ["arithmetic", "gsm8k"]}  # fmt: skip
    assert client.post("/v1/feedback", json=body).status_code == 200
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.router.outcomes.items[-1].skills == ("arithmetic", "gsm8k")
    with session_scope(runtime.sessions) as session:
        assert OutcomeStore(session).load(10_000).items[-1].skills == ("arithmetic", "gsm8k")
