from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from medfusion.cli.deid_jobs import DeidCorpus
from medfusion.cli.progress import run_cli_job
from medfusion.errors import InvalidInput
from medfusion.jobs.checkpoint import atomic_write_bytes
from medfusion.jobs.executors import ExecutorName
from medfusion.privacy.corpus import CorpusReport, deid_csv, detect_format
from medfusion.privacy.operators import Mode
from medfusion.privacy.pseudonyms import create_key, load_key
from medfusion.privacy.service import Deidentifier
from medfusion.settings import get_settings

app = typer.Typer(help="去标识化 de-identification", no_args_is_help=True)


def _key_path(key_file: Path | None, mode: Mode) -> Path | None:
    if mode is not Mode.pseudo:
        return key_file
    if key_file is not None:
        load_key(key_file)  # fail early on a bad key
        return key_file
    default = get_settings().resolved_data_dir / "privacy" / "project.key"
    if not default.exists():
        create_key(default)
        typer.echo(
            f"已创建假名化密钥 created a pseudonymisation key at {default} (keep it outside the data)",
            err=True,
        )
    else:
        typer.echo(f"使用密钥 using the pseudonymisation key at {default}", err=True)
    return default


def _emit_report(report: CorpusReport, target: Path | None) -> None:
    text = report.model_dump_json(indent=1)
    if target:
        target.write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text, err=True)


@app.command("deid")
def deid(
    source: Annotated[
        str | None, typer.Argument(help="'-' 从标准输入读取一段文本 read one text from stdin")
    ] = None,
    input_path: Annotated[Path | None, typer.Option("--in", help="JSONL / CSV / TXT 输入")] = None,
    output_path: Annotated[Path | None, typer.Option("--out", help="输出（同格式、同顺序）")] = None,
    field: Annotated[str, typer.Option(help="JSONL/CSV 中要改写的字段")] = "text",
    mode: Annotated[Mode, typer.Option(help="tag | mask | pseudo | generalize")] = Mode.tag,
    key_file: Annotated[Path | None, typer.Option(help="假名化密钥文件 (hex)")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl | csv | txt（默认按扩展名）")] = None,
    report: Annotated[Path | None, typer.Option(help="统计报告写入此文件（默认 stderr）")] = None,
    executor: Annotated[ExecutorName, typer.Option(help="inline | local | ray")] = ExecutorName.local,
    workers: Annotated[int | None, typer.Option(min=1)] = None,
    chunk_kb: Annotated[int, typer.Option(min=4, max=1_048_576, help="每个检查点的输入大小 (KB)")] = 4096,
    quiet: Annotated[bool, typer.Option("--quiet")] = False,
) -> None:
    """去除文本中的身份信息 De-identify text: a corpus file (resumable job) or one text from stdin."""
    key_path = _key_path(key_file, mode)
    if source == "-":
        data = sys.stdin.buffer.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput.for_field("stdin", f"不是 UTF-8 invalid UTF-8 at byte {exc.start}") from None
        result = Deidentifier(mode, load_key(key_path) if key_path else None).text(text.rstrip("\n"))
        typer.echo(result.text)
        typer.echo(json.dumps({"counts": result.counts, "mode": mode.value}, ensure_ascii=False), err=True)
        return
    if source is not None:
        raise InvalidInput.for_field("source", "只接受 '-'（标准输入）；文件请用 --in (use --in for files)")
    if input_path is None or output_path is None:
        raise InvalidInput.for_field("--in/--out", "需要 --in 与 --out (or '-' for stdin)")
    if not input_path.is_file():
        raise InvalidInput.for_field("--in", f"文件不存在 no such file: {input_path}")
    if input_path.stat().st_size == 0:
        raise InvalidInput.for_field("--in", "输入为空 the input file is empty")
    if output_path.resolve() == input_path.resolve():
        raise InvalidInput.for_field("--out", "输出不能覆盖输入 output must differ from input")
    kind = detect_format(input_path, fmt)
    if kind not in ("jsonl", "csv", "txt"):
        raise InvalidInput.for_field("--format", f"不支持的格式 unsupported format {kind!r}")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        csv_output, csv_report = deid_csv(
            input_path.read_bytes(), field, Deidentifier(mode, load_key(key_path) if key_path else None)
        )
        atomic_write_bytes(output_path, csv_output)
        _emit_report(csv_report, report)
        return
    settings = get_settings()
    stat = input_path.stat()
    params = {
        "input": str(input_path.resolve()),
        "output": str(output_path.resolve()),
        "format": kind,
        "field": field,
        "mode": mode.value,
        "key_file": str(key_path.resolve()) if key_path else None,
        "input_size": stat.st_size,
        "input_mtime": stat.st_mtime_ns,
        "chunk_bytes": chunk_kb * 1024,
    }
    outcome = run_cli_job(
        DeidCorpus(),
        params,
        "去标识化 de-identifying (bytes)",
        executor=executor,
        workers=workers,
        show=not quiet,
    )
    summary = CorpusReport.model_validate_json(
        (settings.resolved_data_dir / "jobs" / outcome.job_id / "report.json").read_text()
    )
    summary.seconds = round(outcome.seconds, 2)
    _emit_report(summary, report)
