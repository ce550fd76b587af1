"""Process-wide environment defaults that must be set before heavy libraries import."""

from __future__ import annotations

import os


def set_offline_defaults() -> None:
    # No hub downloads at run time, and litellm must not fetch its price map from the internet.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


set_offline_defaults()
