"""Property: any mapping given to the config or study-file loaders gives a valid object or a
LiserError, never another exception (issue 14). Keys mix known fields and unknown ones;
values mix wrong types, out-of-range numbers, NaN and inf."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liser.configs import TrainConfig, make_config
from liser.errors import LiserError
from liser.studies.spec import load_study

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from(["mae", "ce", "joint", "two-stage", "augmented", "liser", "nsl", "emodistill", "cnn6", "no-dstl", "all"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
CONFIG_KEYS = st.sampled_from([*TrainConfig.model_fields, "preset", "bogus", "lamda_sd"])
STUDY_KEYS = st.sampled_from(
    ["name", "labeled", "unlabeled", "teachers", "configurations", "folds", "fixed", "grid", "search", "seeds", "subset", "resources", "max_concurrent", "device", "bogus"]
)
STUDY_VALUES = st.one_of(
    VALUES,
    st.fixed_dictionaries({}, optional={"n": VALUES | st.integers(0, 7), "use": VALUES | st.lists(st.integers(-2, 8), max_size=3), "seed": VALUES}),
    st.dictionaries(CONFIG_KEYS, VALUES, max_size=3),
    st.lists(st.sampled_from(["no-dstl", "vid-dstl", "sp-dstl", "nsl", "emodistill", "nope"]), max_size=3),
)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _finite(cfg: TrainConfig) -> bool:
    return all(math.isfinite(v) for v in cfg.model_dump().values() if isinstance(v, float))


@PROPERTY
@given(fields=st.dictionaries(CONFIG_KEYS, VALUES, max_size=5))
def test_config_overrides_give_a_config_or_a_liser_error(fields):
    try:
        cfg = make_config("no-dstl", **fields)
    except LiserError:
        return
    assert isinstance(cfg, TrainConfig) and _finite(cfg)


@PROPERTY
@given(fields=st.dictionaries(CONFIG_KEYS | st.integers(0, 3), VALUES, max_size=5))
def test_config_files_give_a_config_or_a_liser_error(fields, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(fields))
    try:
        cfg = make_config(path)
    except LiserError:
        return
    assert isinstance(cfg, TrainConfig) and _finite(cfg)


@PROPERTY
@given(fields=st.dictionaries(STUDY_KEYS, STUDY_VALUES, max_size=6))
def test_study_files_give_a_study_or_a_liser_error(fields, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "labeled": "ravdess:x", "configurations": ["no-dstl"], **fields}))
    try:
        study = load_study(path)
    except LiserError:
        return
    assert study.points() or study.search is not None


@pytest.mark.parametrize("text", ["lambda_sd: .inf", "lambda_vd: .nan", "epochs: .inf", "lr: -.inf"])
def test_non_finite_values_are_refused_at_load(text, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(text + "\n")
    with pytest.raises(LiserError, match=text.split(":")[0]):
        make_config(path)
