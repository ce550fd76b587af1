"""LocalEngine on the MoE engine: run() and stream() agree, bad calls fail alone, abandoned streams free slots."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch

from core.compute import on_compute_thread
from core.errors import InvalidRequest, Unprocessable
from experts.backends.local import LocalEngine
from experts.generation import ExpertCall, GenerationRequest, GenerationResult
from experts.schemas import ExpertKind, ExpertOut


@pytest.fixture(scope="module")
def local(base_path: Path, adapter_root: Path) -> LocalEngine:
    return LocalEngine(base_path, torch.device("cpu"), model_dir=adapter_root, max_loras=2)


def expert(adapter: str | None) -> ExpertOut:
    now = datetime.now(UTC)
    kind = ExpertKind.lora if adapter else ExpertKind.local
    return ExpertOut(
        id=1, name="x", kind=kind, base_model="smollm2-135m-instruct", adapter_path=adapter,
        created_at=now, updated_at=now,
    )  # fmt: skip


def ask(text: str, max_tokens: int = 10) -> GenerationRequest:
    return GenerationRequest([{"role": "user", "content": text}], max_tokens=max_tokens)


def test_stream_deltas_add_up_to_the_run_answer(local: LocalEngine, adapter_root: Path) -> None:
    call = ExpertCall(expert(str(adapter_root / "r8-all")), ask("Name a large animal."))
    (answer,) = local.run([call])
    deltas = list(local.stream(call))
    assert isinstance(answer, GenerationResult) and len(deltas) > 1
    assert "".join(deltas).strip() == answer.text


def test_a_bad_adapter_fails_alone_in_its_batch(local: LocalEngine, adapter_root: Path, tmp_path: Path) -> None:
    (adapter_root / "broken").mkdir(exist_ok=True)
    calls = [
        ExpertCall(expert(str(adapter_root / "broken")), ask("Hi")),
        ExpertCall(expert(str(tmp_path)), ask("Hi")),  # outside the model dir
        ExpertCall(expert(None), ask("Hi", 4)),
    ]
    broken, outside, good = local.run(calls)
    assert isinstance(broken, Unprocessable) and broken.param == "adapter_path"
    assert isinstance(outside, InvalidRequest) and outside.param == "adapter_path"
    assert isinstance(good, GenerationResult) and good.completion_tokens == 4


def test_an_abandoned_stream_frees_its_row_and_adapter_slot(local: LocalEngine, adapter_root: Path) -> None:
    stream = local.stream(ExpertCall(expert(str(adapter_root / "r4-attn")), ask("Tell me a long story.", 40)))
    assert next(stream)
    stream.close()
    assert local.engine.idle
    assert all(entry.pins == 0 for entry in local.store.resident().values())
    # More adapters than slots still all get answers: rows wait for a slot, then join.
    names = ["r4-attn", "r8-all", "r16-mlp-rslora", "r6-patterns"]
    outcomes = local.run([ExpertCall(expert(str(adapter_root / n)), ask("Hi", 3)) for n in names])
    assert all(isinstance(o, GenerationResult) and o.completion_tokens == 3 for o in outcomes)
    assert len(local.store.resident()) == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_mixed_batch_matches_cpu(base_path: Path, adapter_root: Path, local: LocalEngine) -> None:
    gpu = LocalEngine(base_path, torch.device("cuda"), model_dir=adapter_root, max_loras=4)
    names = [None, "r4-attn", "r8-all", "r16-mlp-rslora", "r6-patterns"]
    calls = [ExpertCall(expert(str(adapter_root / n) if n else None), ask("Name a large animal.", 8)) for n in names]
    on_gpu = gpu.run(calls)
    on_cpu = local.run(calls)
    assert [r.text for r in on_gpu] == [r.text for r in on_cpu]  # type: ignore[union-attr]


def test_concurrent_callers_all_compute_on_the_one_model_thread(local: LocalEngine, adapter_root: Path) -> None:
    seen: list[bool] = []
    hook = local.model.register_forward_hook(lambda *_: seen.append(on_compute_thread()))
    calls = [ExpertCall(expert(str(adapter_root / "r8-all")), ask(f"Count to {i}.", 4)) for i in range(3)]
    try:
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda call: local.run([call])[0], calls))
    finally:
        hook.remove()
    assert all(isinstance(a, GenerationResult) and a.completion_tokens == 4 for a in answers)
    assert seen and all(seen), "every forward pass must run on the compute thread"
    assert not on_compute_thread()
