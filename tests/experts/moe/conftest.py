"""Small random-init PEFT adapters of different ranks on the real bundled SmolLM2, made once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from experts.bundled import DEFAULT_BASE, base_model_path
from tests.conftest import TEST_MODEL_DIR

# Different ranks, alphas, rsLoRA, patterns and target subsets: everything the loader must get right.
ADAPTER_SPECS: dict[str, dict[str, Any]] = {
    "r4-attn": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
    "r8-all": {"r": 8, "lora_alpha": 16, "target_modules": "all-linear"},
    "r16-mlp-rslora": {"r": 16, "lora_alpha": 8, "use_rslora": True, "target_modules": ["gate_proj", "down_proj"]},
    "r6-patterns": {
        "r": 6,
        "lora_alpha": 12,
        "target_modules": ["q_proj", "k_proj", "o_proj", "down_proj"],
        "rank_pattern": {"down_proj": 2},
        "alpha_pattern": {"k_proj": 30},
    },
}  # fmt: skip


@pytest.fixture(scope="session")
def base_path() -> Path:
    return base_model_path(DEFAULT_BASE, TEST_MODEL_DIR)


@pytest.fixture(scope="session")
def tokenizer(base_path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_path)


def load_base(base_path: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32).eval()


def make_adapter(base: Any, out: Path, seed: int, **config: Any) -> Path:
    """A non-trivial adapter: PEFT's random init for B too (init_lora_weights=False), scaled down."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = get_peft_model(base, LoraConfig(init_lora_weights=False, task_type="CAUSAL_LM", **config))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.mul_(0.5)  # strong enough to change greedy tokens, mild enough to stay fluent-ish
    model.save_pretrained(out)
    model.unload()
    return out


@pytest.fixture(scope="session")
def adapter_root(tmp_path_factory: pytest.TempPathFactory, base_path: Path) -> Path:
    root = tmp_path_factory.mktemp("moe-adapters")
    base = load_base(base_path)
    for seed, (name, config) in enumerate(ADAPTER_SPECS.items()):
        make_adapter(base, root / name, seed, **config)
    return root
