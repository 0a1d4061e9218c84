"""Study files: every shipped file validates, and bad files fail with the field and the fix."""

from pathlib import Path

import pytest

from liser.constants import LAMBDA_GRID
from liser.studies.spec import StudyError, load_study, smoke, trial_key

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.yaml"))


def test_shipped_studies_exist():
    names = {p.stem for p in STUDIES}
    assert {"table2-ravdess", "table2-cremad", "table3-ablation", "labeled-fraction", "lambda-grid", "demo"} <= names
    assert any(n.startswith("search-") for n in names)


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_study_loads_and_opens_with_its_command(path):
    study = load_study(path)
    assert path.read_text().startswith("#") and f"liser study run studies/{path.name}" in path.read_text().splitlines()[0] + path.read_text().splitlines()[1]
    assert study.name == path.stem
    if study.search is None:
        for params in study.points():  # every trial resolves to a valid configuration
            assert study.resolve(params).epochs >= 1


def test_paper_studies_have_the_paper_trials():
    root = STUDIES[0].parent
    for name in ("table2-ravdess", "table2-cremad"):  # section 3.6: lambda chosen per configuration
        table2 = load_study(root / f"{name}.yaml")
        by_config = {}
        for p in table2.points():
            cfg = table2.resolve(p)
            by_config.setdefault(p["config"], set()).add((cfg.lambda_sd, cfg.lambda_vd))
        assert list(by_config) == ["no-dstl", "vid-dstl", "sp-dstl", "vid-sp-dstl", "conf-vid-sp-dstl"]
        assert by_config["no-dstl"] == {(0.0, 0.0)}
        assert by_config["vid-dstl"] == {(0.0, v) for v in LAMBDA_GRID}
        assert by_config["sp-dstl"] == {(v, 0.0) for v in LAMBDA_GRID}
        assert by_config["vid-sp-dstl"] == by_config["conf-vid-sp-dstl"] == {(a, b) for a in LAMBDA_GRID for b in LAMBDA_GRID}
        assert len(table2.points()) == 61
    table3 = load_study(root / "table3-ablation.yaml")
    kinds = [table3.resolve(p).teacher_kinds for p in table3.points()]
    assert len(kinds) == 30 and kinds.count(("video",)) == kinds.count(("speech",)) == 15
    assert {table3.resolve(p).lambda_vd for p in table3.points() if p["config"] == "vid-distill-ce"} == set(LAMBDA_GRID)
    grid = load_study(root / "lambda-grid.yaml")
    points = grid.points()
    assert len(points) == 25
    assert {(p["lambda_sd"], p["lambda_vd"]) for p in points} == {(a, b) for a in LAMBDA_GRID for b in LAMBDA_GRID}
    cfg = grid.resolve(points[3])
    assert (cfg.lambda_sd, cfg.lambda_vd, cfg.epochs) == (points[3]["lambda_sd"], points[3]["lambda_vd"], 50)
    fraction = load_study(root / "labeled-fraction.yaml")
    assert fraction.labeled.startswith("cremad:") and len(fraction.points()) == 10
    search = load_study(root / "search-ravdess.yaml")
    space = search.search.space
    assert space["lambda_sd"].log and (space["lambda_sd"].low, space["lambda_sd"].high) == (0.1, 10)
    assert set(space) == {"lambda_sd", "lambda_vd", "distill_loss", "confidence", "labeled_fraction"}


