"""MoELoRALinear on toy tensors: routed rows meet only their own adapter; gated mode mixes them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from experts.moe import GateConfig, MoELoRALinear, RoutingState, gate_weights

IN, OUT = 12, 10
RANKS = [2, 4, 3]


def make_layer(capacity: int = 3) -> tuple[MoELoRALinear, list[tuple[torch.Tensor, torch.Tensor, float]]]:
    torch.manual_seed(0)
    layer = MoELoRALinear(nn.Linear(IN, OUT), capacity, rank=1, state=RoutingState())
    adapters = []
    for i, r in enumerate(RANKS):
        a, b, scaling = torch.randn(r, IN), torch.randn(OUT, r), 0.5 * (i + 1)
        layer.set_adapter(i, a, b, scaling)
        adapters.append((a, b, scaling))
    return layer, adapters


def reference(layer: MoELoRALinear, x: torch.Tensor, adapter: tuple[torch.Tensor, torch.Tensor, float] | None):
    y = layer.base(x)
    if adapter is None:
        return y
    a, b, scaling = adapter
    return y + (x @ a.T @ b.T) * scaling


def test_routed_rows_each_meet_only_their_adapter_and_minus_one_is_the_base() -> None:
    layer, adapters = make_layer()
    x = torch.randn(5, 7, IN)
    indices = [2, -1, 0, 1, 2]
    layer.state.route(indices)
    out = layer(x)
    for row, index in enumerate(indices):
        expected = reference(layer, x[row], adapters[index] if index >= 0 else None)
        torch.testing.assert_close(out[row], expected, rtol=1e-5, atol=1e-5)
    assert layer.rank == max(RANKS)  # smaller ranks zero-padded up to the largest


def test_all_base_rows_skip_the_lora_path_and_clearing_an_adapter_zeroes_it() -> None:
    layer, _ = make_layer()
    x = torch.randn(3, 2, IN)
    layer.state.route([-1, -1, -1])
    assert layer.state.slots is None
    torch.testing.assert_close(layer(x), layer.base(x))
    layer.clear_adapter(1)
    layer.state.route([1, 1, 1])
    torch.testing.assert_close(layer(x), layer.base(x))


def test_a_row_does_not_depend_on_its_batch_mates() -> None:
    layer, _ = make_layer()
    x = torch.randn(4, 3, IN)
    layer.state.route([0, 1, 2, 0])
    together = layer(x)
    layer.state.route([1])
    alone = layer(x[1:2])
    torch.testing.assert_close(together[1:2], alone, rtol=1e-5, atol=1e-5)


def test_gated_one_hot_equals_routed() -> None:
    layer, _ = make_layer()
    layer.add_gate(GateConfig(top_k=1))
    x = torch.randn(3, 4, IN)
    indices = [2, 0, 1]
    layer.state.route(indices)
    routed = layer(x)
    with torch.no_grad():
        layer.gate.bias.zero_()
    layer.state.gated()
    one_hot = torch.zeros(3, 4, 3)
    one_hot[torch.arange(3), :, torch.tensor(indices)] = 1.0
    layer.state.gate_override = one_hot
    torch.testing.assert_close(layer(x), routed, rtol=1e-5, atol=1e-5)
    # The trained gate reaches the same one-hot through top-1: a gate that prefers adapter 1 everywhere.
    layer.state.gate_override = None
    with torch.no_grad():
        layer.gate.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    layer.state.route([1, 1, 1])
    expected = layer(x)
    layer.state.gated()
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_gradients_reach_the_gate_and_not_the_frozen_weights() -> None:
    layer, _ = make_layer()
    gate = layer.add_gate(GateConfig(top_k=2, null_expert=True))
    nn.init.normal_(gate.weight, std=0.1)
    layer.state.gated()
    layer(torch.randn(2, 5, IN)).pow(2).sum().backward()
    assert gate.weight.grad is not None and gate.weight.grad.abs().sum() > 0
    assert layer.base.weight.grad is None and not layer.lora_A.requires_grad


def test_gate_weights_top_k_renormalises_and_null_expert_takes_its_share() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    weights = gate_weights(logits, GateConfig(top_k=2))
    assert (weights > 0).sum() == 2
    torch.testing.assert_close(weights.sum(-1), torch.ones(1))
    with_null = gate_weights(torch.tensor([[0.0, 0.0, 5.0]]), GateConfig(null_expert=True))
    assert with_null.shape == (1, 2) and with_null.sum() < 0.02  # the null expert switched adapters off
    shared = gate_weights(torch.tensor([[9.0, 0.0, 0.0]]), GateConfig(shared_adapter=0))
    assert shared[0, 0] == 0 and torch.isclose(shared.sum(), torch.tensor(1.0))


def test_shared_adapter_is_always_applied_on_top_of_the_gate() -> None:
    layer, adapters = make_layer()
    layer.add_gate(GateConfig(shared_adapter=0, top_k=1))
    with torch.no_grad():
        layer.gate.bias.copy_(torch.tensor([0.0, 0.0, 5.0]))
    layer.state.gated()
    x = torch.randn(2, IN)
    a0, b0, s0 = adapters[0]
    expected = reference(layer, x, adapters[2]) + (x @ a0.T @ b0.T) * s0
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_shapes_that_do_not_fit_are_refused() -> None:
    layer, _ = make_layer()
    with pytest.raises(ValueError, match="do not fit"):
        layer.set_adapter(0, torch.randn(4, IN + 1), torch.randn(OUT, 4), 1.0)
