"""The routing choice encoded in a name (RouteLLM-style): `knn`, `cost-0.3`, `topp-0.8`, `head-topk-2`."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import NotFound

AUTO = "auto"


@dataclass(frozen=True)
class RouteSpec:
    strategy: str | None = None  # None: the configured default
    share: float | None = None  # cost strategy: target share of calls to the most expensive expert
    p: float | None = None
    k: int | None = None


def _number(token: str, name: str, kind: type[float] | type[int]) -> float | int:
    try:
        return kind(token)
    except ValueError:
        raise NotFound(f"'{name}': '{token}' is not a number", param="model") from None


def parse_spec(name: str, strategies: set[str]) -> RouteSpec:
    """Raises NotFound naming the known strategies when `name` is not a routing spec."""
    tokens = name.split("-") if name else [""]
    strategy: str | None = None
    share = p = k = None
    i = 0
    if tokens[0] in strategies or tokens[0] == AUTO:
        strategy = None if tokens[0] == AUTO else tokens[0]
        i = 1
        if strategy == "cost" and i < len(tokens) and tokens[i] not in ("topp", "topk"):
            share = float(_number(tokens[i], name, float))
            i += 1
    while i < len(tokens):
        key, value = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else ""
        if key == "topp":
            p = float(_number(value, name, float))
        elif key == "topk":
            k = int(_number(value, name, int))
        else:
            known = ", ".join(sorted(strategies))
            raise NotFound(
                f"unknown routing model '{name}' (strategies: {known}; options: cost-<share>, topp-<p>, topk-<k>)",
                param="model",
            )
        i += 2
    return RouteSpec(strategy, share, p, k)
