"""Which runner serves an expert, and which calls may share a batch (same model in memory)."""

from __future__ import annotations

import threading
from pathlib import Path

from experts.backends.base import ExpertRunner
from experts.backends.local import LocalEngine, pick_device
from experts.backends.remote import LiteLLMRunner
from experts.bundled import base_model_path
from experts.schemas import ExpertKind, ExpertOut


class BackendPool:
    """Builds each runner once: one LocalEngine per base model, one LiteLLMRunner for remotes."""

    def __init__(self, model_dir: Path, device: str = "auto", remote_timeout_s: float = 120.0) -> None:
        self.model_dir = model_dir
        self.device = pick_device(device)
        self._engines: dict[str, LocalEngine] = {}
        self._remote = LiteLLMRunner(timeout_s=remote_timeout_s)
        self._lock = threading.Lock()

    @staticmethod
    def batch_key(expert: ExpertOut) -> str:
        """Rows for any adapter of one base share a forward pass; remote calls group per expert."""
        if expert.kind == ExpertKind.litellm:
            return f"litellm:{expert.name}"
        return f"local:{expert.base_model}"

    def runner(self, expert: ExpertOut) -> ExpertRunner:
        if expert.kind == ExpertKind.litellm:
            return self._remote
        return self.engine(str(expert.base_model))

    def engine(self, base_model: str) -> LocalEngine:
        with self._lock:
            if base_model not in self._engines:
                path = base_model_path(base_model, self.model_dir)
                self._engines[base_model] = LocalEngine(path, self.device)
            return self._engines[base_model]