def write(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


BASE = "name: s\nlabeled: ravdess:x\n"


@pytest.mark.parametrize(
    "extra, expected",
    [
        ("configurations: [no-such]\n", ["configurations", "no-such", "vid-sp-dstl"]),
        ("colour: red\n", ["colour", "unknown field", "configurations"]),
        ("grid: {lamda_sd: [1]}\n", ["grid", "lamda_sd", "lambda_sd"]),
        ("fixed: {epochs: 0}\n", ["epochs"]),
        ("search: {space: {lambda_sd: {low: 1, high: 0.1}}}\n", ["search.space.lambda_sd", "low < high"]),
        ("search: {space: {lambda_sd: {low: 0.1, high: 1}}, sampler: cmaes}\n", ["search.sampler", "tpe", "cmaes"]),
        ("resources: {gpu: -1}\n", ["resources.gpu"]),
        ("folds: {n: 2}\n", ["folds.n"]),
        ("configurations: [no-dstl]\ngrid: {schedule: [two-stage]}\n", ["two-stage", "lambda_sd"]),
    ],
)
def test_bad_study_names_the_field(tmp_path, extra, expected):
    with pytest.raises(StudyError) as err:
        load_study(write(tmp_path, BASE + extra))
    message = str(err.value)
    assert str(tmp_path / "s.yaml") in message
    for part in expected:
        assert part in message, message


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(StudyError, match="no such study file"):
        load_study(tmp_path / "nope.yaml")
    with pytest.raises(StudyError, match="not valid YAML"):
        load_study(write(tmp_path, "name: [unclosed\n"))


def test_overrides_replace_fields(tmp_path):
    study = load_study(write(tmp_path, BASE), labeled="cremad:/data/CREMA-D", unlabeled=None)
    assert study.labeled == "cremad:/data/CREMA-D" and study.unlabeled is None


def test_a_lambda_grid_never_adds_a_teacher(tmp_path):
    text = BASE + "configurations: [no-dstl, vid-dstl, sp-dstl]\ngrid: {lambda_sd: [0.5, 5.0], lambda_vd: [0.1, 10.0], labeled_fraction: [0.5, 1.0]}\n"
    study = load_study(write(tmp_path, text))
    cfgs = [study.resolve(p) for p in study.points()]
    # no-dstl is crossed with the fraction only; vid-dstl with lambda_vd and the fraction, sp-dstl with lambda_sd
    assert [(c.name, c.lambda_sd, c.lambda_vd, c.labeled_fraction) for c in cfgs] == [
        ("no-dstl", 0.0, 0.0, 0.5), ("no-dstl", 0.0, 0.0, 1.0),
        ("vid-dstl", 0.0, 0.1, 0.5), ("vid-dstl", 0.0, 0.1, 1.0), ("vid-dstl", 0.0, 10.0, 0.5), ("vid-dstl", 0.0, 10.0, 1.0),
        ("sp-dstl", 0.5, 0.0, 0.5), ("sp-dstl", 0.5, 0.0, 1.0), ("sp-dstl", 5.0, 0.0, 0.5), ("sp-dstl", 5.0, 0.0, 1.0),
    ]


def test_smoke_keeps_both_ends_and_one_epoch():
    study = load_study(STUDIES[0].parent / "lambda-grid.yaml")
    small = smoke(study)
    points = small.points()
    assert points == [study.points()[0], study.points()[-1]]
    assert small.name == "lambda-grid-smoke" and small.folds.use == [0] and small.resources.cpu == 1
    assert all(small.resolve(p).epochs == 1 for p in points)
    search = smoke(load_study(STUDIES[0].parent / "search-ravdess.yaml"))
    assert search.search.trials == 2


def test_trial_key_ignores_name_but_not_settings():
    study = load_study(STUDIES[0].parent / "table2-ravdess.yaml")
    a = study.resolve({"config": "vid-dstl"})
    b = study.resolve({"config": "no-dstl", "lambda_vd": 1.0})
    assert a.name != b.name and trial_key(a, [0, 1], [0]) == trial_key(b, [0, 1], [0])
    assert trial_key(a, [0, 1], [0]) != trial_key(a, [0], [0]) != trial_key(a, [0], [1])


def test_method_studies_have_their_papers_trials():
    root = STUDIES[0].parent
    ablation = load_study(root / "emodistill-ablation.yaml")
    assert [ablation.resolve(p).teacher_kinds for p in ablation.points()] == [
        ("prosodic", "linguistic"), ("prosodic", "linguistic"), ("prosodic", "linguistic"), ("linguistic",), ("prosodic",), (),
    ]
    assert [ablation.resolve(p).alpha for p in ablation.points()][:3] == [1.0, 0.0, 1.0]
    nsl = load_study(root / "nsl-grid.yaml")
    points = nsl.points()
    assert points[0] == {"config": "cnn6"}  # the baseline once: the grid's knobs are NSL's
    assert {(p["nsl_neighbors"], p["nsl_alpha"]) for p in points[1:]} == {(n, a) for n in (3, 6, 9) for a in (0.01, 0.1, 1.0)}
    assert all(nsl.resolve(p).student == "cnn6" for p in points) and nsl.resolve(points[-1]).method == "nsl"


def test_grid_and_fixed_knobs_apply_per_method_and_a_knob_no_one_takes_is_refused(tmp_path):
    study = load_study(write(tmp_path, BASE + "configurations: [sp-dstl, nsl-cnn-lstm]\nfixed: {nsl_epsilon: 0.9, epochs: 2}\n"
                                        "grid: {nsl_alpha: [0.1, 1.0], lambda_sd: [0.5]}\n"))
    cfgs = [study.resolve(p) for p in study.points()]
    assert [(c.name, c.lambda_sd, c.nsl_alpha, c.nsl_epsilon) for c in cfgs] == [
        ("sp-dstl", 0.5, 0.1, 0.99), ("nsl-cnn-lstm", 0.0, 0.1, 0.9), ("nsl-cnn-lstm", 0.0, 1.0, 0.9),
    ]
    with pytest.raises(StudyError, match="lambda_vd tunes none of the configurations.*vid-dstl"):
        load_study(write(tmp_path, BASE + "configurations: [no-dstl, sp-dstl]\ngrid: {lambda_vd: [0.5, 5.0]}\n"))
    with pytest.raises(StudyError, match="tau_prosodic applies to none"):
        load_study(write(tmp_path, BASE + "configurations: [no-dstl, nsl]\ngrid: {tau_prosodic: [0.5, 2.0]}\n"))
