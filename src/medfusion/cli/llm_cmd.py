"""``medfusion llm`` — check the general model: ``ping`` makes one short call and says how it went."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from medfusion.llm import Completion, GeneralModel
from medfusion.settings import get_settings

app = typer.Typer(help="通用大模型 General model: configuration check.", no_args_is_help=True)
_HINT = {
    "no_model": "未配置通用大模型 no model configured: set MEDFUSION_LLM_BASE_URL and MEDFUSION_LLM_MODEL",
    "unreachable": "无法连接 endpoint unreachable",
    "bad_key": "密钥无效 key rejected",
    "timeout": "超时 timed out",
}


@app.command("ping")
def ping(
    model: Annotated[str, typer.Option(help="configured model name: default, fast, large …")] = "default",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One short non-streaming call: exit 0 with the model's name and latency, else a one-line reason."""
    general = GeneralModel.from_settings(get_settings())
    reply = general.ping(model)
    general.close()
    if isinstance(reply, Completion):
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "ok": True,
                        "alias": reply.alias,
                        "model": reply.model,
                        "latency_ms": reply.latency_ms,
                        "attempts": reply.attempts,
                    }
                )
            )
        else:
            typer.echo(f"ok {reply.alias}: {reply.model} answered in {reply.latency_ms:.0f} ms")
        return
    reason = _HINT.get(reply.reason.value, reply.reason.value)
    if as_json:
        typer.echo(
            json.dumps(
                {"ok": False, "alias": reply.alias, "reason": reply.reason.value, "detail": reply.detail}
            )
        )
    else:
        typer.echo(
            f"错误 error [{reply.reason.value}]: {reason}{' — ' + reply.detail if reply.detail else ''}",
            err=True,
        )
    sys.exit(3)


@app.command("models")
def models() -> None:
    """The configured model names (no URLs or keys)."""
    general = GeneralModel.from_settings(get_settings())
    described = general.describe()
    if not described:
        typer.echo(_HINT["no_model"])
        return
    for alias, name in described.items():
        external = " (external: de-identified)" if general.endpoints[alias].external else ""
        typer.echo(f"{alias}: {name}{external}")
