from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agents.prestart import prepare
from api.app import create_app
from core.db import make_engine, make_session_factory, session_scope
from experts.repository import ExpertRepository
from experts.schemas import ExpertSpec
from tests.conftest import make_settings

KEY = "test-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LORA = {"name": "q", "kind": "lora", "base_model": "smollm2-135m-instruct"}


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("admin"), admin_key=KEY)
    prepare(settings, progress=False)
    with TestClient(create_app(settings)) as client:
        yield client


def test_admin_needs_the_key(admin: TestClient, client: TestClient) -> None:
    assert admin.get("/admin/experts").status_code == 401
    assert admin.get("/admin/experts", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert admin.get("/admin/experts", headers={"X-API-Key": KEY}).status_code == 200
    disabled = client.get("/admin/experts", headers=AUTH)  # the shared app has no admin key configured
    assert disabled.status_code == 401 and "MOE_ADMIN_KEY" in disabled.json()["error"]["message"]


def test_expert_crud_changes_routing(admin: TestClient) -> None:
    spec = {
        "name": "gardener", "kind": "local", "base_model": "smollm2-135m-instruct",
        "exemplars": ["when should I prune roses", "how often to water tomato plants", "best soil for herbs"],
        "skills": ["gardening"],
    }  # fmt: skip
    created = admin.post("/admin/experts", json=spec, headers=AUTH)
    assert created.status_code == 201, created.text
    assert created.json()["skills"] == ["gardening"]
    question = {"query": "my basil plant leaves are turning yellow, what fertiliser should I use"}
    assert admin.post("/v1/route", json=question).json()["experts"][0]["name"] == "gardener"
    patched = admin.patch("/admin/experts/gardener", json={"enabled": False}, headers=AUTH)
    assert patched.json()["enabled"] is False
    assert admin.post("/v1/route", json=question).json()["experts"][0]["name"] != "gardener"
    assert admin.delete("/admin/experts/gardener", headers=AUTH).status_code == 204
    assert admin.get("/admin/experts/gardener", headers=AUTH).status_code == 404


def test_a_registry_edit_from_another_connection_reaches_routing_on_the_next_request(admin: TestClient) -> None:
    """The CLI writes the registry through its own connection; the server notices without being told."""
    settings = admin.app.state.runtime.settings  # type: ignore[attr-defined]
    question = {"query": "which telescope eyepiece shows Saturn's rings best"}
    assert admin.post("/v1/route", json=question).json()["experts"][0]["name"] != "stargazer"
    engine = make_engine(settings.sqlalchemy_url)
    spec = ExpertSpec(
        name="stargazer", kind="local", base_model="smollm2-135m-instruct",
        exemplars=["best telescope for viewing planets", "how to see Jupiter's moons", "star charts for beginners"],
    )  # fmt: skip
    with session_scope(make_session_factory(engine)) as session:
        ExpertRepository(session, settings.model_dir).add(spec)
    assert admin.post("/v1/route", json=question).json()["experts"][0]["name"] == "stargazer"
    with session_scope(make_session_factory(engine)) as session:
        ExpertRepository(session, settings.model_dir).remove("stargazer")
    engine.dispose()
    assert "stargazer" not in {c["name"] for c in admin.post("/v1/route", json=question).json()["candidates"]}


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"name": "smollm2", "kind": "local", "base_model": "smollm2-135m-instruct"}, 409, "name"),
        ({"name": "q", "kind": "quantum"}, 400, "kind"),
        (
            {"name": "q", "kind": "lora", "base_model": "smollm2-135m-instruct", "adapter_path": "nope"},
            422,
            "adapter_path",
        ),
        (
            {"name": "q", "kind": "lora", "base_model": "smollm2-135m-instruct", "adapter_path": "/etc"},
            400,
            "adapter_path",
        ),
        ({"name": "q", "kind": "local", "base_model": "llama-9000"}, 404, "base_model"),
        ({"name": "q", "kind": "local", "base_model": "smollm2-135m-instruct", "colour": "red"}, 400, "colour"),
    ],
)
def test_bad_expert_specs_are_refused_and_nothing_is_written(
    admin: TestClient, body: dict, status: int, param: str
) -> None:
    before = [e["name"] for e in admin.get("/admin/experts", headers=AUTH).json()]
    response = admin.post("/admin/experts", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    assert [e["name"] for e in admin.get("/admin/experts", headers=AUTH).json()] == before


def test_metrics_count_requests_and_expert_choices(admin: TestClient) -> None:
    admin.post(
        "/v1/chat/completions",
        json={"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
    )
    text = admin.get("/metrics").text
    assert 'moe_expert_selections_total{expert="smollm2",strategy="direct"}' in text
    assert 'route="/v1/chat/completions"' in text


def test_admin_page_is_served(admin: TestClient, tmp_path: Path) -> None:
    page = admin.get("/admin/ui/")
    assert page.status_code == 200 and "expert registry" in page.text
    assert admin.get("/admin/ui/admin.js").status_code == 200
