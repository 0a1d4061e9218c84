"""`liser report`: the paper's tables and the labeled-fraction curve, from what MLflow holds."""

from __future__ import annotations

from pathlib import Path

import click

from liser.cli.options import fail, tracking_uri_option


@click.group("report", invoke_without_command=True)
@click.option("--study", "studies", multiple=True, help="a study (MLflow experiment) name; repeat to combine, e.g. table2-ravdess and table2-cremad")
@tracking_uri_option()
@click.option("--out", "out_dir", default="dashboards", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="file name stem (default: the study names joined with +)")
@click.option("--ui-url", help="MLflow UI address for run links (default: the tracking URI if http, else http://127.0.0.1:5000)")
@click.pass_context
def report(ctx, studies, tracking_uri, out_dir, name, ui_url) -> None:
    """Dashboards from what MLflow holds: tables (HTML, CSV, Markdown, LaTeX) and plots.

    \b
    liser report --study table2-ravdess --study table2-cremad     # Table 2 over both data sets
    liser report fraction-curve --study labeled-fraction           # Figure 2
    """
    ctx.obj = {"tracking_uri": tracking_uri, "out_dir": out_dir, "ui_url": ui_url}
    if ctx.invoked_subcommand:
        return
    if not studies:
        fail("give --study NAME (`liser study status` lists them)")
    from liser.reports import build_report

    _write_report(build_report, studies, tracking_uri, out_dir, name, ui_url)


@report.command("fraction-curve")
@click.option("--study", "studies", multiple=True, required=True, help="studies whose trials vary labeled_fraction (repeat to add e.g. the full-data study)")
@click.option("--name", help="file name stem (default: the first study)")
@click.option("--tracking-uri", help="MLflow tracking URI (also accepted before fraction-curve)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="output folder (also accepted before fraction-curve; default dashboards)")
@click.option("--ui-url", help="MLflow UI address for run links (also accepted before fraction-curve)")
@click.pass_obj
def report_fraction(obj, studies, name, tracking_uri, out_dir, ui_url) -> None:
    """The labeled-data-fraction curve (paper Figure 2), from logged runs."""
    from liser.reports import build_fraction_curve

    _write_report(
        build_fraction_curve, studies, tracking_uri or obj["tracking_uri"], out_dir or obj["out_dir"], name or studies[0], ui_url or obj["ui_url"]
    )


def _write_report(build, studies, tracking_uri, out_dir, name, ui_url) -> None:
    from liser.tracking import resolve_tracking_uri

    uri, _ = resolve_tracking_uri(tracking_uri)
    try:
        written = build(uri, list(studies), out_dir, name=name, ui_url=ui_url)
    except (ValueError, LookupError, FileNotFoundError) as exc:
        fail(exc)
    for path in written:
        click.echo(f"wrote {path}")
    pages = [p for p in written if p.suffix == ".html"]
    if pages:
        click.echo(f"open {pages[0]} in a browser (it works offline)")
