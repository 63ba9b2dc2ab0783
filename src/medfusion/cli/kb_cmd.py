from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from medfusion.errors import InvalidInput, MedFusionError
from medfusion.knowledge.base import KnowledgeBase, SearchFilters
from medfusion.knowledge.documents import Authority, DocType, DocumentMeta
from medfusion.knowledge.readers import SUPPORTED
from medfusion.store.database import get_database

app = typer.Typer(help="知识库 knowledge base", no_args_is_help=True)


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED))
        elif path.is_file():
            found.append(path)
        else:
            raise InvalidInput.for_field(str(path), "文件或目录不存在 no such file or folder")
    return found


@app.command("ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="文件或目录（递归）files or folders (recursive)")],
    doc_type: Annotated[DocType, typer.Option("--type")] = DocType.guideline,
    authority: Annotated[Authority, typer.Option()] = Authority.guideline,
    publisher: Annotated[str | None, typer.Option()] = None,
    department: Annotated[str | None, typer.Option()] = None,
) -> None:
    """导入文档 Ingest TXT/Markdown/HTML/DOCX/PDF; re-ingesting a source updates it (a transaction each)."""
    kb = KnowledgeBase(get_database())
    failures = 0
    for path in _files(paths):
        meta = DocumentMeta(
            source=str(path.resolve()),
            title=path.stem,
            doc_type=doc_type,
            authority=authority,
            publisher=publisher,
            department=department,
        )
        try:
            result = kb.ingest_file(path, meta)
        except MedFusionError as error:
            failures += 1
            typer.echo(f"  失败 failed {path}: {error.message}", err=True)
            continue
        typer.echo(f"  {result.status:9s} {path} ({result.chunks} chunks, {result.new_chunks} new)", err=True)
    stats = kb.stats()
    typer.echo(f"knowledge base: {stats['documents']} documents, {stats['chunks']} chunks", err=True)
    if failures:
        raise InvalidInput(
            f"{failures} 个文档未导入 {failures} document(s) not ingested (see above)",
            code="documents_failed",
        )


def _filters(items: list[str]) -> SearchFilters:
    data: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput.for_field("--filter", f"须为 key=value: {item!r}")
        data[{"type": "doc_type"}.get(key, key)] = value
    try:
        return SearchFilters.model_validate(data)
    except ValueError as exc:
        raise InvalidInput.for_field("--filter", str(exc).splitlines()[0]) from None


@app.command("search")
def search(
    query: Annotated[str | None, typer.Argument(help="检索语句")] = None,
    k: Annotated[int, typer.Option(min=1, max=200)] = 10,
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", help="type=guideline, authority=专业指南, department=…")
    ] = None,
    batch: Annotated[
        Path | None, typer.Option(help='JSONL of {"id", "query"}; one JSON line of hits per query')
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """检索知识库 Search: every hit carries its source and a citation (document, section, character span)."""
    kb = KnowledgeBase(get_database())
    filters = _filters(filter_ or [])
    if batch is not None:
        for number, line in enumerate(batch.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                text = str(item["query"])
            except (ValueError, KeyError, TypeError):
                raise InvalidInput.for_field(f"{batch}:{number}", 'need {"id", "query"}') from None
            hits = kb.search(text, k=k, filters=filters)
            typer.echo(
                json.dumps(
                    {"id": item.get("id"), "hits": [h.model_dump(mode="json") for h in hits]},
                    ensure_ascii=False,
                )
            )
        return
    if not query:
        raise InvalidInput.for_field("query", "需要检索语句或 --batch (a query or --batch)")
    hits = kb.search(query, k=k, filters=filters)
    if as_json:
        typer.echo(json.dumps([h.model_dump(mode="json") for h in hits], ensure_ascii=False, indent=1))
        return
    for number, hit in enumerate(hits, 1):
        typer.echo(f"{number:2d}. [{hit.score:.4f}] {hit.citation.label()}  ({hit.source})")
        typer.echo(f"    {hit.text[:160]}")


@app.command("remove")
def remove(
    source: Annotated[str, typer.Argument(help="导入时的来源路径 the source path used at ingest")],
) -> None:
    """删除文档 Remove a document (and chunks no other document uses)."""
    if not KnowledgeBase(get_database()).delete(source):
        raise InvalidInput.for_field("source", f"知识库中没有 not in the knowledge base: {source}")
    typer.echo(f"removed {source}")


@app.command("embed")
def embed(
    executor: Annotated[str, typer.Option(help="inline | local | ray")] = "local",
    workers: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """为尚无向量的片段计算向量 Embed chunks without vectors (resumable job; cached by content hash)."""
    from medfusion.cli.progress import job_progress

    kb = KnowledgeBase(get_database())
    with job_progress("向量化 embedding") as progress:
        done = kb.embed(executor=executor, workers=workers, progress=progress)
    typer.echo(f"embedded {done} chunks", err=True)
