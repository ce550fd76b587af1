"""Skills as paths, coarse to fine ("mmlu/high_school_physics", "coding/python"), with a tagger per level.

A fine skill with three examples cannot be learnt, but its coarse skill can once it has enough: on
RouteLLM's outcomes the top level gives held-out GSM8K problems P(gsm8k) 0.96 on average. MT-Bench's
24 prompts among 6,000 others are too few: P(mt_bench) 0.04-0.21. A query's chance of needing a leaf
is the chain of per-level chances, each taken among the siblings under the level above. Flat names are
one-level paths and behave as a single tagger.
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
    """One logistic head per level of the skill paths it was fitted on (levels with one node need none);
    all that depends only on the paths is worked out once, at the fit."""

    def __init__(self, vectors: np.ndarray, paths: list[str]) -> None:
        self.leaves = sorted(set(paths))
        self.leaf_index = {leaf: i for i, leaf in enumerate(self.leaves)}
        # Per level with a head: (head, each leaf's column at that level, the siblings matrix [labels, parents]).
        self._levels: list[tuple[LogisticHead, np.ndarray, np.ndarray]] = []
        for level in range(max(depth(p) for p in self.leaves)):
            labels = [node_at(p, level) for p in paths]
            if len(set(labels)) < 2:
                continue  # one node at this level: its chance is 1
            head = LogisticHead().fit(vectors, labels)
            parents = [node_at(label, level - 1) if level else "" for label in head.labels]
            names = sorted(set(parents))
            siblings = np.zeros((len(head.labels), len(names)))
            siblings[np.arange(len(parents)), [names.index(p) for p in parents]] = 1.0
            column = {label: i for i, label in enumerate(head.labels)}
            cols = np.array([column[node_at(leaf, level)] for leaf in self.leaves])
            self._levels.append((head, cols, siblings))

    def conditionals(self, queries: np.ndarray) -> list[np.ndarray]:
        """Per level that has a head, [n, leaves]: P(the leaf's node at that level | query, its parent node)."""
        out = []
        for head, cols, siblings in self._levels:
            probs = head.predict_proba(np.asarray(queries, dtype=np.float32))
            sibling_mass = probs @ siblings  # [n, parents]
            parent_cols = siblings[cols].argmax(1)
            out.append(probs[:, cols] / np.maximum(sibling_mass[:, parent_cols], 1e-12))
        return out
