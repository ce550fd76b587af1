"""Adapter and model paths are confined to the configured model directory."""

from __future__ import annotations

from pathlib import Path

from core.errors import InvalidRequest, Unprocessable

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def confined_path(path: str, root: Path, *, param: str = "adapter_path") -> Path:
    """Resolve `path` (absolute, or relative to `root`) and refuse anything outside `root`."""
    root = root.resolve()
    candidate = Path(path)
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise InvalidRequest(f"{param} must be inside the model directory {root}", param=param)
    return resolved


def check_adapter_dir(path: Path, *, param: str = "adapter_path") -> None:
    missing = [f for f in ADAPTER_FILES if not (path / f).is_file()]
    if missing:
        raise Unprocessable(f"adapter folder {path} is missing {', '.join(missing)}", param=param)
