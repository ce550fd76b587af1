"""Adapters resident in a model's stacked LoRA slots: hot load, unload, and an LRU of `max_loras`.

An adapter in use by a running row is pinned and never evicted; an evicted one goes back to disk
and is read again on its next use. Loading validates every module before any slot is written, so a
bad adapter leaves the resident set untouched.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from core.errors import InvalidRequest, Unprocessable
from experts.moe.layer import MoELoRALinear, RoutingState
from experts.moe.peft_format import PARAM, PeftAdapter, read_adapter
from experts.paths import confined_path

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def inject(
    model: nn.Module, capacity: int, rank: int, state: RoutingState, targets: tuple[str, ...] = TARGETS
) -> dict[str, MoELoRALinear]:
    """Wrap every target projection in place; returns the wrappers keyed by module path."""
    layers: dict[str, MoELoRALinear] = {}
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if child_name in targets and isinstance(child, nn.Linear):
                wrapped = MoELoRALinear(child, capacity, rank, state)
                setattr(parent, child_name, wrapped)
                layers[f"{parent_name}.{child_name}" if parent_name else child_name] = wrapped
    return layers


@dataclass
class Resident:
    index: int
    nbytes: int
    load_s: float
    pins: int = 0


class AdapterStore:
    """Maps adapter paths to slot indices in the injected layers of one model."""

    def __init__(
        self,
        model: nn.Module,
        *,
        max_loras: int = 8,
        rank: int = 8,
        root: Path | None = None,
        base_names: tuple[str, ...] = (),
    ) -> None:
        if max_loras < 1:
            raise InvalidRequest("max_loras must be at least 1", param="max_loras")
        self.state = RoutingState()
        self.layers = inject(model, max_loras, rank, self.state)
        self.max_loras = max_loras
        self.root = root
        self.base_names = {n.lower() for n in base_names}
        self._resident: OrderedDict[str, Resident] = OrderedDict()

    # -- public API -------------------------------------------------------------------------------

    def resolve(self, path: str) -> str:
        return str(confined_path(path, self.root, param=PARAM)) if self.root else str(Path(path).resolve())

    def resident(self) -> dict[str, Resident]:
        return dict(self._resident)

    def acquire(self, path: str) -> int | None:
        """Pin the adapter (loading it if needed) and return its index; None while every slot is pinned."""
        key = self.resolve(path)
        if key in self._resident:
            self._resident.move_to_end(key)
        elif not self._make_room():
            return None
        else:
            self._load(key)
        entry = self._resident[key]
        entry.pins += 1
        return entry.index

    def release(self, path: str) -> None:
        entry = self._resident.get(self.resolve(path))
        if entry is not None and entry.pins > 0:
            entry.pins -= 1

    def load(self, path: str) -> int:
        """Load without pinning (a warm-up); raises when every slot is pinned."""
        index = self.acquire(path)
        if index is None:
            raise Unprocessable(f"all {self.max_loras} adapter slots are in use", param=PARAM)
        self.release(path)
        return index

    def unload(self, path: str) -> bool:
        key = self.resolve(path)
        entry = self._resident.get(key)
        if entry is None or entry.pins:
            return False
        for layer in self.layers.values():
            layer.clear_adapter(entry.index)
        del self._resident[key]
        return True

    # -- internals --------------------------------------------------------------------------------

    def _make_room(self) -> bool:
        if len(self._resident) < self.max_loras:
            return True
        victim = next((k for k, e in self._resident.items() if e.pins == 0), None)
        return victim is not None and self.unload(victim)

    def _free_index(self) -> int:
        used = {e.index for e in self._resident.values()}
        return next(i for i in range(self.max_loras) if i not in used)

    def _load(self, key: str) -> None:
        started = time.perf_counter()
        adapter = read_adapter(Path(key))
        self._check_fits(adapter)
        index = self._free_index()
        for name, layer in self.layers.items():
            module = adapter.modules.get(name)
            if module is None:
                layer.clear_adapter(index)
            else:
                layer.set_adapter(index, module.a, module.b, module.scaling)
        self._resident[key] = Resident(index, adapter.nbytes, time.perf_counter() - started)

    def _check_fits(self, adapter: PeftAdapter) -> None:
        """Refuse before writing anything: a different base, or modules and shapes this model lacks."""
        if adapter.base_model and self.base_names:
            tail = adapter.base_model.rstrip("/").rsplit("/", 1)[-1].lower()
            if tail not in self.base_names:
                raise Unprocessable(
                    f"adapter {adapter.path} was trained on {adapter.base_model}, not on this base model "
                    f"({', '.join(sorted(self.base_names))})",
                    param=PARAM,
                )
        for name, module in adapter.modules.items():
            layer = self.layers.get(name)
            if layer is None:
                raise Unprocessable(f"adapter {adapter.path} targets {name}, which this base model lacks", param=PARAM)
            if module.a.shape[1] != layer.in_features or module.b.shape[0] != layer.out_features:
                raise Unprocessable(
                    f"adapter {adapter.path}: {name} has LoRA shapes A{tuple(module.a.shape)} "
                    f"B{tuple(module.b.shape)}, the base layer is {layer.in_features}->{layer.out_features}",
                    param=PARAM,
                )
