"""`liser report fraction-curve` through the real CLI: a clear error for a study without
fractions (issue 14, point 7), and its options accepted after the subcommand too (point 8)."""

from click.testing import CliRunner

from liser.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def test_fraction_curve_of_a_study_without_fractions(fake_store, tmp_path):
    result = invoke("report", "fraction-curve", "--study", "table2-ravdess", "--tracking-uri", fake_store.uri, "--out", tmp_path)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 5 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "table2-ravdess" in errors[0] and "labeled_fraction" in errors[0]
    assert "Length of new names" not in result.output
    assert not list(tmp_path.iterdir())


def test_fraction_curve_options_before_and_after(fake_store, tmp_path):
    after = invoke("report", "fraction-curve", "--study", "fraction-cremad", "--tracking-uri", fake_store.uri, "--out", tmp_path / "a")
    before = invoke("report", "--tracking-uri", fake_store.uri, "--out", tmp_path / "b", "fraction-curve", "--study", "fraction-cremad")
    assert after.exit_code == 0 and before.exit_code == 0, after.output + before.output
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert "fraction-cremad-fraction-curve.html" in names
