"""Bad input through the real `liser` command: one line that names the offending thing, the
error kind's exit code, never a traceback (issue 14's table, and the cases that already passed).

Exit codes (``liser.errors``): 1 other user errors, 2 configs and study files (and click's
usage errors), 3 data and paths, 4 teachers, 5 tracking, 6 Ray clusters.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from click.testing import CliRunner

from liser.cli import main
from liser.errors import ConfigError, DataError, LiserError, StudyError, TrackingError


def invoke(*args, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True, env=env)
    return result


def assert_one_line_error(result, code: int, *names: str) -> None:
    """Exit code ``code``, no traceback, and one ``Error:`` line naming every one of ``names``."""
    assert result.exception is None or isinstance(result.exception, SystemExit), f"raised {result.exception!r}"
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for name in names:
        assert name in errors[0], (name, errors[0])


@pytest.fixture(scope="module")
def bad(synth_root, tmp_path_factory):
    """A folder of broken inputs built from the small synthetic corpus."""
    d = tmp_path_factory.mktemp("bad")
    (d / "bad.yaml").write_text("lambda_sd: [1\n")
    (d / "list.yaml").write_text("- lambda_sd\n- 1\n")
    (d / "empty.yaml").write_text("")
    (d / "numbers.yaml").write_text("1: 2\n")
    (d / "inf.yaml").write_text("lambda_vd: .inf\n")
    (d / "text.npz").write_text("not an npz\n")
    (d / "afile").write_text("a file, not a folder\n")
    (d / "not-a-db.db").write_text("plain text\n")
    (d / "folds.json").write_text('{"folds": 3')
    (d / "empty-dir").mkdir()
    (d / "notes-only").mkdir()
    (d / "notes-only" / "README.txt").write_text("no audio here\n")
    lab = f"ravdess:{synth_root / 'ravdess'}"
    study = "name: s\nlabeled: " + lab + "\nconfigurations: [no-dstl]\n"
    (d / "study-fold7.yaml").write_text(study + "folds: {n: 5, use: [0, 7]}\n")
    (d / "study-extra.yaml").write_text(study + "bogus: 1\n")
    (d / "study-yaml.yaml").write_text("name: [s\n")
    (d / "study-list.yaml").write_text("- name\n")
    (d / "study-lambda.yaml").write_text(study + "fixed: {lambda_sd: .inf}\n")
    (d / "study-nsl.yaml").write_text(study + "fixed: {nsl_alpha: 0.1}\n")
    (d / "study-ok.yaml").write_text(study + "folds: {n: 5, use: [0]}\n")
    # two speakers: too few for speaker-independent folds
    two = d / "two-speakers"
    for actor in ("Actor_01", "Actor_02"):
        shutil.copytree(synth_root / "ravdess" / actor, two / actor)
    return d


def _cases():
    lab = lambda s, d: f"ravdess:{s / 'ravdess'}"  # noqa: E731
    unl = lambda s, d: f"avclips:{s / 'avclips'}"  # noqa: E731
    c = [
        # corpora
        ("corpus folder missing", lambda s, d: ["data", "check", "ravdess:/no/such/folder"], 3, ["/no/such/folder"]),
        ("unknown corpus", lambda s, d: ["data", "check", "ravdes:/x"], 3, ["ravdes"]),
        ("spec without a path", lambda s, d: ["data", "check", "ravdess"], 3, ["'ravdess'", "name:path"]),
        ("table csv missing", lambda s, d: ["data", "check", f"table:{d / 'missing.csv'}"], 3, ["missing.csv"]),
        ("no clips in a folder (point 10)", lambda s, d: ["data", "check", f"ravdess:{d / 'empty-dir'}"], 3, ["no usable clips"]),
        ("only notes in a folder (point 10)", lambda s, d: ["data", "check", f"ravdess:{d / 'notes-only'}"], 3, ["no usable clips", "1 other files"]),
        ("two speakers (point 13)", lambda s, d: ["data", "folds", f"ravdess:{d / 'two-speakers'}", "--out", d / "f.json", "--n-folds", 3], 3, ["2 speakers", "at least 3 speakers"]),
        ("two folds", lambda s, d: ["data", "folds", lab(s, d), "--out", d / "f2.json", "--n-folds", 2], 3, ["at least 3"]),
        ("fold file output under a file", lambda s, d: ["data", "folds", lab(s, d), "--out", d / "afile" / "x.json"], 3, ["afile"]),
        ("broken fold file", lambda s, d: ["train", "--labeled", lab(s, d), "--fold-file", d / "folds.json"], 3, ["folds.json"]),
        # configs
        ("invalid YAML config (point 2)", lambda s, d: ["train", "--labeled", lab(s, d), "--config", d / "bad.yaml"], 2, ["bad.yaml", "YAML"]),
        ("YAML list config (point 2)", lambda s, d: ["train", "--labeled", lab(s, d), "--config", d / "list.yaml"], 2, ["list.yaml", "mapping"]),
        ("empty config (point 11)", lambda s, d: ["train", "--labeled", lab(s, d), "--config", d / "empty.yaml"], 2, ["empty.yaml", "empty"]),
        ("numeric field names", lambda s, d: ["train", "--labeled", lab(s, d), "--config", d / "numbers.yaml"], 2, ["numbers.yaml", "field names"]),
        ("infinite lambda in a file", lambda s, d: ["train", "--labeled", lab(s, d), "--config", d / "inf.yaml"], 2, ["lambda_vd", "finite"]),
        ("config file missing", lambda s, d: ["train", "--labeled", lab(s, d), "--config", d / "nope.yaml"], 2, ["nope.yaml"]),
        ("unknown preset", lambda s, d: ["train", "--labeled", lab(s, d), "--config", "nope"], 2, ["'nope'"]),
        ("misspelt field", lambda s, d: ["train", "--labeled", lab(s, d), "--set", "lamda_sd=1"], 2, ["lamda_sd", "unknown field"]),
        ("another method's field at its default (point 12)", lambda s, d: ["train", "--labeled", lab(s, d), "--set", "nsl_alpha=0.1"], 2, ["nsl_alpha", "liser"]),
        ("another method's field (point 12)", lambda s, d: ["train", "--labeled", lab(s, d), "--set", "nsl_alpha=0.5"], 2, ["nsl_alpha"]),
        ("lambda inf", lambda s, d: ["train", "--labeled", lab(s, d), "--set", "lambda_sd=inf"], 2, ["lambda_sd"]),
        ("lambda nan", lambda s, d: ["train", "--labeled", lab(s, d), "--set", "lambda_sd=.nan"], 2, ["lambda_sd"]),
        ("negative lambda", lambda s, d: ["train", "--labeled", lab(s, d), "--set", "lambda_sd=-1"], 2, ["lambda_sd"]),
        ("text epochs", lambda s, d: ["train", "--labeled", lab(s, d), "--set", "epochs=abc"], 2, ["epochs"]),
        ("zero batch", lambda s, d: ["train", "--labeled", lab(s, d), "--set", "batch_size=0"], 2, ["batch_size"]),
        ("fraction above 1", lambda s, d: ["train", "--labeled", lab(s, d), "--set", "labeled_fraction=1.5"], 2, ["labeled_fraction"]),
        ("override without =", lambda s, d: ["train", "--labeled", lab(s, d), "--set", "lambda_sd"], 2, ["KEY=VALUE"]),
        ("fold that does not exist", lambda s, d: ["train", "--labeled", lab(s, d), "--folds", "7", "--out", d / "r7"], 1, ["do not exist"]),
        # teacher files
        ("distillation without teachers", lambda s, d: ["train", "--labeled", lab(s, d), "--config", "vid-dstl", "--out", d / "rv"], 1, ["--unlabeled"]),
        ("teacher folder missing", lambda s, d: ["train", "--labeled", lab(s, d), "--unlabeled", unl(s, d), "--config", "vid-dstl", "--teachers", d / "nope"], 4, ["nope"]),
        ("teacher folder empty", lambda s, d: ["train", "--labeled", lab(s, d), "--unlabeled", unl(s, d), "--config", "vid-dstl", "--teachers", d / "empty-dir"], 4, ["empty-dir"]),
        ("teacher file not an npz", lambda s, d: ["train", "--labeled", lab(s, d), "--unlabeled", unl(s, d), "--config", "vid-dstl", "--video-teacher", d / "text.npz"], 4, ["text.npz"]),
        ("teacher report of a missing folder", lambda s, d: ["teacher", "report", d / "nope"], 3, ["nope"]),
        ("teacher report of an empty folder", lambda s, d: ["teacher", "report", d / "empty-dir"], 4, ["empty-dir"]),
        # study files
        ("smoke checks folds.use (point 6)", lambda s, d: ["study", "run", d / "study-fold7.yaml", "--smoke"], 2, ["study-fold7.yaml", "[7]"]),
        ("study unknown field", lambda s, d: ["study", "run", d / "study-extra.yaml", "--smoke"], 2, ["bogus"]),
        ("study invalid YAML", lambda s, d: ["study", "run", d / "study-yaml.yaml"], 2, ["study-yaml.yaml"]),
        ("study file a list", lambda s, d: ["study", "run", d / "study-list.yaml"], 2, ["study-list.yaml"]),
        ("study infinite lambda", lambda s, d: ["study", "run", d / "study-lambda.yaml", "--smoke"], 2, ["lambda_sd"]),
        ("study foreign field", lambda s, d: ["study", "run", d / "study-nsl.yaml", "--smoke"], 2, ["nsl_alpha"]),
        ("study file missing", lambda s, d: ["study", "run", d / "nope.yaml"], 2, ["nope.yaml"]),
        ("unknown study", lambda s, d: ["study", "status", "nope", "--tracking-uri", d / "store"], 3, ["'nope'"]),
        # tracking URIs and clusters
        ("unreachable server, report (point 1)", lambda s, d: ["report", "--study", "demo", "--tracking-uri", "http://127.0.0.1:9"], 5, ["http://127.0.0.1:9"]),
        ("unreachable server, status (point 1)", lambda s, d: ["study", "status", "demo", "--tracking-uri", "http://127.0.0.1:9"], 5, ["http://127.0.0.1:9"]),
        ("unreachable server, study run", lambda s, d: ["study", "run", d / "study-ok.yaml", "--smoke", "--tracking-uri", "http://127.0.0.1:9"], 5, ["http://127.0.0.1:9"]),
        ("sqlite on a text file (point 3)", lambda s, d: ["report", "--study", "demo", "--tracking-uri", f"sqlite:///{d / 'not-a-db.db'}"], 5, ["not-a-db.db", "SQLite"]),
        ("sqlite on a folder", lambda s, d: ["report", "--study", "demo", "--tracking-uri", f"sqlite:///{d / 'empty-dir'}"], 5, ["empty-dir"]),
        ("unknown scheme (point 3)", lambda s, d: ["report", "--study", "demo", "--tracking-uri", "bogus://x"], 5, ["bogus://"]),
        ("store path is a file", lambda s, d: ["study", "status", "demo", "--tracking-uri", d / "afile"], 5, ["afile"]),
        ("ui on an unknown scheme", lambda s, d: ["ui", "--tracking-uri", "bogus://x"], 5, ["bogus://"]),
        ("export of an unknown run", lambda s, d: ["export", "abc", "--onnx", "--tracking-uri", f"sqlite:///{d / 'export.db'}"], 5, ["'abc'"]),
        ("Ray address with nothing there", lambda s, d: ["study", "run", d / "study-ok.yaml", "--smoke", "--address", "127.0.0.1:9", "--tracking-uri", f"sqlite:///{d / 'ray.db'}"], 6, ["127.0.0.1:9"]),
        ("Ray address not host:port", lambda s, d: ["study", "run", d / "study-ok.yaml", "--smoke", "--address", "nonsense", "--tracking-uri", f"sqlite:///{d / 'ray.db'}"], 6, ["nonsense"]),
        # paths
        ("cache dir is a file (point 4)", lambda s, d: ["train", "--labeled", lab(s, d), "--cache-dir", d / "afile"], 2, ["afile"]),
        ("output folder is a file", lambda s, d: ["train", "--labeled", lab(s, d), "--out", d / "afile"], 2, ["afile"]),
        ("unknown demo method", lambda s, d: ["demo", "--methods", "bogus"], 1, ["bogus"]),
        ("demo with no epochs", lambda s, d: ["demo", "--epochs", "0"], 2, ["--epochs"]),
    ]
    return c


CASES = _cases()


@pytest.mark.parametrize("what,args,code,names", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(what, args, code, names, synth_root, bad):
    result = invoke(*args(synth_root, bad))
    assert_one_line_error(result, code, *names)


def test_the_table_covers_the_issue():
    assert len(CASES) >= 43
    for point in (1, 2, 3, 4, 6, 10, 11, 12, 13):
        assert any(f"point {point})" in c[0] for c in CASES), point


def test_unreachable_server_fails_fast(tmp_path):
    started = time.time()
    result = invoke("report", "--study", "demo", "--tracking-uri", "http://127.0.0.1:9", "--out", tmp_path)
    assert_one_line_error(result, 5, "127.0.0.1:9", "LISER_TRACKING_TIMEOUT")
    assert time.time() - started < 15  # MLflow's own retries took about 250 s


def test_cache_env_on_a_file(synth_root, bad):
    result = invoke("train", "--labeled", f"ravdess:{synth_root / 'ravdess'}", env={"LISER_CACHE": str(bad / "afile" / "cache")})
    assert_one_line_error(result, 3, "LISER_CACHE", "afile")


def test_debug_shows_the_traceback(synth_root):
    result = invoke("--debug", "train", "--labeled", f"ravdess:{synth_root / 'ravdess'}", "--config", "nope")
    assert isinstance(result.exception, ConfigError)


def test_every_file_is_read_skipped_or_ignored(synth_root, tmp_path):
    """Point 5: upper-case extensions are read; a bad name is a counted skip; a note is reported as ignored."""
    src = sorted((synth_root / "ravdess" / "Actor_01").glob("*.wav"))
    actor = tmp_path / "ravdess" / "Actor_01"
    actor.mkdir(parents=True)
    shutil.copy(src[0], actor / src[0].name)
    shutil.copy(src[1], actor / (src[1].stem + ".WAV"))
    shutil.copy(src[2], actor / "not-a-ravdess-name.wav")
    (actor / "notes.txt").write_text("session notes")
    result = invoke("data", "check", f"ravdess:{tmp_path / 'ravdess'}")
    assert result.exit_code == 0, result.output
    assert "usable clips   2" in result.output and "skipped        1" in result.output
    assert "ignored        1 files" in result.output and "notes.txt" in result.output
    cremad = tmp_path / "cremad" / "AudioWAV"
    cremad.mkdir(parents=True)
    for i, wav in enumerate(sorted((synth_root / "cremad" / "AudioWAV").glob("*.wav"))[:3]):
        shutil.copy(wav, cremad / (wav.stem + (".WAV" if i == 0 else ".wav")))
    result = invoke("data", "check", f"cremad:{tmp_path / 'cremad'}")
    assert result.exit_code == 0, result.output
    assert "usable clips   3" in result.output


def test_dropped_unlabeled_clips_are_on_the_console(synth_root, tmp_path):
    """Point 9: clips a teacher does not cover are counted on the console, not only in results.json."""
    from liser.targets import TeacherOutputs

    full = TeacherOutputs.load(synth_root / "oracle-teachers" / "video.npz")
    keep = full.clip_ids[:6]
    segments = {c: full.probs[full.offsets[i]:full.offsets[i + 1]] for i, c in enumerate(full.clip_ids) if c in keep}
    part = TeacherOutputs.from_segments("video", full.classes, segments, segment_seconds=full.segment_seconds, meta=full.meta)
    part.save(tmp_path / "video.npz")
    result = invoke(
        "train", "--labeled", f"ravdess:{synth_root / 'ravdess'}", "--unlabeled", f"avclips:{synth_root / 'avclips'}",
        "--video-teacher", tmp_path / "video.npz", "--config", "vid-dstl", "--fold", 0, "--epochs", 1, "--out", tmp_path / "run", "-q",
    )
    assert result.exit_code == 0, result.output
    n_dropped = len(full.clip_ids) - len(keep)
    assert f"unlabeled_dropped_no_teacher {n_dropped}" in result.output


def test_error_kinds_keep_their_builtin_bases():
    """Callers that caught ValueError or LookupError before the hierarchy still catch these."""
    from liser.errors import StudyNotFound, TeacherFileError

    assert issubclass(StudyError, ConfigError) and issubclass(ConfigError, ValueError)
    assert issubclass(TeacherFileError, ValueError) and issubclass(StudyNotFound, LookupError)
    assert issubclass(TrackingError, LiserError) and issubclass(DataError, LiserError)
    assert np.all([issubclass(e, LiserError) for e in (StudyError, TeacherFileError, StudyNotFound)])
