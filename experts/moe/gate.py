"""Gated mixing over adapters (X-LoRA / LoRAMoE): per-token weights, top-k, renormalised."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GateConfig:
    top_k: int | None = None  # None keeps every adapter
    null_expert: bool = False  # an extra gate output that routes weight to "no adapter"
    shared_adapter: int | None = None  # always applied with weight 1, never gated
    temperature: float = 1.0


def gate_weights(logits: torch.Tensor, config: GateConfig) -> torch.Tensor:
    """Gate logits [..., E(+1 null)] -> weights over the E adapters; the null expert's share is dropped."""
    if config.shared_adapter is not None:
        logits = logits.clone()
        logits[..., config.shared_adapter] = float("-inf")
    probs = torch.softmax(logits / config.temperature, dim=-1)
    if config.top_k is not None and config.top_k < probs.shape[-1]:
        top, where = probs.topk(config.top_k, dim=-1)
        probs = torch.zeros_like(probs).scatter(-1, where, top)
    # Renormalise over the kept experts; the null expert keeps its share, so it can switch adapters off.
    probs = probs / probs.sum(dim=-1, keepdim=True).clamp_min(1e-9)
    return probs[..., :-1] if config.null_expert else probs
