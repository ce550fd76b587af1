"""Loading PEFT's on-disk format into the stacked slots: scalings, LRU, and clear refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from core.errors import InvalidRequest, Unprocessable
from experts.moe import AdapterStore, read_adapter
from tests.experts.moe.conftest import ADAPTER_SPECS, load_base

BASE_NAMES = ("smollm2-135m-instruct",)


@pytest.fixture(scope="module")
def model(base_path: Path) -> Any:
    return load_base(base_path)


def fresh_store(base_path: Path, root: Path, max_loras: int = 2) -> AdapterStore:
    return AdapterStore(load_base(base_path), max_loras=max_loras, root=root, base_names=BASE_NAMES)


def test_scalings_match_peft_for_rslora_rank_and_alpha_patterns(adapter_root: Path, model: Any) -> None:
    from peft import PeftModel

    for name in ["r16-mlp-rslora", "r6-patterns"]:
        ours = read_adapter(adapter_root / name)
        peft = PeftModel.from_pretrained(model, adapter_root / name, adapter_name="x")
        compared = 0
        for module_name, module in peft.base_model.model.named_modules():
            scaling = getattr(module, "scaling", None)
            if isinstance(scaling, dict) and "x" in scaling:
                lora = ours.modules[module_name]
                assert lora.scaling == pytest.approx(module.scaling["x"]), module_name
                assert lora.rank == module.r["x"]
                compared += 1
        assert compared == len(ours.modules) > 0
        peft.unload()
    assert read_adapter(adapter_root / "r6-patterns").ranks == {6, 2}


def test_lru_keeps_at_most_max_loras_and_never_evicts_a_pinned_adapter(adapter_root: Path, base_path: Path) -> None:
    store = fresh_store(base_path, adapter_root, max_loras=2)
    names = list(ADAPTER_SPECS)
    first = store.acquire(names[0])  # pinned, as by a running row
    store.load(names[1])
    store.load(names[2])  # evicts names[1], the least recent unpinned one
    assert set(store.resident()) == {str(adapter_root / names[0]), str(adapter_root / names[2])}
    assert store.acquire(names[2]) is not None and store.acquire(names[3]) is None  # both slots pinned
    store.release(names[0])
    assert store.acquire(names[3]) == first  # the freed slot is reused
    layer = store.layers["model.layers.0.self_attn.q_proj"]
    reloaded = read_adapter(adapter_root / names[3]).modules["model.layers.0.self_attn.q_proj"]
    torch.testing.assert_close(layer.lora_A[first + 1, : reloaded.rank], reloaded.a)
    # Modules the new adapter does not target were cleared, not left over from the evicted one.
    assert layer.lora_B[first + 1].abs().sum() > 0
    assert store.layers["model.layers.0.self_attn.v_proj"].lora_B[first + 1].abs().sum() == 0
    assert all(e.load_s > 0 and e.nbytes > 0 for e in store.resident().values())


def edited_copy(src: Path, dst: Path, **changes: Any) -> Path:
    shutil.copytree(src, dst)
    config = json.loads((dst / "adapter_config.json").read_text())
    config.update(changes)
    (dst / "adapter_config.json").write_text(json.dumps(config))
    return dst


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"use_dora": True}, "DoRA"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"base_model_name_or_path": "meta-llama/Llama-3.1-8B"}, "trained on meta-llama"),
        ({"peft_type": "IA3"}, "only LORA"),
        ({"r": 5}, "config says r=5"),
    ],
)
def test_unsupported_configs_are_refused_with_a_clear_error(
    adapter_root: Path, base_path: Path, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    bad = edited_copy(adapter_root / "r4-attn", tmp_path / "bad", **changes)
    store = fresh_store(base_path, tmp_path)
    with pytest.raises(Unprocessable, match=message) as info:
        store.load(str(bad))
    assert info.value.param == "adapter_path" and not store.resident()


def test_shape_mismatch_and_missing_files_and_paths_outside_the_model_dir(
    adapter_root: Path, base_path: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    bad = edited_copy(adapter_root / "r4-attn", tmp_path / "shapes")
    tensors = load_file(bad / "adapter_model.safetensors")
    key = next(k for k in tensors if "lora_A" in k)
    tensors[key] = torch.zeros(4, 999)
    save_file(tensors, bad / "adapter_model.safetensors")
    store = fresh_store(base_path, tmp_path)
    with pytest.raises(Unprocessable, match="the base layer is 576->"):
        store.load(str(bad))
    (tmp_path / "empty").mkdir()
    with pytest.raises(Unprocessable, match="missing adapter_config.json"):
        store.load("empty")
    with pytest.raises(InvalidRequest, match="inside the model directory"):
        store.load(str(adapter_root / "r4-attn"))  # adapter_root is not under tmp_path
    assert not store.resident()
