"""QualityModel: the skill-tagged prior (flat names and paths), and leave-one-out scoring that never sees
the left-out outcome."""

from __future__ import annotations

import numpy as np
import pytest

from router.quality import QualityModel
from router.skill_tree import SkillTagger


def _clusters(rng: np.random.Generator, per: int) -> tuple[np.ndarray, list[str]]:
    centres = rng.normal(size=(2, 16))
    vectors = np.vstack([c + 0.3 * rng.normal(size=(per, 16)) for c in centres])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), ["math"] * per + ["cooking"] * per


def _model(vectors: np.ndarray, skills: list[str], strong_wins: list[float]) -> QualityModel:
    model = QualityModel(vectors.shape[1], ["weak", "strong"], neighbours=8, shrink=8.0)
    keys = [f"q{i}" for i in range(len(vectors)) for _ in (0, 1)]
    experts = ["weak", "strong"] * len(vectors)
    scores = [s for win in strong_wins for s in (1.0 - win, win)]
    model.add_many(keys, np.repeat(vectors, 2, axis=0), experts, scores, [s for s in skills for _ in (0, 1)])
    return model


def test_the_skill_prior_follows_each_skills_record() -> None:
    vectors, skills = _clusters(np.random.default_rng(0), 30)
    # The strong expert wins every math question and loses every cooking one.
    model = _model(vectors, skills, [1.0 if s == "math" else 0.0 for s in skills])
    predicted = model.predict(vectors)
    advantage = predicted[:, 1] - predicted[:, 0]
    assert (advantage[:30] > 0.5).all() and (advantage[30:] < -0.5).all()


@pytest.mark.parametrize("prefix", ["", "exam/"])
def test_leave_one_out_does_not_see_the_left_out_outcome(prefix: str) -> None:
    vectors, skills = _clusters(np.random.default_rng(1), 20)
    skills = [prefix + s for s in skills]  # as paths, the own outcome leaves every record above it too
    wins = np.random.default_rng(2).integers(0, 2, size=40).astype(float).tolist()
    flipped = list(wins)
    flipped[3] = 1.0 - flipped[3]
    keys = [f"q{i}" for i in range(40)]
    # Query 3's own outcome flips; its leave-one-out prediction must not move (no kNN or skill-record leak).
    first = _model(vectors, skills, wins).predict(vectors[3:4], exclude=keys[3:4])
    second = _model(vectors, skills, flipped).predict(vectors[3:4], exclude=keys[3:4])
    assert np.allclose(first, second)
    # Scored normally, the same flip does move it: the check above can fail.
    assert not np.allclose(
        _model(vectors, skills, wins).predict(vectors[3:4]), _model(vectors, skills, flipped).predict(vectors[3:4])
    )


def _points(rng: np.random.Generator, centre: np.ndarray, n: int) -> np.ndarray:
    vectors = centre + 0.3 * rng.normal(size=(n, len(centre)))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_a_sparse_fine_skill_borrows_the_record_of_the_skill_above_it() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(2, 16))
    # 60 questions of one well-covered skill the strong expert always loses; 10 fine skills of one
    # question each under "chat", all won by the strong expert.
    vectors = np.vstack([_points(rng, centres[0], 60), _points(rng, centres[1], 10)])
    fine = ["exam/law"] * 60 + [f"chat/topic{i}" for i in range(10)]
    wins = [0.0] * 60 + [1.0] * 10
    query = _points(rng, centres[1], 1)

    def advantage(skills: list[str]) -> float:
        model = _model(vectors, skills, wins)
        model.neighbours, model.shrink = 1, 4.0  # one neighbour: the prior decides
        predicted = model.predict(query)
        return float(predicted[0, 1] - predicted[0, 0])

    flat = advantage([s.replace("/", "-") for s in fine])
    # As paths, each one-question skill is shrunk towards the "chat" record, not the overall one.
    assert advantage(fine) > 0.3 > flat


def test_the_chances_of_the_leaves_are_chained_over_the_levels() -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(3, 16))
    paths = ["a/x", "a/y", "b"]
    vectors = np.vstack([_points(rng, c, 20) for c in centres])
    tagger = SkillTagger(vectors, [p for p in paths for _ in range(20)])
    conditionals = tagger.conditionals(vectors)
    assert len(conditionals) == 2  # a level-0 head (a | b) and a level-1 head (x | y under a)
    chances = np.prod(conditionals, axis=0)
    assert np.allclose(chances.sum(1), 1.0)
    assert tagger.leaves == sorted(paths)
    assert (chances.argmax(1) == np.repeat([tagger.leaves.index(p) for p in paths], 20)).mean() > 0.9
