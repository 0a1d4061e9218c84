"""`liser demo` (the whole chain on the synthetic corpus), `liser ui` (the MLflow UI) and `liser export` (ONNX)."""

from __future__ import annotations

from pathlib import Path

import click

from liser.cli.options import fail, quiet_option, tracking_uri_option


@click.command("demo")
@click.option("--root", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path), help="where data/synth, mlflow/ and dashboards/ go")
@click.option("--quick", is_flag=True, help="a reduced run (5 actors, 1 epoch, 2 folds) that checks the whole chain in a few minutes")
@click.option("--full", is_flag=True, help="also Table 3's distill-ce and two-stage-train (about 6 more minutes)")
@click.option("--studies", "studies_dir", type=click.Path(file_okay=False, path_type=Path), help="folder with demo.yaml and demo-fraction.yaml (default: the shipped studies/)")
@click.option("--methods", default="liser", show_default=True, metavar="LIST",
              help="methods to demonstrate: liser, emodistill, nsl, comma-separated, or all (each adds its teachers, a study and a dashboard)")
@click.option("--epochs", type=click.IntRange(min=1), help="student epochs of every demo study (default: the study files' 5; "
              "the students' time grows in proportion: 15 triples it, README)")
@quiet_option
def demo_cmd(root, quick, full, studies_dir, methods, epochs, quiet) -> None:
    """The whole mission on the built-in synthetic corpus, on a CPU (~15 min on 2 cores).

    \b
    1. generate the synthetic corpus (data/synth)
    2. fit the teachers (tiny HuBERT + LoRA per fold, a small DFER on synthetic face videos), cache their outputs
    3. run studies/demo.yaml: Table 2's five configurations (--full: Table 3's too)
    4. run studies/demo-fraction.yaml (a short labeled-fraction sweep), side by side with 3
    5. write dashboards/ from what MLflow holds
    --methods all also fits EmoDistill's teachers and NSL's upstream model and runs
    studies/demo-emodistill.yaml and studies/demo-nsl.yaml (a few more minutes).
    Every step resumes: run it again after a crash or Ctrl-C.
    """
    from dataclasses import replace

    from liser.demo import METHODS, DemoSettings, run_demo
    from liser.studies.spec import StudyError

    named = METHODS if methods.strip() == "all" else tuple(m.strip() for m in methods.split(",") if m.strip())
    unknown = sorted(set(named) - set(METHODS))
    if unknown:
        fail(f"--methods {methods!r}: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)} or all (liser always runs)")
    picked = tuple(m for m in METHODS if m == "liser" or m in named)
    if quick and full:
        fail("--quick and --full: choose one (--quick is the reduced check, --full adds Table 3)")
    settings = replace(DemoSettings.quick() if quick else DemoSettings.full() if full else DemoSettings(), methods=picked)
    if epochs is not None:
        settings = replace(settings, epochs=epochs)
    try:
        result = run_demo(root, settings, studies=studies_dir, progress=not quiet, log=click.echo)
    except (StudyError, ValueError, FileNotFoundError) as exc:
        fail(exc)
    click.echo(f"done in {sum(result.seconds.values()) / 60:.1f} min: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items()))
    for path in result.dashboards:
        if path.suffix == ".html":
            click.echo(f"dashboard: {path}")
    click.echo(f"browse every run: liser ui{'' if Path(root).resolve() == Path.cwd() else ' --tracking-uri ' + result.tracking_uri}   (then http://127.0.0.1:5000)")


@click.command("ui")
@tracking_uri_option("store to browse (default: the project's store in mlflow/)")
@click.option("--port", type=int, default=5000, show_default=True, help="0 picks a free port")
@click.option("--telemetry", is_flag=True, help="let the MLflow UI send usage telemetry (off by default)")
def ui_cmd(tracking_uri, port, telemetry) -> None:
    """Start the MLflow UI on 127.0.0.1 over the project's store and print its URL (Ctrl-C stops it)."""
    import signal

    from liser.ui import start_server, stop_server, study_urls, wait_ready

    try:
        proc, url = start_server(tracking_uri, port=port or None, telemetry=telemetry)
    except ValueError as exc:
        fail(exc)

    def _stop(signum, frame):  # SIGTERM (kill, a supervisor) stops the server too, like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        click.echo(f"starting the MLflow UI on {url} ...")
        wait_ready(url, proc)
        click.echo(f"MLflow UI: {url}   (Ctrl-C to stop)", err=False)
        for name, link in study_urls(tracking_uri, url):
            click.echo(f"  study {name}: {link}")
        proc.wait()
    except (RuntimeError, TimeoutError) as exc:
        fail(f"{exc}; is port {port} in use? try --port 0")
    except KeyboardInterrupt:
        pass
    finally:
        stop_server(proc)


@click.command("export")
@click.argument("run_id")
@click.option("--onnx", "to_onnx", is_flag=True, help="export to ONNX (the only format so far)")
@tracking_uri_option("store holding the run (default: the project's store in mlflow/)")
@click.option("--out", "out_dir", default="runs/export", show_default=True, type=click.Path(file_okay=False, path_type=Path), help="local folder for the .onnx files, one subfolder per run")
def export_cmd(run_id: str, to_onnx: bool, tracking_uri: str | None, out_dir: Path) -> None:
    """Export the student of a fold run (or of every fold of a trial run) to ONNX.

    The file is checked against PyTorch with onnxruntime, then logged back to the run as
    artifact onnx/student.onnx with metrics onnx_max_abs_diff and onnx_size_bytes.
    """
    if not to_onnx:
        fail("choose a format: --onnx")
    from liser.export import export_run
    from liser.tracking import resolve_tracking_uri

    uri, _ = resolve_tracking_uri(tracking_uri)
    try:
        summary = export_run(run_id, uri, out_dir)
    except (LookupError, FileNotFoundError, ValueError) as exc:
        fail(exc)
    for item in summary["exports"]:
        click.echo(f"{item['path']}  {item['size_bytes'] / 1024:.1f} KB  max abs diff {item['max_abs_diff']:.2e}  -> run {item['run_id']} {item['artifact']}")
