"""The one rest-face `Reference` and the model's reference policy (issue 26's groundwork).

Training's per-person means, a served session's running sum and the exported graph's torch
mean are held to one another; a `data.baseline=session` model is served against the faces of
its session, as `emotion-predict --baseline session` reads them, never against an enrolled
rest face; and whether a model saw only synthetic faces is read once, when it is loaded.
"""

from __future__ import annotations

import numpy as np
import torch

from emotion.features.baseline import session_references
from emotion.features.preprocessing import Preprocessing
from emotion.features.reference import Reference, torch_mean


def faces(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, 478, 3)).astype(np.float32)


def test_training_session_means_equal_a_reference_built_face_by_face() -> None:
    """Training's whole-stage path and a served session's running sum agree on the same rows."""
    points = faces(9)
    subject = np.array(list("AAAABBBBC"))
    found = session_references(points, subject, np.arange(9))
    assert found.unscored == ["C"]  # one face is no session
    for person in ("A", "B"):
        online = Reference(how="session")
        for face in points[subject == person]:
            online.add(face)  # one at a time, as a session sees them
        assert online.count == 4
        np.testing.assert_allclose(online.mean(), found.faces[person], atol=1e-6)
        np.testing.assert_allclose(
            online.mean(), points[subject == person].astype(np.float64).mean(0), atol=1e-6
        )


def test_merging_adds_or_replaces_and_an_empty_reference_changes_nothing() -> None:
    points = faces(5, seed=1)
    kept = Reference.of(points[:2], how="enrolled")
    kept.merge(Reference.of(points[2:]))
    np.testing.assert_allclose(kept.mean(), Reference.of(points).mean(), atol=1e-6)
    kept.merge(Reference())
    assert kept.count == 5
    kept.merge(Reference.of(points[4:]), replace=True)
    assert kept.count == 1 and np.array_equal(kept.mean(), points[4])
    assert Reference().mean() is None


def test_the_graphs_torch_mean_is_the_references_and_nan_without_faces() -> None:
    points = faces(3, seed=2)
    mean, count = torch_mean(torch.from_numpy(points)[None])
    assert count.tolist() == [[3.0]]
    np.testing.assert_allclose(mean[0].numpy(), Reference.of(points).mean(), atol=1e-6)
    empty, _ = torch_mean(torch.zeros(1, 0, 478, 3))
    assert torch.isnan(empty).all()


def test_the_baseline_mode_is_a_policy_of_the_model() -> None:
    session = Preprocessing(baseline="session").reference_policy
    enrolled = Preprocessing(baseline="enrolled").reference_policy
    plain = Preprocessing().reference_policy
    assert (session.counts_scored_faces, session.min_faces, session.default_how) == (
        True,
        2,
        "session",
    )
    assert (enrolled.counts_scored_faces, enrolled.min_faces, enrolled.default_how) == (
        False,
        1,
        "none",
    )
    assert enrolled.needs_reference and not plain.needs_reference
