"""Shared fixtures: tiny corpora generated on the fly, an isolated feature cache."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """The whole session (module fixtures included) uses its own cache, never the user's ~/.cache/liser."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LISER_CACHE", str(tmp_path_factory.getbasetemp() / "liser-cache"))
        yield


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A tiny built-in synthetic corpus: 5 actors (300 clips), 10 unlabeled mp4 clips, 5 CREMA-D-layout actors."""
    from liser.synth import generate

    root = tmp_path_factory.mktemp("synth")
    generate(root, actors=5, unlabeled_clips=10, seed=0, video_size=64, workers=1, cremad_actors=5, progress=False)
    return root
