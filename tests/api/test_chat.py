from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from openai.types.chat import ChatCompletion, ChatCompletionChunk


def ask(client: TestClient, content: str, **extra: object):  # type: ignore[no-untyped-def]
    body = {"model": "moe:auto", "messages": [{"role": "user", "content": content}], "max_tokens": 16, **extra}
    return client.post("/v1/chat/completions", json=body)


def test_routed_answer_is_openai_shaped_with_a_routing_trace(client: TestClient) -> None:
    response = ask(client, "What is 2+2?")
    assert response.status_code == 200
    body = response.json()
    completion = ChatCompletion.model_validate(body)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    routing = body["routing"]
    assert routing["strategy"] == "knn"
    assert routing["experts"][0]["name"] == "math-lora"
    assert {"encode", "route", "generate"} <= set(routing["timings_ms"])
    assert [n["node"] for n in routing["nodes"]] == ["route", "call_experts", "aggregate"]


@pytest.mark.parametrize(
    ("question", "expert"),
    [
        ("A baker sells 12 loaves a day at $3 each. How much does he earn in a week?", "math-lora"),
        ("Which empire built Machu Picchu?", "knowledge-lora"),
        ("Write a limerick about a sleepy cat.", "smollm2"),
    ],
)
def test_each_topic_goes_to_its_expert(client: TestClient, question: str, expert: str) -> None:
    decision = client.post("/v1/route", json={"query": question}).json()
    assert decision["experts"][0]["name"] == expert
    assert abs(sum(c["score"] for c in decision["candidates"]) - 1.0) < 1e-6


def test_expert_name_bypasses_routing_and_matches_local_answer(client: TestClient) -> None:
    direct = client.post(
        "/v1/chat/completions",
        json={"model": "smollm2", "messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 12},
    ).json()
    assert direct["routing"]["strategy"] == "direct"
    assert direct["routing"]["experts"] == [{"name": "smollm2", "score": 1.0}]
    again = client.post(
        "/v1/chat/completions",
        json={"model": "smollm2", "messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 12},
    ).json()
    assert again["choices"][0]["message"]["content"] == direct["choices"][0]["message"]["content"]


def test_streaming_sends_chunks_then_done(client: TestClient) -> None:
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "model": "moe:auto",
            "stream": True,
            "messages": [{"role": "user", "content": "Say hi"}],
            "max_tokens": 8,
        },
    ) as response:
        assert response.status_code == 200
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(e) for e in events[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].choices[0].finish_reason in {"stop", "length"}
    assert json.loads(events[-2])["routing"]["experts"]


def test_models_lists_routing_models_and_experts(client: TestClient) -> None:
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert ids[0] == "moe:auto"
    assert {"moe:knn", "smollm2", "math-lora", "knowledge-lora"} <= set(ids)


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "experts": 3}


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}, 404, "model"),
        ({"model": "moe:nonsense", "messages": [{"role": "user", "content": "x"}]}, 404, "model"),
        ({"model": "moe:auto", "messages": []}, 400, "messages"),
        ({"model": "moe:auto", "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages.0.role"),
        ({"model": "moe:auto", "messages": [{"role": "system", "content": "x"}]}, 400, "messages"),
        ({"model": "moe:auto", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 400, "max_tokens"),
        ({"model": "moe:auto", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**9}, 400, "max_tokens"),
        ({"model": "moe:auto", "messages": [{"role": "user", "content": "x"}], "temperature": 9}, 400, "temperature"),
        ({"model": "moe:auto", "messages": [{"role": "user", "content": "x"}], "k": 0}, 400, "k"),
        ({"messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    ],
)
def test_bad_requests_get_4xx_naming_the_field(client: TestClient, body: dict, status: int, param: str) -> None:
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["message"]


def test_non_json_body_is_a_400(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_route_rejects_expert_names_and_bad_k(client: TestClient) -> None:
    assert client.post("/v1/route", json={"query": "x", "model": "smollm2"}).status_code == 400
    assert client.post("/v1/route", json={"query": "x", "k": 0}).status_code == 400
    assert client.post("/v1/route", json={"query": "x", "model": "moe:none"}).status_code == 404


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        (b'{"query": ', "body", "not valid JSON"),
        (b'{"model": "moe:knn"}', "query", "query: Field required"),
        (b'{"query": "x", "k": "two"}', "k", "k: Input should be a valid integer"),
        (b'{"query": "x", "colour": "red"}', "colour", "colour: Extra inputs are not permitted"),
        (b'["x"]', "body", "body: Input should be an object"),
    ],
)
def test_route_reads_its_body_itself_and_says_what_is_wrong(
    client: TestClient, body: bytes, param: str, says: str
) -> None:
    # /v1/route parses its body from the raw bytes (BareRoute); its errors must read as every other route's.
    response = client.post("/v1/route", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert says in error["message"]


def test_the_bare_route_is_still_documented(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/route"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"query", "model", "k"} and body["required"] == ["query"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/RoutingDecision")
