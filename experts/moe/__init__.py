"""The MoE layer core: many LoRA adapters stacked on one frozen base, routed or gated per row/token,
and a continuous-batching generation engine over mixed-adapter batches."""

from experts.moe.engine import EngineRequest, GenerationEngine, Row
from experts.moe.gate import GateConfig, gate_weights
from experts.moe.layer import NO_ADAPTER, MoELoRALinear, RoutingState
from experts.moe.peft_format import PeftAdapter, read_adapter
from experts.moe.sampling import SamplingParams
from experts.moe.store import TARGETS, AdapterStore, inject

__all__ = [
    "NO_ADAPTER",
    "TARGETS",
    "AdapterStore",
    "EngineRequest",
    "GateConfig",
    "GenerationEngine",
    "MoELoRALinear",
    "PeftAdapter",
    "RoutingState",
    "Row",
    "SamplingParams",
    "gate_weights",
    "inject",
    "read_adapter",
]
