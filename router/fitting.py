"""`moe router fit`: a head on labelled exemplars, and the null-expert threshold tuned on validation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.errors import InvalidRequest
from router.data import Example
from router.encoder import CachingEncoder, Encoder, TextEncoder
from router.finetune import FinetuneConfig, finetune_encoder, finetune_key, is_finetuned
from router.fitted import FittedHead, FittedRouter
from router.heads import CosineHead, LogisticHead, MahalanobisHead
from router.metrics import OOS
from router.scope import ScopeScorer

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def fit_head(
    encoder: TextEncoder, exemplars: list[Example], oos_label: str = OOS, kind: str = "logistic", epochs: int = 15
) -> FittedHead:
    in_scope = [e for e in exemplars if e.label != oos_label]
    if len({e.label for e in in_scope}) < 2:
        raise InvalidRequest("the exemplars need at least two labels (besides out-of-scope)", param="exemplars")
    expert_of: dict[str, str] = {}
    for e in in_scope:
        if expert_of.setdefault(e.fine, e.label) != e.label:
            raise InvalidRequest(f"fine label '{e.fine}' appears under two labels", param="exemplars")
    vectors = encoder.encode([e.text for e in in_scope], batch_size=128)
    fine = [e.fine for e in in_scope]
    return FittedHead(_head(kind, epochs).fit(vectors, fine), expert_of)


def _head(kind: str, epochs: int) -> CosineHead | LogisticHead | MahalanobisHead:
    if kind == "cosine":
        return CosineHead(epochs=epochs)
    if kind == "mahalanobis":
        return MahalanobisHead()
    if kind == "logistic":
        return LogisticHead()
    raise InvalidRequest(f"unknown head kind '{kind}' (known: cosine, logistic, mahalanobis)", param="kind")


def tune_null_threshold(
    scores: np.ndarray, correct: np.ndarray, is_oos: np.ndarray, target_oos_recall: float = 0.9
) -> float | None:
    """Highest in-scope accuracy among thresholds that abstain on >= target of the OOS rows.

    A query is out of scope when its in-scope score < threshold. Without OOS rows there is nothing
    to tune on: None (no null expert)."""
    if not is_oos.any():
        return None
    candidates = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, 1001)))
    best: tuple[float, float] | None = None
    for threshold in candidates:
        abstain = scores < threshold
        recall = abstain[is_oos].mean()
        accuracy = (~abstain[~is_oos] & correct[~is_oos]).mean() if (~is_oos).any() else 0.0
        if recall >= target_oos_recall and (best is None or accuracy > best[1]):
            best = (float(threshold), float(accuracy))
    return best[0] if best else float(candidates[-1])


def predict(fitted: FittedRouter, vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
    if fitted.head is None:
        raise InvalidRequest("nothing fitted yet; run `moe router fit` first", param="router")
    experts, probs = fitted.head.expert_proba(vectors)
    return [experts[i] for i in probs.argmax(1)], fitted.in_scope(vectors)


def finetuned_encoder(
    base: Path, exemplars: list[Example], oos_label: str, config: FinetuneConfig, cache: Path, progress: Progress
) -> Encoder:
    """The encoder fine-tuned on the in-scope exemplars' fine labels; trained once per (base, data, config)."""
    rows = [e for e in exemplars if e.label != oos_label]
    texts, fine = [e.text for e in rows], [e.fine for e in rows]
    path = cache / f"encoder-ft-{finetune_key(base, texts, fine, config)}"
    if not is_finetuned(path):
        progress("fine-tuning the encoder (minutes on a CPU)")
        finetune_encoder(base, texts, fine, path, config, progress)
    return Encoder(path)


def encoder_for(fitted: FittedRouter) -> Encoder:
    """The encoder a fitted router expects: its fine-tuned one, else the bundled one."""
    if fitted.encoder_dir is not None:
        if not is_finetuned(Path(fitted.encoder_dir)):
            raise InvalidRequest(f"the fitted router's encoder {fitted.encoder_dir} is missing; refit", param="router")
        return Encoder(Path(fitted.encoder_dir))
    return Encoder()


def fit_router(
    encoder: TextEncoder,
    exemplars: list[Example],
    validation: list[Example] | None = None,
    *,
    oos_label: str = OOS,
    target_oos_recall: float = 0.9,
    kind: str = "logistic",
    finetune: FinetuneConfig | None = None,
    encoder_cache: Path | None = None,
    progress: Progress = _quiet,
) -> FittedRouter:
    """With `finetune`, the encoder is fine-tuned first (into `encoder_cache`) and the rest is fitted in
    its space, with the three-view in-scope ensemble of router.scope."""
    if finetune is None:
        return fit_in_space(encoder, exemplars, validation, oos_label, target_oos_recall, kind, False, progress)
    if encoder_cache is None:
        raise InvalidRequest("fine-tuning needs a folder for the encoder", param="encoder_cache")
    base = Path(getattr(encoder, "path", None) or Encoder().path)
    tuned = finetuned_encoder(base, exemplars, oos_label, finetune, encoder_cache, progress)
    fitted = fit_in_space(tuned, exemplars, validation, oos_label, target_oos_recall, kind, True, progress)
    fitted.encoder_dir = str(tuned.path)
    return fitted


def fit_in_space(
    encoder: TextEncoder,
    exemplars: list[Example],
    validation: list[Example] | None,
    oos_label: str = OOS,
    target_oos_recall: float = 0.9,
    kind: str = "logistic",
    ensemble: bool = False,
    progress: Progress = _quiet,
) -> FittedRouter:
    """The head on the exemplars and, given validation rows, the null threshold (and the scope ensemble)."""
    encoder = CachingEncoder(encoder)  # the head and the scope scorer read the same exemplar vectors
    progress("fitting the head")
    head = fit_head(encoder, exemplars, oos_label, kind)
    fitted = FittedRouter(head=head)
    # Out-of-scope exemplars cannot train a class, but they do teach the null expert its threshold.
    validation = [*(validation or []), *(e for e in exemplars if e.label == oos_label)] if validation else None
    if validation:
        progress("tuning the null-expert threshold")
        vectors = encoder.encode([e.text for e in validation], batch_size=128)
        if ensemble:
            rows = [e for e in exemplars if e.label != oos_label]
            scope = ScopeScorer.from_exemplars(encoder.encode([e.text for e in rows]), [e.fine for e in rows])
            fitted.scope = scope.fit(head.head, vectors)
        predicted, scores = predict(fitted, vectors)
        truth = np.array([e.label for e in validation])
        correct = np.array(predicted) == truth
        is_oos = truth == oos_label
        fitted.null_threshold = tune_null_threshold(scores, correct, is_oos, target_oos_recall)
        fitted.report = {"validation_rows": float(len(validation)), "validation_oos_rows": float(is_oos.sum())}
    return fitted
