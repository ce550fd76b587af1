"""Logging set-up shared by the server, the CLI and workers."""

from __future__ import annotations

import logging
import os


def configure_logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("MOE_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "LiteLLM", "litellm", "urllib3", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
