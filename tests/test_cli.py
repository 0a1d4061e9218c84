"""The `liser` command: thin over the functions, with errors that name the fix."""

import json

from click.testing import CliRunner

from liser.cli import main


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def test_help_lists_commands():
    code, out = run("--help")
    assert code == 0 and all(c in out for c in ("data", "model", "train"))
    code, out = run("train", "--help")
    assert code == 0 and "--labeled" in out and "--set" in out


def test_model_prints_parameter_count():
    code, out = run("model")
    assert code == 0 and "105,143" in out
    code, out = run("model", "--classes", 6)
    assert code == 0 and "6" in out


def test_data_check_reports_usable_and_skipped(synth_root, tmp_path):
    report = tmp_path / "report.json"
    code, out = run("data", "check", f"ravdess:{synth_root / 'ravdess'}", "--json", report)
    assert code == 0, out
    assert "usable clips   300" in out and "neutral 20" in out
    data = json.loads(report.read_text())
    assert data["clips_usable"] == 300 and data["skipped"] == []


def test_data_folds_writes_a_fold_file(synth_root, tmp_path):
    code, out = run("data", "folds", f"ravdess:{synth_root / 'ravdess'}", "--out", tmp_path / "f.json")
    assert code == 0 and "fold 4" in out
    assert len(json.loads((tmp_path / "f.json").read_text())["folds"]) == 5


def test_train_one_fold_end_to_end(synth_root, tmp_path):
    out_dir = tmp_path / "run"
    code, out = run("train", "--labeled", f"ravdess:{synth_root / 'ravdess'}", "--config", "no-dstl", "--fold", 0, "--epochs", 1, "--out", out_dir, "-q")
    assert code == 0, out
    assert "fold 0: test UAR" in out and "over 1 fold(s)" in out
    results = json.loads((out_dir / "results.json").read_text())
    assert results["config"]["name"] == "no-dstl" and (out_dir / "fold0" / "student.pt").exists()
    assert results["fold_file"] == str(out_dir / "folds.json")


def test_train_distillation_from_teacher_folder(synth_root, tmp_path):
    code, out = run(
        "train", "--labeled", f"ravdess:{synth_root / 'ravdess'}", "--unlabeled", f"avclips:{synth_root / 'avclips'}",
        "--teachers", synth_root / "oracle-teachers", "--config", "vid-sp-dstl", "--fold", 1, "--epochs", 1, "--out", tmp_path / "d", "-q",
    )
    assert code == 0, out
    fold = json.loads((tmp_path / "d" / "results.json").read_text())["folds"][0]
    assert fold["history"][0]["loss_vd"] > 0 and fold["counts"]["unlabeled"] == 10


def test_errors_name_the_problem(synth_root, tmp_path):
    lab = f"ravdess:{synth_root / 'ravdess'}"
    code, out = run("train", "--labeled", lab, "--config", "nope")
    assert code == 2 and "unknown configuration 'nope'" in out  # a config error (liser.errors)
    code, out = run("train", "--labeled", "ravdes:/x")
    assert code == 3 and "unknown corpus" in out  # a data error
    code, out = run("train", "--labeled", lab, "--config", "vid-dstl", "--out", tmp_path / "x")
    assert code == 1 and "needs --unlabeled and video teacher outputs" in out
    code, out = run("train", "--labeled", lab, "--folds", "7", "--out", tmp_path / "y")
    assert code == 1 and "do not exist" in out
    code, out = run("train", "--labeled", lab, "--set", "lamda_sd=1")
    assert code == 2 and "unknown field" in out


def test_report_names_the_missing_study_and_the_known_ones(tmp_path):
    from liser import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.setup_experiment(uri, tmp_path / "artifacts", "table2-ravdess", {})
    code, text = run("report", "--study", "table2-cremad", "--tracking-uri", uri, "--out", tmp_path / "dash")
    assert code != 0 and "table2-cremad" in text and "table2-ravdess" in text
    code, text = run("report", "--out", tmp_path / "dash")
    assert code != 0 and "--study" in text
    assert not (tmp_path / "dash").exists() or not any((tmp_path / "dash").iterdir())


def test_every_command_module_is_small_and_the_package_serves_python_m():
    """The CLI is a package of thin modules, one per command group (issue 15: none over 250 lines)."""
    from pathlib import Path

    import liser.cli

    modules = sorted(Path(liser.cli.__file__).parent.glob("*.py"))
    assert {m.stem for m in modules} >= {"app", "data", "train", "teacher", "study", "report", "apps", "options", "__main__"}
    long = {m.name: n for m in modules if (n := len(m.read_text().splitlines())) > 250}
    assert not long, f"command modules over 250 lines: {long}"
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "liser.cli", "teacher", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "prosodic" in done.stdout and "upstream" in done.stdout


def test_a_teacher_folder_refuses_a_second_split(synth_root, tmp_path):
    """`teacher ... fit` records its split in OUT/folds.json once; another split into the same folder is refused."""
    lab = f"table:{synth_root / 'transcribed.csv'}"
    out = tmp_path / "t"
    code, text = run("teacher", "linguistic", "fit", "--labeled", lab, "--folds", "0", "--epochs", "1", "--out", out, "--seed", "1", "-q")
    assert code == 0, text
    first = json.loads((out / "folds.json").read_text())
    assert (out / "linguistic-fold0.npz").exists()
    code, text = run("teacher", "linguistic", "fit", "--labeled", lab, "--folds", "0", "--epochs", "1", "--out", out, "--seed", "2", "-q")
    assert code == 3 and "records another fold split" in text and "--fold-file" in text, text
    assert json.loads((out / "folds.json").read_text()) == first
