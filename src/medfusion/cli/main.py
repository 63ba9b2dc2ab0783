"""``medfusion`` — one Typer app. Every failure is a one-line reason and a non-zero exit, no traceback."""

from __future__ import annotations

import sys

import typer

from medfusion.apps import registry
from medfusion.apps.spec import AppSpec
from medfusion.cli import (
    audit_cmd,
    db_cmd,
    demo_cmd,
    eval_cmd,
    events_cmd,
    feedback_cmd,
    fhir_cmd,
    graph_cmd,
    kb_cmd,
    llm_cmd,
    patient_cmd,
    privacy_cmd,
    serve_cmd,
    synth_cmd,
    user_cmd,
)
from medfusion.errors import MedFusionError


def build() -> typer.Typer:
    """The command line: the platform's commands, then every installed app's command or group (a
    malformed APP stops here, naming the app and the field)."""
    app = typer.Typer(
        name="medfusion",
        help="MedFusion 通专融合医疗AI平台 — command line.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.command("serve")(serve_cmd.serve)
    for name, group in (
        ("db", db_cmd.app),
        ("synth", synth_cmd.app),
        ("user", user_cmd.app),
        ("audit", audit_cmd.app),
        ("events", events_cmd.app),
        ("fhir", fhir_cmd.app),
        ("patient", patient_cmd.app),
        ("demo", demo_cmd.app),
        ("privacy", privacy_cmd.app),
        ("kb", kb_cmd.app),
        ("graph", graph_cmd.app),
        ("llm", llm_cmd.app),
        ("feedback", feedback_cmd.app),
        ("eval", eval_cmd.app),
    ):
        app.add_typer(group, name=name)
    for spec in registry.apps():
        _install(app, spec)
    return app


def _install(app: typer.Typer, spec: AppSpec) -> None:
    if isinstance(spec.cli, typer.Typer):
        app.add_typer(spec.cli, name=spec.cli_name)
    elif spec.cli is not None:
        app.command(spec.cli_name)(spec.cli)


EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1


def main(argv: list[str] | None = None) -> None:
    try:
        # standalone mode: usage errors print a one-line reason and exit 2 (Typer's own handling)
        build()(args=argv, prog_name="medfusion")
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
