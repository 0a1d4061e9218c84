"""Fixtures for study tests: study files over the session's synthetic corpus, and one local Ray."""

from __future__ import annotations

import os

import pytest
import yaml

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module's in-process studies (run_study reuses a running Ray)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield
    ray.shutdown()


def corpus_fields(synth_root, kind: str = "ravdess", method: str = "liser") -> dict:
    """The synthetic corpus and oracle teachers a study of ``method`` on a ``kind`` corpus runs on."""
    if method == "emodistill":  # transcripts that carry emotion
        return {"labeled": f"table:{synth_root / 'transcribed.csv'}", "teachers": str(synth_root / "oracle-teachers-emodistill")}
    if method == "nsl":  # the upstream model embeds another corpus than its source
        return {"labeled": f"cremad:{synth_root / 'cremad'}", "teachers": str(synth_root / "oracle-teachers-nsl")}
    teachers = "oracle-teachers" if kind == "ravdess" else "oracle-teachers-cremad"
    return {"labeled": f"{kind}:{synth_root / kind}", "unlabeled": f"avclips:{synth_root / 'avclips'}", "teachers": str(synth_root / teachers)}


def study_method(study) -> str:
    """The method a study's trials use (a study of several methods counts as its first non-LiSER one)."""
    methods = [study.resolve(p).method for p in study.points()] if study.search is None else [study.resolve({}).method]
    return next((m for m in methods if m != "liser"), "liser")


@pytest.fixture
def write_study(synth_root):
    """``write_study(path, **fields)``: a study file over the synthetic corpus, 2 folds, 1 epoch by default."""

    def write(path, **fields) -> str:
        data = {**corpus_fields(synth_root), "folds": {"n": 5, "use": [0, 1]}, "fixed": {"epochs": 1}, **fields}
        path.write_text(yaml.safe_dump(data))
        return str(path)

    return write
