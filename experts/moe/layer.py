"""`MoELoRALinear`: one frozen base `nn.Linear` plus N LoRA adapters stacked in slots.

Slot 0 is all zeros and stands for "no adapter", so a row routed to -1 costs the same gathered
matmul as any other row and the batch never splits. Scaling is folded into B when an adapter is
written, and smaller ranks are zero-padded up to the layer's current rank, which is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from experts.moe.gate import GateConfig, gate_weights

NO_ADAPTER = -1


@dataclass
class RoutingState:
    """Shared by every MoELoRALinear of one model; the engine sets it once per forward pass.

    `slots` holds one slot per row (0 = no adapter). `version` changes whenever `slots` does, so each
    layer re-gathers its per-row A/B once per batch composition instead of once per decode step.
    """

    slots: torch.Tensor | None = None
    mode: str = "routed"  # "routed" or "gated"
    version: int = 0
    gate_override: torch.Tensor | None = field(default=None, repr=False)

    def route(self, adapter_indices: torch.Tensor | list[int] | None) -> None:
        """Per-row adapter indices (-1 = none), or None to run the base model alone."""
        self.mode = "routed"
        self.version += 1
        if adapter_indices is None:
            self.slots = None
            return
        indices = torch.as_tensor(adapter_indices, dtype=torch.long)
        # All-base batches skip the LoRA path entirely: the base model alone is the speed baseline.
        self.slots = None if bool((indices == NO_ADAPTER).all()) else indices + 1

    def gated(self) -> None:
        self.mode = "gated"
        self.version += 1
        self.slots = None


class MoELoRALinear(nn.Module):
    """A frozen base linear layer with `capacity` LoRA slots (plus the zero slot)."""

    def __init__(self, base: nn.Linear, capacity: int, rank: int, state: RoutingState) -> None:
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.state = state
        self.capacity = capacity
        like = {"dtype": base.weight.dtype, "device": base.weight.device}
        self.register_buffer("lora_A", torch.zeros(capacity + 1, rank, base.in_features, **like))
        self.register_buffer("lora_B", torch.zeros(capacity + 1, base.out_features, rank, **like))
        self.occupied: set[int] = set()
        self.gate: nn.Linear | None = None
        self.gate_config = GateConfig()
        self._gathered: tuple[int, torch.Tensor, torch.Tensor] | None = None

    @property
    def rank(self) -> int:
        return int(self.lora_A.shape[1])

    @property
    def in_features(self) -> int:
        return int(self.base.in_features)

    @property
    def out_features(self) -> int:
        return int(self.base.out_features)

    def set_adapter(self, index: int, a: torch.Tensor, b: torch.Tensor, scaling: float) -> None:
        """Write adapter `index` (0-based): A [r, in], B [out, r]; grows the padded rank if needed."""
        r = a.shape[0]
        if a.shape != (r, self.in_features) or b.shape != (self.out_features, r):
            raise ValueError(
                f"LoRA shapes A{tuple(a.shape)} B{tuple(b.shape)} do not fit a {self.in_features}->"
                f"{self.out_features} layer"
            )
        if r > self.rank:
            self._grow_rank(r)
        slot = index + 1
        self.lora_A[slot].zero_()
        self.lora_B[slot].zero_()
        self.lora_A[slot, :r] = a.to(self.lora_A)
        self.lora_B[slot, :, :r] = b.to(self.lora_B) * scaling
        self.occupied.add(slot)
        self._gathered = None

    def clear_adapter(self, index: int) -> None:
        slot = index + 1
        self.lora_A[slot].zero_()
        self.lora_B[slot].zero_()
        self.occupied.discard(slot)
        self._gathered = None

    def _grow_rank(self, rank: int) -> None:
        pad = rank - self.rank
        self.lora_A = nn.functional.pad(self.lora_A, (0, 0, 0, pad))
        self.lora_B = nn.functional.pad(self.lora_B, (0, pad))

    def add_gate(self, config: GateConfig) -> nn.Linear:
        """A trainable gate over the adapters (plus a null expert when the config asks for one)."""
        outputs = self.capacity + int(config.null_expert)
        self.gate = nn.Linear(self.in_features, outputs, bias=True, device=self.base.weight.device)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)
        self.gate_config = config
        return self.gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.state.mode == "gated" and self.gate is not None:
            return y + self._gated_delta(x)
        slots = self.state.slots
        if slots is None or not self.occupied:
            return y
        return self._routed(x, y, slots)

    def _routed(self, x: torch.Tensor, y: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """Punica's BGMV in two batched matmuls: each row meets only its own adapter's A and B."""
        a, b = self._gathered_for(slots)
        if x.dim() != 3:  # the decoder always sends [rows, tokens, features]; other callers get reshaped
            shape = x.shape
            out = self._routed(x.reshape(shape[0], -1, shape[-1]), y.reshape(shape[0], -1, y.shape[-1]), slots)
            return out.reshape(*shape[:-1], -1)
        xa = torch.bmm(x, a)
        # In place when no graph is recorded: y is this layer's fresh output, so nothing else sees it.
        return y.baddbmm_(xa, b) if not torch.is_grad_enabled() else torch.baddbmm(y, xa, b)

    def _gathered_for(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cached = self._gathered
        if cached is not None and cached[0] == self.state.version:
            return cached[1], cached[2]
        idx = slots.to(self.lora_A.device)
        a = self.lora_A.index_select(0, idx).transpose(1, 2).contiguous()  # [rows, in, r]
        b = self.lora_B.index_select(0, idx).transpose(1, 2).contiguous()  # [rows, r, out]
        if not torch.is_grad_enabled():
            self._gathered = (self.state.version, a, b)
        return a, b

    def _gated_delta(self, x: torch.Tensor) -> torch.Tensor:
        """Per-token mixture over all adapter slots (X-LoRA / LoRAMoE); slot 0 is never gated."""
        assert self.gate is not None
        weights = self.state.gate_override
        if weights is None:
            weights = gate_weights(self.gate(x), self.gate_config)  # [..., capacity]
        a, b = self.lora_A[1:], self.lora_B[1:]
        xa = torch.einsum("...i,nri->...nr", x, a) * weights.unsqueeze(-1)
        delta = torch.einsum("...nr,nor->...o", xa, b)
        shared = self.gate_config.shared_adapter
        if shared is not None:
            delta = delta + x @ a[shared].T @ b[shared].T
        return delta
