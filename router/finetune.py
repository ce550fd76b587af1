"""Fine-tune the sentence encoder on labelled exemplars, so classes pull apart and "none of these" has room.

Loss: CosFace (additive cosine margin) against one learnable prototype per fine label, trained jointly
with the encoder. Every row in a batch is useful (no pair mining), and the margin is what makes
out-of-scope queries land between classes instead of inside one. The result is a plain
sentence-transformers folder: `Encoder(path)` loads it like the bundled one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.compute import on_compute
from core.errors import InvalidRequest

Progress = Callable[[str], None]
MARKER = "moe_finetune.json"


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: float = 1.0
    batch: int = 64
    lr: float = 3e-5
    prototype_lr: float = 3e-3
    scale: float = 30.0
    margin: float = 0.2
    seed: int = 0


def finetune_key(base: Path, texts: list[str], labels: list[str], config: FinetuneConfig) -> str:
    """What the result depends on: the base encoder, the labelled texts, the config."""
    blob = "\x1e".join(f"{label}\x1f{text}" for text, label in zip(texts, labels, strict=True))
    blob += "\x00" + str(base) + json.dumps(asdict(config), sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _prototypes(model, texts: list[str], y: np.ndarray, classes: int):  # type: ignore[no-untyped-def]
    """Start each prototype at its class's mean embedding, so the first steps already push the right way."""
    import torch

    vectors = model.encode(texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
    means = np.stack([vectors[y == k].mean(0) for k in range(classes)])
    return torch.nn.Parameter(torch.as_tensor(means, dtype=torch.float32))


@on_compute
def finetune_encoder(
    base: Path,
    texts: list[str],
    labels: list[str],
    out_dir: Path,
    config: FinetuneConfig | None = None,
    progress: Progress = lambda _: None,
) -> Path:
    """Train, then save to `out_dir` (via a temp folder, renamed at the end); returns `out_dir`."""
    import torch
    import torch.nn.functional as F
    from sentence_transformers import SentenceTransformer

    config = config or FinetuneConfig()
    classes = sorted(set(labels))
    if len(classes) < 2 or len(texts) != len(labels):
        raise InvalidRequest("fine-tuning needs texts with at least two labels", param="exemplars")
    torch.manual_seed(config.seed)
    y = np.array([classes.index(label) for label in labels])
    model = SentenceTransformer(str(base), device="cpu")
    prototypes = _prototypes(model, texts, y, len(classes))
    optimiser = torch.optim.AdamW(
        [{"params": model.parameters(), "lr": config.lr}, {"params": [prototypes], "lr": config.prototype_lr}],
        weight_decay=0.01,
    )
    steps = max(int(config.epochs * len(texts) / config.batch), 1)
    # The global RNG, seeded above before the model loads: the order is reproducible for a given seed.
    order = torch.cat([torch.randperm(len(texts)) for _ in range(int(np.ceil(config.epochs)))])
    targets = torch.as_tensor(y)
    model.train()
    for step in range(steps):
        rows = order[step * config.batch : (step + 1) * config.batch]
        features = model.tokenize([texts[i] for i in rows.tolist()])
        embedded = F.normalize(model(features)["sentence_embedding"], dim=-1)
        cosines = embedded @ F.normalize(prototypes, dim=-1).T
        margin = config.margin * F.one_hot(targets[rows], len(classes))
        loss = F.cross_entropy(config.scale * (cosines - margin), targets[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 10 == 0:
            progress(f"fine-tuning the encoder: step {step + 1}/{steps}, loss {loss.item():.3f}")
    model.eval()
    return _save(model, out_dir, config)


def _save(model, out_dir: Path, config: FinetuneConfig) -> Path:  # type: ignore[no-untyped-def]
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    model.save(str(tmp))
    (tmp / MARKER).write_text(json.dumps(asdict(config)), encoding="utf-8")
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def is_finetuned(path: Path) -> bool:
    return (path / MARKER).is_file()
