"""Continuous batching over a mixed-adapter batch on one base model.

Each `step()` either prefills the rows waiting to join (one left-padded forward pass) and merges
them into the running batch, or decodes one token for every running row. Finished rows leave
between steps. All rows share one base matmul per layer; each row meets its own adapter through
the routed `MoELoRALinear` slots.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from transformers import DynamicCache

from core.errors import MoEError
from experts.moe import kv
from experts.moe.layer import NO_ADAPTER
from experts.moe.sampling import SamplingParams, next_tokens
from experts.moe.store import AdapterStore
from experts.moe.text import TextTracker

FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(frozen=True)
class EngineRequest:
    prompt_ids: list[int]
    adapter: str | None = None  # adapter folder; None runs the base model
    max_tokens: int = 64
    sampling: SamplingParams = SamplingParams()
    stop: tuple[str, ...] = ()
    on_text: Callable[[str], None] | None = None  # called with each streamable text delta


@dataclass
class Row:
    """One request's life in the engine; readable by the caller while it runs."""

    id: int
    request: EngineRequest
    tracker: TextTracker
    generator: torch.Generator | None
    index: int = NO_ADAPTER
    token_ids: list[int] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    error: MoEError | None = None
    pending: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def text(self) -> str:
        return self.tracker.text

    def take_text(self) -> str:
        piece, self.pending = "".join(self.pending), []
        return piece


class GenerationEngine:
    """Not thread-safe: callers serialise `submit`/`step`/`cancel` (LocalEngine holds a lock)."""

    def __init__(self, model: Any, tokenizer: Any, store: AdapterStore, max_batch: int = 32) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.store = store
        self.max_batch = max_batch
        self.device = next(model.parameters()).device
        self.eos_ids = _eos_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        self.waiting: list[Row] = []
        self.running: list[Row] = []
        self.batch: kv.Batch | None = None
        self._ids = itertools.count()
        self._routed: list[int] | None = None

    def submit(self, request: EngineRequest) -> Row:
        row = Row(
            next(self._ids), request, TextTracker(self.tokenizer, request.stop), request.sampling.generator(self.device)
        )
        self.waiting.append(row)
        return row

    def cancel(self, row: Row) -> None:
        if row in self.waiting:
            self.waiting.remove(row)
        if not row.done:
            row.finish_reason = "cancelled"
            self._retire()

    def abort(self, error: MoEError) -> None:
        """Fail every row in flight (after a failed forward pass the shared cache is unusable)."""
        for row in self.running + self.waiting:
            if not row.done:
                row.error, row.finish_reason = error, "error"
        self.waiting = []
        self._retire()

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.running

    @torch.inference_mode()
    def step(self) -> None:
        joining = self._admit()
        if joining:
            self._prefill(joining)
        elif self.running:
            self._decode()
        self._retire()

    def generate(self, requests: list[EngineRequest]) -> list[Row]:
        rows = [self.submit(r) for r in requests]
        while not all(r.done for r in rows):
            self.step()
        return rows

    # -- scheduling -------------------------------------------------------------------------------

    def _admit(self) -> list[Row]:
        """Rows that join now: room in the batch and an adapter slot (rows wait while slots are pinned)."""
        joining: list[Row] = []
        for row in list(self.waiting):
            if len(self.running) + len(joining) >= self.max_batch:
                break
            adapter = row.request.adapter
            try:
                index = NO_ADAPTER if adapter is None else self.store.acquire(adapter)
            except MoEError as exc:
                self.waiting.remove(row)
                row.error, row.finish_reason = exc, "error"
                continue
            if index is None:
                continue
            row.index = index
            self.waiting.remove(row)
            joining.append(row)
        return joining

    def _retire(self) -> None:
        keep = [i for i, row in enumerate(self.running) if not row.done]
        if len(keep) == len(self.running):
            return
        for row in self.running:
            if row.done and row.request.adapter is not None:
                self.store.release(row.request.adapter)
        self.running = [self.running[i] for i in keep]
        self.batch = kv.select(self.batch, keep) if keep and self.batch is not None else None

    # -- model passes -----------------------------------------------------------------------------

    def _route(self, rows: list[Row]) -> None:
        indices = [r.index for r in rows]
        if indices != self._routed:  # re-gathering per-row adapters only when the batch changes
            self.store.state.route(indices)
            self._routed = indices

    def _prefill(self, rows: list[Row]) -> None:
        width = max(len(r.request.prompt_ids) for r in rows)
        ids = [[self.pad_id] * (width - len(r.request.prompt_ids)) + r.request.prompt_ids for r in rows]
        mask = [[0] * (width - len(r.request.prompt_ids)) + [1] * len(r.request.prompt_ids) for r in rows]
        input_ids = torch.tensor(ids, device=self.device)
        attention = torch.tensor(mask, device=self.device)
        cache = DynamicCache(config=self.model.config)
        self._route(rows)
        logits = self._forward(input_ids, attention, cache)
        fresh = kv.Batch(cache, attention)
        self.batch = fresh if self.batch is None else kv.merge(self.batch, fresh)
        self.running.extend(rows)
        self._accept(rows, logits)

    def _decode(self) -> None:
        assert self.batch is not None
        last = torch.tensor([[r.token_ids[-1]] for r in self.running], device=self.device)
        ones = torch.ones(len(self.running), 1, dtype=self.batch.mask.dtype, device=self.device)
        self.batch.mask = torch.cat([self.batch.mask, ones], dim=1)
        self._route(self.running)
        logits = self._forward(last, self.batch.mask, self.batch.cache)
        self._accept(self.running, logits)

    def _forward(self, input_ids: torch.Tensor, mask: torch.Tensor, cache: DynamicCache) -> torch.Tensor:
        # Positions count real tokens only, so left padding never shifts a row's rotary phases.
        positions = (mask.cumsum(-1) - 1).clamp_min(0)[:, -input_ids.shape[1] :]
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1, :]

    def _accept(self, rows: list[Row], logits: torch.Tensor) -> None:
        tokens = next_tokens(logits, [r.request.sampling for r in rows], [r.generator for r in rows])
        for row, token in zip(rows, tokens, strict=True):
            if row.done:  # cancelled mid-step
                continue
            row.token_ids.append(token)
            eos = token in self.eos_ids
            row.tracker.update(row.token_ids[:-1] if eos else row.token_ids)
            if eos or row.tracker.stopped:
                row.finish_reason = "stop"
            elif len(row.token_ids) >= row.request.max_tokens:
                row.finish_reason = "length"
            self._emit(row, row.tracker.delta(final=row.done))

    @staticmethod
    def _emit(row: Row, piece: str) -> None:
        if not piece:
            return
        row.pending.append(piece)
        if row.request.on_text is not None:
            row.request.on_text(piece)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    return ids
