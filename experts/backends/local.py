"""Local causal LMs (the bundled SmolLM2) and LoRA adapters on them, one model per base.

Rows bound for the base model and for any of its adapters share one continuous batch in the
MoE engine (experts/moe): one base matmul per layer, each row meeting only its own adapter.
Callers in different threads each drive the engine a step at a time under one lock, so
concurrent `run`s and `stream`s join the same batch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from core.compute import on_compute
from core.errors import InvalidRequest, MoEError
from experts.backends.base import CallOutcome
from experts.generation import ExpertCall, GenerationRequest, GenerationResult
from experts.moe import AdapterStore, EngineRequest, GenerationEngine, Row, SamplingParams


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


class LocalEngine:
    """One base model in memory plus up to `max_loras` resident adapters in its stacked LoRA slots."""

    @on_compute
    def __init__(
        self,
        model_path: Path,
        device: torch.device,
        *,
        model_dir: Path | None = None,
        max_loras: int = 8,
        max_batch: int = 32,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model: Any = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).to(device)
        self.model.eval()
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 2048))
        # Base models live at <model_dir>/base/<name>; adapter paths are confined to <model_dir>.
        root = model_dir or model_path.resolve().parents[1]
        self.store = AdapterStore(self.model, max_loras=max_loras, root=root, base_names=(model_path.name,))
        self.engine = GenerationEngine(self.model, self.tokenizer, self.store, max_batch=max_batch)
        self._lock = threading.Lock()

    def run(self, calls: Sequence[ExpertCall]) -> list[CallOutcome]:
        outcomes: list[CallOutcome | None] = [None] * len(calls)
        rows: dict[int, Row] = {}
        with self._lock:
            for i, call in enumerate(calls):
                try:
                    rows[i] = self.engine.submit(self._engine_request(call))
                except MoEError as exc:
                    outcomes[i] = exc
        self._drive(rows.values())
        for i, row in rows.items():
            outcomes[i] = row.error or self._result(row)
        return [o for o in outcomes if o is not None]

    def stream(self, call: ExpertCall) -> Iterator[str]:
        """Text deltas of one call as tokens are generated; raises the call's MoEError, if any."""
        with self._lock:
            row = self.engine.submit(self._engine_request(call))
        started = False
        try:
            while True:
                with self._lock:
                    if not row.done:
                        self._step()
                    piece, done = row.take_text(), row.done
                if not started:  # run() strips the answer; the stream drops the same leading space
                    piece = piece.lstrip()
                    started = bool(piece)
                if piece:
                    yield piece
                if done:
                    break
            if row.error is not None:
                raise row.error
        finally:
            with self._lock:
                self.engine.cancel(row)  # a no-op for a finished row; frees the slot of an abandoned one

    def _drive(self, rows: Iterable[Row]) -> None:
        pending = list(rows)
        while not all(r.done for r in pending):
            with self._lock:
                self._step()

    @on_compute
    def _step(self) -> None:
        try:
            self.engine.step()
        except RuntimeError as exc:  # e.g. out of memory: fail the rows in flight, keep serving
            self.engine.abort(MoEError(f"local generation failed: {exc}"))

    def _engine_request(self, call: ExpertCall) -> EngineRequest:
        request = call.request
        return EngineRequest(
            prompt_ids=self._encode(request),
            adapter=call.expert.adapter_path or None,
            max_tokens=request.max_tokens,
            sampling=SamplingParams(request.temperature, request.top_p, request.seed),
            stop=request.stop,
        )

    def _encode(self, request: GenerationRequest) -> list[int]:
        ids = self.tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        if len(ids) + request.max_tokens > self.max_positions:
            raise InvalidRequest(
                f"prompt of {len(ids)} tokens plus max_tokens {request.max_tokens} exceeds the model's "
                f"context of {self.max_positions} tokens",
                param="messages",
            )
        return list(ids)

    @staticmethod
    def _result(row: Row) -> GenerationResult:
        return GenerationResult(
            text=row.text.strip(),
            prompt_tokens=len(row.request.prompt_ids),
            completion_tokens=len(row.token_ids),
            finish_reason="stop" if row.finish_reason == "stop" else "length",
        )
