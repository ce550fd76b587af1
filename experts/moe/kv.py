"""Row surgery on a left-padded batch: its KV cache (transformers' DynamicCache) and attention mask.

Rows join by left-padding the shorter of two batches and concatenating; rows leave by index
selection, after which columns no remaining row uses are trimmed off the left.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F
from transformers import DynamicCache


@dataclass
class Batch:
    cache: DynamicCache
    mask: torch.Tensor  # [rows, length]: 1 where a real token sits in the cache

    @property
    def length(self) -> int:
        return int(self.mask.shape[1])


def _pad_left(t: torch.Tensor, extra: int, dim: int) -> torch.Tensor:
    if extra == 0:
        return t
    pads = [0, 0] * (t.dim() - 1 - dim) + [extra, 0]
    return F.pad(t, pads)


def merge(old: Batch, new: Batch) -> Batch:
    """Append `new`'s rows after `old`'s; both stay right-aligned, so positions keep their meaning."""
    length = max(old.length, new.length)
    for a, b in zip(old.cache.layers, new.cache.layers, strict=True):
        a.keys = torch.cat([_pad_left(a.keys, length - old.length, 2), _pad_left(b.keys, length - new.length, 2)])
        a.values = torch.cat([_pad_left(a.values, length - old.length, 2), _pad_left(b.values, length - new.length, 2)])
    mask = torch.cat([_pad_left(old.mask, length - old.length, 1), _pad_left(new.mask, length - new.length, 1)])
    return Batch(old.cache, mask)


def select(batch: Batch, keep: list[int]) -> Batch:
    index = torch.tensor(keep, dtype=torch.long, device=batch.mask.device)
    mask = batch.mask.index_select(0, index)
    used = mask.any(0).nonzero()
    start = int(used[0]) if len(used) else mask.shape[1]
    for layer in batch.cache.layers:
        layer.keys = layer.keys.index_select(0, index)[:, :, start:]
        layer.values = layer.values.index_select(0, index)[:, :, start:]
    return Batch(batch.cache, mask[:, start:])
