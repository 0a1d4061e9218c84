"""The ``liser`` group: one line per user error (its exit code from :mod:`liser.errors`), ``--debug`` for the traceback."""

from __future__ import annotations

import os

import click

from liser import __version__
from liser.errors import LiserError


class LiserGroup(click.Group):
    """Turns every :class:`LiserError` into one line and its exit code; ``--debug`` keeps the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LiserError as exc:
            if debugging(ctx):
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            click.echo(f"Error: {message}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:  # a path the user gave that cannot be read or written: theirs to fix, not a bug
            if exc.filename is None or debugging(ctx):
                raise
            click.echo(f"Error: {exc.filename}: {exc.strerror or exc}; choose another path or fix its permissions", err=True)
            ctx.exit(3)


def _debug(ctx: click.Context, _param, value: bool) -> None:
    ctx.meta["liser.debug"] = value


def debugging(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("liser.debug") or os.environ.get("LISER_DEBUG"))


@click.group(cls=LiserGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="liser")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_debug, help="show the traceback of a user error too (or set LISER_DEBUG=1)")
def main() -> None:
    """liser: knowledge-distillation studies for speech emotion recognition.

    \b
    Start here:
      liser data synth data/synth
      liser train --labeled ravdess:data/synth/ravdess --config no-dstl --folds all
      liser demo                       # the whole chain, studies and dashboards (--methods all: + EmoDistill, NSL)
    Other methods on the synthetic corpus (oracle teachers written by `data synth`):
      liser train --labeled table:data/synth/transcribed.csv --teachers data/synth/oracle-teachers-emodistill --config emodistill
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
