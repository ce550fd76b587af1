"""Skills as paths, coarse to fine ("mmlu/high_school_physics", "coding/python"), with a tagger per level.

A fine skill with three examples cannot be learnt, but its coarse skill usually can: a tagger per
level recognises "this is an open-ended MT-Bench prompt" even where it cannot tell "writing" from
"roleplay". A query's chance of needing a leaf is the chain of per-level chances, each taken among
the siblings under the level above. Flat names are one-level paths and behave as a single tagger.
"""

from __future__ import annotations

import numpy as np

from router.heads import LogisticHead

SEPARATOR = "/"


def prefixes(path: str) -> list[str]:
    parts = path.split(SEPARATOR)
    return [SEPARATOR.join(parts[: i + 1]) for i in range(len(parts))]


def node_at(path: str, level: int) -> str:
    """The path's node at `level` (0 = coarsest); a path shorter than that is its own node there."""
    nodes = prefixes(path)
    return nodes[min(level, len(nodes) - 1)]


def depth(path: str) -> int:
    return len(prefixes(path))


class SkillTagger:
    """One logistic head per level of the skill paths it was fitted on (levels with one node need none)."""

    def __init__(self, vectors: np.ndarray, paths: list[str]) -> None:
        self.leaves = sorted(set(paths))
        self.levels: list[LogisticHead | None] = []
        for level in range(max(depth(p) for p in self.leaves)):
            labels = [node_at(p, level) for p in paths]
            self.levels.append(LogisticHead().fit(vectors, labels) if len(set(labels)) > 1 else None)

    def conditionals(self, queries: np.ndarray) -> list[np.ndarray]:
        """Per level that has a head, [n, leaves]: P(the leaf's node at that level | query, its parent node)."""
        out = []
        for level, head in enumerate(self.levels):
            if head is None:
                continue
            probs = head.predict_proba(np.asarray(queries, dtype=np.float32))
            parents = [node_at(label, level - 1) if level else "" for label in head.labels]
            names = sorted(set(parents))
            membership = np.zeros((len(head.labels), len(names)))
            membership[np.arange(len(parents)), [names.index(p) for p in parents]] = 1.0
            sibling_mass = probs @ membership  # [n, parents]
            column = {label: i for i, label in enumerate(head.labels)}
            cols = np.array([column[node_at(leaf, level)] for leaf in self.leaves])
            parent_cols = membership[cols].argmax(1)
            out.append(probs[:, cols] / np.maximum(sibling_mass[:, parent_cols], 1e-12))
        return out
