"""PNG plots for the evaluation commands (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

from router.metrics import confusion


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_png(truth: list[str], predicted: list[str | None], path: Path) -> None:
    plt = _pyplot()
    labels, matrix = confusion(truth, predicted)
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(labels), 1 + 0.5 * len(labels)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("routed to")
    ax.set_ylabel("true label")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def curve_png(points: list[tuple[float, float]], strong: float, weak: float, path: Path) -> None:
    plt = _pyplot()
    order = sorted(points)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([p for p, _ in order], [q for _, q in order], marker=".", label="router")
    ax.axhline(strong, color="red", linestyle="--", label="strong")
    ax.axhline(weak, color="grey", linestyle="--", label="weak")
    ax.set_xlabel("strong model calls (%)")
    ax.set_ylabel("quality")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
