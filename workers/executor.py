"""How expert calls get executed: the interface the agents use, whatever runs underneath."""

from __future__ import annotations

from typing import Protocol

from experts.generation import ExpertCall, GenerationResult


class Executor(Protocol):
    async def submit(self, call: ExpertCall) -> GenerationResult:
        """Run one call (possibly batched with concurrent ones); raises a MoEError on failure."""

    async def aclose(self) -> None: ...
