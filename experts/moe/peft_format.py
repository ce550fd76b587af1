"""Reading PEFT's on-disk LoRA format (`adapter_config.json` + `adapter_model.safetensors`).

Only what the stacked layer can serve exactly is accepted; everything else is refused with a
message that names the config field, rather than loaded half-way.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.errors import Unprocessable
from experts.paths import check_adapter_dir

PARAM = "adapter_path"
_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<which>[AB])(?:\.[^.]+)?\.weight$")
# Config fields whose non-default value changes the maths in a way the stacked layer does not do.
_UNSUPPORTED = {
    "use_dora": "DoRA (use_dora)",
    "modules_to_save": "modules_to_save",
    "fan_in_fan_out": "fan_in_fan_out",
    "lora_bias": "lora_bias",
    "trainable_token_indices": "trainable_token_indices",
    "layer_replication": "layer_replication",
    "target_parameters": "target_parameters",
    "alora_invocation_tokens": "aLoRA (alora_invocation_tokens)",
}


@dataclass(frozen=True)
class ModuleLora:
    a: torch.Tensor  # [r, in]
    b: torch.Tensor  # [out, r]
    scaling: float

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])


@dataclass(frozen=True)
class PeftAdapter:
    path: Path
    base_model: str | None
    modules: dict[str, ModuleLora]  # keyed by module path in the base model, e.g. model.layers.0.mlp.up_proj

    @property
    def nbytes(self) -> int:
        return sum(m.a.nbytes + m.b.nbytes for m in self.modules.values())

    @property
    def ranks(self) -> set[int]:
        return {m.rank for m in self.modules.values()}


def read_config(path: Path) -> dict[str, Any]:
    check_adapter_dir(path)
    try:
        config = json.loads((path / "adapter_config.json").read_text())
    except json.JSONDecodeError as exc:
        raise Unprocessable(f"{path}/adapter_config.json is not valid JSON: {exc}", param=PARAM) from exc
    if not isinstance(config, dict):
        raise Unprocessable(f"{path}/adapter_config.json must hold an object", param=PARAM)
    check_supported(config, path)
    return config


def check_supported(config: dict[str, Any], path: Path) -> None:
    peft_type = config.get("peft_type", "LORA")
    if peft_type != "LORA":
        raise Unprocessable(f"adapter {path} is a {peft_type} adapter; only LORA is supported", param=PARAM)
    for key, label in _UNSUPPORTED.items():
        if config.get(key):
            raise Unprocessable(f"adapter {path} uses {label}, which the LoRA engine does not support", param=PARAM)


def read_adapter(path: Path) -> PeftAdapter:
    """Load an adapter's tensors on CPU with each module's scaling resolved from r/alpha/patterns."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config = read_config(path)
    try:
        tensors = load_file(path / "adapter_model.safetensors", device="cpu")
    except (SafetensorError, OSError) as exc:
        raise Unprocessable(f"cannot read {path}/adapter_model.safetensors: {exc}", param=PARAM) from exc
    pairs = _pair_tensors(tensors, path)
    modules = {name: _module_lora(name, a, b, config, path) for name, (a, b) in pairs.items()}
    if not modules:
        raise Unprocessable(f"adapter {path} holds no LoRA weights", param=PARAM)
    return PeftAdapter(path=path, base_model=config.get("base_model_name_or_path"), modules=modules)


def _pair_tensors(tensors: dict[str, torch.Tensor], path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    halves: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        if "lora_magnitude_vector" in key:
            raise Unprocessable(f"adapter {path} holds DoRA magnitudes ({key}); DoRA is not supported", param=PARAM)
        match = _KEY.match(key)
        if match is None:
            raise Unprocessable(f"adapter {path} holds a tensor the LoRA engine cannot place: {key}", param=PARAM)
        halves.setdefault(match["module"], {})[match["which"]] = tensor
    incomplete = [m for m, h in halves.items() if set(h) != {"A", "B"}]
    if incomplete:
        raise Unprocessable(f"adapter {path} lacks lora_A or lora_B for {incomplete[0]}", param=PARAM)
    return {m: (h["A"], h["B"]) for m, h in halves.items()}


def _pattern_value(patterns: dict[str, Any], module: str) -> Any:
    """PEFT's rule (peft.utils.other.get_pattern_key): a pattern matches a dotted suffix of the name."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return None


def _module_lora(name: str, a: torch.Tensor, b: torch.Tensor, config: dict[str, Any], path: Path) -> ModuleLora:
    if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
        raise Unprocessable(
            f"adapter {path}: {name} has LoRA shapes A{tuple(a.shape)} B{tuple(b.shape)} that do not pair up",
            param=PARAM,
        )
    rank = int(a.shape[0])
    declared = _pattern_value(config.get("rank_pattern") or {}, name) or config.get("r", rank)
    if int(declared) != rank:
        raise Unprocessable(f"adapter {path}: {name} has rank {rank} but its config says r={declared}", param=PARAM)
    alpha = _pattern_value(config.get("alpha_pattern") or {}, name) or config.get("lora_alpha", 8)
    scaling = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    return ModuleLora(a=a.float(), b=b.float(), scaling=float(scaling))
