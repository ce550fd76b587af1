"""The one interface every expert backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.errors import MoEError
from experts.generation import ExpertCall, GenerationResult

# A bad call fails alone: its batch mates still get their results.
CallOutcome = GenerationResult | MoEError


class ExpertRunner(Protocol):
    """Runs a batch of calls that share one model in memory, one outcome per call, in order."""

    def run(self, calls: Sequence[ExpertCall]) -> list[CallOutcome]: ...
