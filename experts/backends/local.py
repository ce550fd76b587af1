"""Local causal LMs (the bundled SmolLM2) and LoRA adapters on them, one model per base.

Rows bound for different adapters of the same base share one batched `generate` through
PEFT's mixed-adapter batches; the local expert itself runs as PEFT's `__base__` row.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from core.errors import InvalidRequest, MoEError, Unprocessable
from experts.backends.base import CallOutcome
from experts.generation import ExpertCall, GenerationRequest, GenerationResult, apply_stop

BASE_ADAPTER = "__base__"


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


class LocalEngine:
    """One base model in memory plus every adapter loaded onto it so far."""

    def __init__(self, model_path: Path, device: torch.device) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side = "left"
        self.model: Any = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).to(device)
        self.model.eval()
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self._adapters: dict[str, str] = {}
        self._lock = threading.Lock()

    def run(self, calls: Sequence[ExpertCall]) -> list[CallOutcome]:
        outcomes: list[CallOutcome | None] = [None] * len(calls)
        greedy: list[tuple[int, str, list[int]]] = []
        with self._lock:
            for i, call in enumerate(calls):
                try:
                    adapter = self._adapter_for(call)
                    ids = self._encode(call.request)
                except MoEError as exc:
                    outcomes[i] = exc
                    continue
                if call.request.greedy:
                    greedy.append((i, adapter, ids))
                else:
                    # Sampled rows run alone with their own seed, so no batch mate changes their draw.
                    outcomes[i] = self._generate([(adapter, ids)], [call.request])[0]
            if greedy:
                results = self._generate([(a, ids) for _, a, ids in greedy], [calls[i].request for i, _, _ in greedy])
                for (i, _, _), result in zip(greedy, results, strict=True):
                    outcomes[i] = result
        return [o for o in outcomes if o is not None]

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

    def _adapter_for(self, call: ExpertCall) -> str:
        path = call.expert.adapter_path
        if not path:
            return BASE_ADAPTER
        if path not in self._adapters:
            self._load_adapter(path)
        return self._adapters[path]

    def _load_adapter(self, path: str) -> None:
        from peft import PeftModel

        name = "a" + hashlib.sha1(path.encode()).hexdigest()[:12]
        try:
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(path, adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name)
        except (ValueError, OSError, RuntimeError, KeyError) as exc:
            raise Unprocessable(f"cannot load adapter {path}: {exc}", param="adapter_path") from exc
        self.model.eval()
        self._adapters[path] = name

    @torch.inference_mode()
    def _generate(self, rows: list[tuple[str, list[int]]], requests: list[GenerationRequest]) -> list[GenerationResult]:
        width = max(len(ids) for _, ids in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for _, ids in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids in rows], device=self.device)
        first = requests[0]
        kwargs: dict[str, Any] = {
            "max_new_tokens": max(r.max_tokens for r in requests),
            "do_sample": not first.greedy,
            "pad_token_id": pad,
        }
        if not first.greedy:
            kwargs.update(temperature=first.temperature, top_p=first.top_p)
            torch.manual_seed(first.seed if first.seed is not None else torch.seed())
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if self._adapters:
            kwargs["adapter_names"] = [adapter for adapter, _ in rows]
        out = self.model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
        return [
            self._result(out[row, width:], len(ids), req)
            for row, ((_, ids), req) in enumerate(zip(rows, requests, strict=True))
        ]

    def _result(self, new_ids: torch.Tensor, prompt_len: int, request: GenerationRequest) -> GenerationResult:
        tokens = new_ids.tolist()[: request.max_tokens]
        eos = self.tokenizer.eos_token_id
        finished = eos in tokens
        if finished:
            tokens = tokens[: tokens.index(eos)]
        text, stopped = apply_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), request.stop)
        return GenerationResult(
            text=text.strip(),
            prompt_tokens=prompt_len,
            completion_tokens=len(tokens) + int(finished),
            finish_reason="stop" if finished or stopped else "length",
        )
