"""Next-token choice per row: greedy, or temperature + top-p with the row's own seeded generator.

Each sampled row draws from its own `torch.Generator`, so its tokens never depend on how many
other rows share the batch or in which order they sit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def generator(self, device: torch.device) -> torch.Generator | None:
        if self.greedy:
            return None
        gen = torch.Generator(device=device)
        if self.seed is None:
            gen.seed()
        else:
            gen.manual_seed(self.seed)
        return gen


def top_p_probs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Probabilities over the smallest set of tokens whose mass reaches `top_p` (always >= 1 token)."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1.0:
        return probs
    sorted_probs, order = probs.sort(descending=True)
    keep = sorted_probs.cumsum(-1) - sorted_probs < top_p
    kept = torch.zeros_like(probs).scatter(-1, order, sorted_probs * keep)
    return kept / kept.sum(-1, keepdim=True)


def next_tokens(
    logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator | None]
) -> list[int]:
    """logits [rows, vocab] -> one token id per row."""
    chosen = logits.argmax(-1)
    for row, (p, gen) in enumerate(zip(params, generators, strict=True)):
        if not p.greedy:
            probs = top_p_probs(logits[row], p.temperature, p.top_p)
            chosen[row] = torch.multinomial(probs, 1, generator=gen)[0]
    return chosen.tolist()
