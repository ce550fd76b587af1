from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db import make_engine, make_session_factory, migrate, session_scope
from core.errors import InvalidRequest, UpstreamError
from experts.backends.pool import BackendPool
from experts.generation import ExpertCall, GenerationRequest, GenerationResult
from experts.schemas import ExpertKind, ExpertOut
from workers.files import FileStore
from workers.models import BatchResult
from workers.results import ResultKey, result_keys, upsert_results
from workers.scheduler import BatchCall, chunked, group_calls, queue_name
from workers.store import BatchStore, LineItem
from workers.wire import outcome_from_json, outcome_to_json

NOW = datetime.now(UTC)


def _expert(name: str, kind: ExpertKind, **fields: object) -> ExpertOut:
    return ExpertOut(id=1, name=name, kind=kind, created_at=NOW, updated_at=NOW, **fields)  # type: ignore[arg-type]


def _store(url: str) -> BatchStore:
    migrate(url)
    return BatchStore(make_session_factory(make_engine(url)))


def _batch(store: BatchStore) -> str:
    source = FileStore(store.sessions).create("batch", "in.jsonl", "{}\n")
    items = [LineItem(1, "a", {"messages": []}), LineItem(2, "b", {"messages": []})]
    return store.create(source.id, "/v1/chat/completions", "24h", items, [{"line": 3, "message": "bad"}]).id


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'batches.db'}"
    return request.getfixturevalue("postgres_url")


def test_results_are_written_once_per_line_and_expert(db_url: str) -> None:
    store = _store(db_url)
    batch_id = _batch(store)
    key = ResultKey("a", "math-lora")
    with session_scope(store.sessions) as session:
        upsert_results(session, batch_id, [(key, UpstreamError("timeout"))])
    # A redelivered task writes the same key again: the row is updated, never duplicated.
    for text in ("first", "again"):
        with session_scope(store.sessions) as session:
            upsert_results(session, batch_id, [(key, GenerationResult(text, 3, 1))])
    with session_scope(store.sessions) as session:
        rows = list(session.scalars(select(BatchResult).where(BatchResult.batch_id == batch_id)))
        assert result_keys(session, batch_id) == {key}
        assert session.scalar(select(func.count()).select_from(BatchResult)) == 1
    assert [(r.text, r.error) for r in rows] == [("again", None)]
    assert store.counts(batch_id).total == 3 and store.counts(batch_id).failed == 1


def test_cancel_is_refused_once_a_batch_finished(tmp_path: Path) -> None:
    store = _store(f"sqlite:///{tmp_path / 'b.db'}")
    batch_id = _batch(store)
    assert store.request_cancel(batch_id).status == "cancelling"
    assert store.request_cancel(batch_id).status == "cancelling"
    store.set_status(batch_id, "cancelled")
    assert store.get(batch_id).cancelled_at is not None
    other = _batch(store)
    store.set_status(other, "completed")
    with pytest.raises(Exception, match="cannot be cancelled"):
        store.request_cancel(other)


def test_calls_group_by_base_model_and_remote_expert() -> None:
    math = _expert("math", ExpertKind.lora, base_model="smollm2", adapter_path="/m")
    know = _expert("know", ExpertKind.lora, base_model="smollm2", adapter_path="/k")
    base = _expert("base", ExpertKind.local, base_model="smollm2")
    remote = _expert("gpt", ExpertKind.litellm, litellm_model="openai/gpt")
    request = GenerationRequest([{"role": "user", "content": "hi"}])
    calls = [BatchCall(str(i), ExpertCall(e, request)) for i, e in enumerate([math, remote, know, base, math])]
    groups = group_calls(calls, lambda call: BackendPool.batch_key(call.expert))
    assert {k: [c.custom_id for c in v] for k, v in groups.items()} == {
        "local:smollm2": ["0", "2", "3", "4"],
        "litellm:gpt": ["1"],
    }
    assert [queue_name(k) for k in groups] == ["moe.local.smollm2", "moe.litellm.gpt"]
    assert [len(c) for c in chunked(groups["local:smollm2"], 3)] == [3, 1]
    roundtrip = BatchCall.from_json(calls[0].to_json())
    assert roundtrip.call.request == request and roundtrip.call.expert.adapter_path == "/m"


def test_outcomes_keep_their_error_type_across_the_wire() -> None:
    error = outcome_from_json(outcome_to_json(InvalidRequest("too long", param="messages")))
    assert isinstance(error, InvalidRequest) and error.param == "messages" and error.status_code == 400
    result = outcome_from_json(outcome_to_json(GenerationResult("ok", 2, 1, "length")))
    assert result == GenerationResult("ok", 2, 1, "length")
