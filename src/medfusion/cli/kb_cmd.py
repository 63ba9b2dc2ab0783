from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from medfusion.errors import InvalidInput, MedFusionError
from medfusion.graph import Graph
from medfusion.graph.model import split_terms
from medfusion.knowledge import packs
from medfusion.knowledge.base import KnowledgeBase, SearchFilters
from medfusion.knowledge.documents import Authority, DocType, DocumentMeta
from medfusion.knowledge.expansion import synonym_terms
from medfusion.knowledge.readers import SUPPORTED
from medfusion.store.database import Database, get_database

app = typer.Typer(help="知识库 knowledge base", no_args_is_help=True)
pack_app = typer.Typer(help="知识包 knowledge packs", no_args_is_help=True)
app.add_typer(pack_app, name="pack")


def _database() -> Database:
    """The database, with the packs shipped in the repo installed on first use."""
    db = get_database()
    packs.ensure_shipped(db)
    return db


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
    embed: Annotated[
        bool,
        typer.Option(
            "--embed/--no-embed",
            help="同时计算向量（默认）；--no-embed 稍后由 kb embed 完成 (embed now, or defer)",
        ),
    ] = True,
    executor: Annotated[str, typer.Option(help="embedding executor: inline | local | ray")] = "local",
    workers: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """导入文档 Ingest TXT/Markdown/HTML/DOCX/PDF; re-ingesting a source updates it (a transaction each).
    The ingested chunks are then embedded by the resumable embed job (interrupted, ``kb embed`` or the same
    ingest again resumes it); until then they are still found by their sparse channels."""
    from medfusion.cli.progress import job_progress

    kb = KnowledgeBase(get_database())
    failures = 0
    ingested: list[str] = []
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
        ingested.append(result.document_id)
        typer.echo(f"  {result.status:9s} {path} ({result.chunks} chunks, {result.new_chunks} new)", err=True)
    if embed and ingested:
        with job_progress("向量化 embedding") as progress:
            done = kb.embed(executor=executor, workers=workers, progress=progress, document_ids=ingested)
        typer.echo(f"embedded {done} chunks", err=True)
    elif ingested:
        typer.echo("not embedded (--no-embed): run `medfusion kb embed` to add their vectors", err=True)
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
    expand: Annotated[
        bool, typer.Option("--expand", help="用图谱同义词扩展查询 graph-synonym expansion")
    ] = False,
    source: Annotated[str, typer.Option(help="own（自己导入的文档）| pack:<name> | all")] = "all",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """检索知识库 Search: every hit carries its source and a citation (document, section, character span)."""
    db = _database()
    kb = KnowledgeBase(db)
    filters = _filters([*(filter_ or []), f"source={source}"])
    graph = Graph(db)

    def run(text: str) -> list[Any]:
        return kb.search(
            text, k=k, filters=filters, expansions=synonym_terms(graph, text) if expand else None
        )

    if batch is not None:
        for number, line in enumerate(batch.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                text = str(item["query"])
            except (ValueError, KeyError, TypeError):
                raise InvalidInput.for_field(f"{batch}:{number}", 'need {"id", "query"}') from None
            hits = run(text)
            typer.echo(
                json.dumps(
                    {"id": item.get("id"), "hits": [h.model_dump(mode="json") for h in hits]},
                    ensure_ascii=False,
                )
            )
        return
    if not query:
        raise InvalidInput.for_field("query", "需要检索语句或 --batch (a query or --batch)")
    hits = run(query)
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


@app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="问题")],
    k: Annotated[int, typer.Option(min=1, max=20, help="passages to read")] = 5,
    conditions: Annotated[str | None, typer.Option(help="患者诊断，逗号分隔")] = None,
    allergies: Annotated[str | None, typer.Option(help="患者过敏，逗号分隔")] = None,
    medications: Annotated[str | None, typer.Option(help="患者在用药物，逗号分隔")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """问答 A cited answer: every sentence quotes a passage or a graph fact and names it (assistive)."""
    from medfusion.knowledge.answers import Answerer, PatientContext

    if not question.strip():
        raise InvalidInput.for_field("question", "问题不能为空 the question is empty")
    db = _database()
    context = None
    if conditions or allergies or medications:
        context = PatientContext(
            conditions=split_terms(conditions),
            allergies=split_terms(allergies),
            medications=split_terms(medications),
        )
    answer = Answerer(KnowledgeBase(db), Graph(db)).answer(question, context, k=k)
    if as_json:
        typer.echo(answer.model_dump_json(indent=1))
        return
    if not answer.sentences:
        typer.echo("知识库中未找到足够依据 no supported answer in the knowledge base")
    for sentence in answer.sentences:
        typer.echo(f"{sentence.text} [{','.join(sentence.citations)}]")
    typer.echo("")
    for item in answer.evidence:
        where = item.citation.label() if item.citation else item.text[:60]
        typer.echo(f"[{item.id}] {where} — {item.source}")
    typer.echo(f"({answer.engine}; confidence {answer.confidence}; {answer.status})")


@pack_app.command("build")
def pack_build(
    source: Annotated[Path, typer.Argument(help="知识包源目录（含 manifest.json）")],
    out: Annotated[Path, typer.Option(help="输出目录，或以 .zip 结尾的文件")],
    embed: Annotated[bool, typer.Option(help="预先计算向量 pre-build vectors")] = True,
) -> None:
    """构建知识包 Validate a pack source folder and write the pack with its pre-built vectors."""
    if not source.is_dir():
        raise InvalidInput.for_field("source", f"不是目录 not a folder: {source}")
    manifest = packs.build(source, out, embed=embed)
    typer.echo(json.dumps(manifest.model_dump(), ensure_ascii=False))


@pack_app.command("import")
def pack_import(path: Annotated[Path, typer.Argument(help="知识包目录或 .zip")]) -> None:
    """导入知识包 Install a pack (idempotent per version; a newer version replaces the older)."""
    if not path.exists():
        raise InvalidInput.for_field("path", f"不存在 no such pack: {path}")
    info = packs.install(get_database(), path)
    typer.echo(info.model_dump_json())


@pack_app.command("import-icd10")
def pack_import_icd10(
    codes: Annotated[Path, typer.Argument(help="ICD-10 编码表 CSV/TSV（code/编码, disease/名称 …）")],
    catalogue: Annotated[
        Path | None, typer.Option(help="章节表 code_lower_bound,code_upper_bound,level,catalog")
    ] = None,
    licence: Annotated[
        str, typer.Option(help="你持有该文件的许可 the licence under which you hold the file")
    ] = "user-supplied licensed copy (ICD-10 © WHO) — not for redistribution",
    source: Annotated[str | None, typer.Option(help="出处说明 (default: the file name)")] = None,
    out: Annotated[Path | None, typer.Option(help="知识包写到此目录 write the pack folder here")] = None,
    install: Annotated[bool, typer.Option(help="构建后安装 install after building")] = True,
    only_cited: Annotated[
        bool, typer.Option(help="只保留已发布知识包引用的类目（即随附摘录的制法）only the cited categories")
    ] = False,
) -> None:
    """从你有许可的文件构建并安装 ICD-10 知识包 Build (and install) the icd10-categories pack from your own
    licensed ICD-10 file; it replaces the shipped extract and is never replaced by it."""
    import tempfile

    from medfusion.knowledge import icd10_pack

    folder = out or Path(tempfile.mkdtemp(prefix="icd10-pack-"))
    cited = icd10_pack.codes_cited_by(packs.shipped()) if only_cited else None
    result = icd10_pack.build(
        codes,
        folder,
        catalogue=catalogue,
        licence=licence,
        source=source or f"user:{codes.name}",
        version=icd10_pack.SHIPPED_VERSION if only_cited else icd10_pack.IMPORTED_VERSION,
        only=cited,
    )
    if install:
        db = get_database()
        packs.remove(db, icd10_pack.PACK)
        result.installed = packs.install(db, folder).status
    typer.echo(json.dumps(result.__dict__, ensure_ascii=False))


@pack_app.command("list")
def pack_list() -> None:
    """已安装的知识包 Installed packs with their document and triple counts."""
    typer.echo(
        json.dumps([i.model_dump(mode="json") for i in packs.listing(_database())], ensure_ascii=False)
    )


@pack_app.command("remove")
def pack_remove(name: Annotated[str, typer.Argument()]) -> None:
    """移除知识包 Remove a pack and exactly the documents and triples it brought."""
    if not packs.remove(get_database(), name):
        raise InvalidInput.for_field("name", f"未安装 not installed: {name}")
    typer.echo(f"removed {name}")
