"""``medfusion`` — one Typer app. Every failure is a one-line reason and a non-zero exit, no traceback."""

from __future__ import annotations

import sys

import typer

from medfusion.apps.consult import cli as consult_cli
from medfusion.apps.mdt import cli as mdt_cli
from medfusion.cli import (
    ask_cmd,
    audit_cmd,
    db_cmd,
    demo_cmd,
    feedback_cmd,
    fhir_cmd,
    graph_cmd,
    kb_cmd,
    llm_cmd,
    privacy_cmd,
    serve_cmd,
    synth_cmd,
    user_cmd,
)
from medfusion.errors import MedFusionError
from medfusion.evaluation import cli as eval_cli

app = typer.Typer(
    name="medfusion",
    help="MedFusion 通专融合医疗AI平台 — command line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve_cmd.serve)
app.command("ask")(ask_cmd.ask)
app.command("consult")(consult_cli.consult)
app.add_typer(db_cmd.app, name="db")
app.add_typer(synth_cmd.app, name="synth")
app.add_typer(user_cmd.app, name="user")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(fhir_cmd.app, name="fhir")
app.add_typer(demo_cmd.app, name="demo")
app.add_typer(privacy_cmd.app, name="privacy")
app.add_typer(kb_cmd.app, name="kb")
app.add_typer(graph_cmd.app, name="graph")
app.add_typer(llm_cmd.app, name="llm")
app.add_typer(feedback_cmd.app, name="feedback")
app.add_typer(mdt_cli.app, name="mdt")
app.add_typer(eval_cli.app, name="eval")

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1


def main(argv: list[str] | None = None) -> None:
    try:
        # standalone mode: usage errors print a one-line reason and exit 2 (Typer's own handling)
        app(args=argv, prog_name="medfusion")
    except MedFusionError as error:
        typer.echo(f"错误 error [{error.code}]: {error.message}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        typer.echo("已中止 aborted", err=True)
        sys.exit(130)
    except OSError as error:
        typer.echo(
            f"错误 error [os_error]: {error.strerror or error}: {getattr(error, 'filename', '') or ''}",
            err=True,
        )
        sys.exit(EXIT_USER_ERROR)
    except Exception as error:
        typer.echo(f"内部错误 internal error: {type(error).__name__}", err=True)
        sys.exit(EXIT_INTERNAL)
