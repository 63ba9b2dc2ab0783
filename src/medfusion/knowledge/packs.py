"""Knowledge packs: a versioned bundle of documents, graph triples, vocabulary and pre-built vectors.

A pack is a folder (or a ``.zip`` of one) holding ``manifest.json`` — name, version, licence, sources,
review status and the files below — and any of:

- ``documents.jsonl``: one document per line, ``{"source", "title", "text", "doc_type", "authority",
  "publisher", "published", "department"}``;
- ``diseases.jsonl``: structured disease entries (name, ICD-10, department, symptoms, checks, drugs,
  first-line treatment, source), which the build turns into one cited document and the typed triples each;
- ``triples.csv`` and ``vocabulary.csv`` in the graph's documented formats;
- ``vectors.npz``: chunk id → embedding under ``embedding_model``, written by ``build``, so importing a pack
  never runs the embedding model and ``make run`` stays fast.

Packs shipped in the repo (``medfusion/packs/*``) are installed on first use and by ``db upgrade``;
installing is idempotent per name and version, a newer version replaces the older, and removing a pack takes
away exactly the documents and triples it brought.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, func, select

from medfusion.errors import InvalidInput
from medfusion.graph import importers
from medfusion.graph.model import EntityCode, EntityType, Relation, Triple
from medfusion.graph.store import GraphStore
from medfusion.knowledge import embeddings
from medfusion.knowledge.base import KnowledgeBase, chunk_id
from medfusion.knowledge.chunking import chunk_text
from medfusion.knowledge.documents import Authority, DocType, DocumentMeta
from medfusion.store.database import Database
from medfusion.store.tables import GraphRelationRow, KbChunkRow, KbDocumentRow, KbPackRow

SHIPPED = Path(__file__).resolve().parent.parent / "packs"
FILES = ("documents.jsonl", "diseases.jsonl", "triples.csv", "vocabulary.csv", "vectors.npz")
_installed_once: set[str] = set()
_lock = threading.Lock()


class PackManifest(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,99}$")
    version: str = Field(pattern=r"^\d+(\.\d+){0,3}$")
    licence: str = Field(min_length=1, max_length=200)
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    review_status: str = "needs_clinician_review"
    embedding_model: str | None = None
    files: list[str] = Field(default_factory=list)


ReviewStatus = Literal["needs_clinician_review", "clinician_accepted"]


class DiseaseEntry(BaseModel):
    """One line of ``diseases.jsonl`` (unknown keys are errors, so a misspelt field cannot vanish).

    ``drugs`` are medicines only (graph type ``drug``); procedures, devices and non-drug therapies
    (phototherapy, CPAP, nasal irrigation) go in ``procedures`` (graph type ``procedure``). ``red_flags``
    and ``first_actions`` are what a front door must recognise and do first (emergencies). ``source`` is the
    primary citation (it labels every triple); ``also_cited`` the further ones. ``review_note`` says what
    changed, what a reviewer should check and which citation details could not be verified."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    icd10: str | None = None
    synonyms: list[str] = Field(default_factory=list)
    department: str
    symptoms: list[str] = Field(min_length=1)
    red_flags: list[str] = Field(default_factory=list)
    first_actions: str | None = None
    checks: list[str] = Field(min_length=1)
    drugs: list[str] = Field(default_factory=list)
    procedures: list[str] = Field(default_factory=list)
    first_line: str = Field(min_length=1)
    source: str = Field(min_length=1, max_length=200)
    also_cited: list[str] = Field(default_factory=list)
    doc_type: DocType = DocType.guideline
    review_status: ReviewStatus = "needs_clinician_review"
    review_note: str | None = None


class PackDocument(DocumentMeta):
    """A document's metadata and its text, one line of ``documents.jsonl``."""

    text: str = Field(min_length=1)


class PackInfo(BaseModel):
    name: str
    version: str
    licence: str
    installed_at: datetime
    documents: int
    triples: int
    status: str = "installed"  # installed | unchanged | upgraded
    review_status: str = "needs_clinician_review"  # the manifest's: needs_clinician_review | … (per pack)
    triples_accepted: int = 0  # triples a clinician has signed (review_status clinician_accepted)
    description: str = ""


class _Pack:
    """A pack opened from a folder or a zip; files are read by name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip = zipfile.ZipFile(path) if path.is_file() else None
        try:
            raw = self.read("manifest.json")
            if raw is None:
                raise InvalidInput.for_field(str(path), "知识包缺少 manifest.json (not a knowledge pack)")
            self.manifest = PackManifest.model_validate_json(raw)
        except ValidationError as exc:
            raise InvalidInput.for_field(
                f"{path}/manifest.json", f"无效清单 invalid manifest: {exc}"
            ) from None

    def read(self, name: str) -> bytes | None:
        if self._zip is not None:
            try:
                return self._zip.read(name)
            except KeyError:
                return None
        target = self.path / name
        return target.read_bytes() if target.is_file() else None

    def lines(self, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
        raw = self.read(name)
        if raw is None:
            return
        for number, line in enumerate(raw.decode("utf-8-sig").splitlines(), start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInput.for_field(
                        f"{self.path}/{name}:{number}", f"JSON 错误: {exc}"
                    ) from None

    def csv_file(self, name: str) -> Path | None:
        """The CSV importers read paths; a zipped CSV is copied out once."""
        raw = self.read(name)
        if raw is None:
            return None
        if self._zip is None:
            return self.path / name
        with tempfile.NamedTemporaryFile("wb", suffix=f"-{name}", delete=False) as handle:
            handle.write(raw)
        return Path(handle.name)


def _where(path: Path, name: str, number: int) -> str:
    return f"{path}/{name}:{number}"


_REVIEW_WORDS = {"needs_clinician_review": "待临床医生审核", "clinician_accepted": "已经临床医生审核"}


def disease_document(entry: DiseaseEntry, pack: str) -> PackDocument:
    code = f"（ICD-10 {entry.icd10}）" if entry.icd10 else ""
    also = f"又称{'、'.join(entry.synonyms)}。" if entry.synonyms else ""
    urgent: list[str] = []
    if entry.red_flags:
        urgent += ["## 危险信号", f"{entry.name}的危险信号：{'、'.join(entry.red_flags)}。"]
    if entry.first_actions:
        urgent += ["## 首要处置", entry.first_actions]
    cited = "；".join([entry.source, *entry.also_cited])
    status = _REVIEW_WORDS[entry.review_status]
    note = f"审核说明：{entry.review_note}" if entry.review_note else ""
    text = "\n".join(
        [
            f"# {entry.name}{code}",
            f"{entry.name}{also}就诊科室：{entry.department}。",
            "## 主要症状",
            f"{entry.name}的主要症状：{'、'.join(entry.symptoms)}。",
            *urgent,
            "## 关键检查",
            f"{entry.name}的关键检查：{'、'.join(entry.checks)}。",
            "## 一线治疗",
            entry.first_line,
            "## 出处",
            f"{cited}。审核状态：{entry.review_status}（{status}）。{note}",
        ]
    )
    return PackDocument(
        source=f"pack:{pack}/{entry.name}",
        title=f"{entry.name}{code}",
        text=text,
        doc_type=entry.doc_type,
        authority=Authority.guideline,
        department=entry.department,
    )


def disease_triples(entry: DiseaseEntry) -> Iterator[Triple]:
    def triple(relation: Relation, tail: str, tail_type: EntityType) -> Triple:
        return Triple(
            head=entry.name,
            head_type=EntityType.disease,
            relation=relation,
            tail=tail,
            tail_type=tail_type,
            source=entry.source,
            review_status=entry.review_status,
        )

    yield triple(Relation.belongs_to_department, entry.department, EntityType.department)
    yield from (triple(Relation.has_symptom, s, EntityType.symptom) for s in entry.symptoms)
    yield from (triple(Relation.needs_check, c, EntityType.check) for c in entry.checks)
    yield from (triple(Relation.treated_by, d, EntityType.drug) for d in entry.drugs)
    yield from (triple(Relation.treated_by, p, EntityType.procedure) for p in entry.procedures)


def _diseases(pack: _Pack) -> list[DiseaseEntry]:
    entries = []
    for number, row in pack.lines("diseases.jsonl"):
        try:
            entries.append(DiseaseEntry.model_validate(row))
        except ValidationError as exc:
            raise InvalidInput.for_field(_where(pack.path, "diseases.jsonl", number), str(exc)) from None
    return entries


def _documents(pack: _Pack) -> list[PackDocument]:
    documents = [disease_document(e, pack.manifest.name) for e in _diseases(pack)]
    for number, row in pack.lines("documents.jsonl"):
        try:
            documents.append(PackDocument.model_validate(row))
        except ValidationError as exc:
            raise InvalidInput.for_field(_where(pack.path, "documents.jsonl", number), str(exc)) from None
    return documents


def _triples(pack: _Pack) -> list[Triple]:
    triples = [t for e in _diseases(pack) for t in disease_triples(e)]
    path = pack.csv_file("triples.csv")
    if path is not None:
        triples.extend(importers.triple_csv(path))
    return triples


def _vocabulary(pack: _Pack) -> list[EntityCode]:
    entries = [
        EntityCode(
            name=e.name,
            type=EntityType.disease,
            code_system="ICD-10" if e.icd10 else None,
            code=e.icd10,
            synonyms=e.synonyms,
        )
        for e in _diseases(pack)
    ]
    path = pack.csv_file("vocabulary.csv")
    if path is not None:
        entries.extend(importers.vocabulary_csv(path))
    return entries


def build(source: Path, out: Path, embed: bool = True) -> PackManifest:
    """Validate a pack's source folder and write the pack (a folder, or a zip if ``out`` ends in .zip)
    with its pre-built vectors and a manifest listing its files.

    Vectors already in the source's ``vectors.npz`` under the current embedding model are kept for the
    chunks that are still there; only new or changed chunks are embedded, and vectors of chunks that are
    gone are dropped — so ``out`` may be ``source`` itself (rebuild in place after editing entries)."""
    pack = _Pack(source)
    documents = _documents(pack)
    _triples(pack)  # validates every row, naming the line of a bad one
    _vocabulary(pack)
    manifest = pack.manifest.model_copy()
    payload: dict[str, bytes] = {}
    for name in ("documents.jsonl", "diseases.jsonl", "triples.csv", "vocabulary.csv"):
        raw = pack.read(name)
        if raw is not None:
            payload[name] = raw
    if embed and documents:
        texts: dict[str, str] = {}
        for document in documents:
            for piece in chunk_text(document.text):
                texts.setdefault(chunk_id(piece.text), piece.text)
        ids = sorted(texts)
        vectors = _reuse_and_embed(pack, ids, texts)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, ids=np.array(ids), vectors=vectors.astype(np.float16))
        payload["vectors.npz"] = buffer.getvalue()
        manifest.embedding_model = embeddings.MODEL
    manifest.files = sorted(payload)
    payload["manifest.json"] = (manifest.model_dump_json(indent=2) + "\n").encode()
    if out.suffix == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, raw in sorted(payload.items()):
                archive.writestr(name, raw)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name, raw in payload.items():
            (out / name).write_bytes(raw)
    return manifest


def _reuse_and_embed(pack: _Pack, ids: list[str], texts: dict[str, str]) -> np.ndarray:
    """Vectors for ``ids`` in order: the pack's earlier ones where its model is the current one (stored as
    float16, kept bit for bit), the embedding model for the rest."""
    known: dict[str, np.ndarray] = {}
    raw = pack.read("vectors.npz")
    if raw is not None and pack.manifest.embedding_model == embeddings.MODEL:
        with np.load(io.BytesIO(raw)) as data:
            known = {str(i): v for i, v in zip(data["ids"], data["vectors"], strict=True)}
    todo = [i for i in ids if i not in known]
    fresh = embeddings.embed_passages([texts[i] for i in todo]) if todo else np.zeros((0, 0))
    made = dict(zip(todo, fresh, strict=True))
    return np.stack([known[i] if i in known else made[i] for i in ids]).astype(np.float16)


class _Installed(BaseModel):
    name: str
    version: str
    licence: str
    installed_at: datetime
    review_status: str = "needs_clinician_review"
    description: str = ""


def installed(db: Database) -> dict[str, _Installed]:
    with db.read_session() as session:
        return {
            row.name: _Installed(
                name=row.name,
                version=row.version,
                licence=row.licence,
                installed_at=row.installed_at,
                review_status=str(row.manifest.get("review_status", "needs_clinician_review")),
                description=str(row.manifest.get("description", "")),
            )
            for row in session.execute(select(KbPackRow)).scalars()
        }


def remove(db: Database, name: str) -> bool:
    kb = KnowledgeBase(db)
    if name not in installed(db):
        return False
    for source in kb.sources(name):
        kb.delete(source)
    GraphStore(db).remove_pack(name)
    with db.session() as session:
        session.execute(delete(KbPackRow).where(KbPackRow.name == name))
    return True


def install(db: Database, path: Path) -> PackInfo:
    """Import a pack: documents (a transaction each), vectors, vocabulary and triples, then the manifest
    row last — an interrupted import is simply repeated next time (every step is idempotent)."""
    pack = _Pack(path)
    manifest = pack.manifest
    current = installed(db).get(manifest.name)
    status = "installed"
    if current is not None:
        if current.version == manifest.version:
            return _info(db, current, "unchanged")
        remove(db, manifest.name)
        status = "upgraded"
    documents = _documents(pack)
    triples = _triples(pack)
    vocabulary = _vocabulary(pack)
    kb = KnowledgeBase(db)
    for document in documents:
        kb.ingest_text(document.text, document, pack=manifest.name)
    raw = pack.read("vectors.npz")
    if raw is not None and manifest.embedding_model:
        _store_vectors(db, raw, manifest.embedding_model)
    graph = GraphStore(db)
    graph.add_codes(vocabulary, source=f"{manifest.name} {manifest.version} vocabulary", pack=manifest.name)
    graph.add(triples, pack=manifest.name)
    with db.session() as session:
        session.add(
            KbPackRow(
                name=manifest.name,
                version=manifest.version,
                licence=manifest.licence,
                manifest=manifest.model_dump(),
                installed_at=datetime.now(UTC),
            )
        )
    return _info(db, installed(db)[manifest.name], status)


def _store_vectors(db: Database, raw: bytes, model: str) -> None:
    """Pre-built vectors for the chunks the pack's documents became (after ingest: they reference them)."""
    with np.load(io.BytesIO(raw)) as data:
        ids = [str(i) for i in data["ids"]]
        vectors = data["vectors"].astype(np.float32)
    with db.read_session() as session:
        present = set(session.execute(select(KbChunkRow.id).where(KbChunkRow.id.in_(ids))).scalars())
    keep = [i for i, chunk in enumerate(ids) if chunk in present]
    for start in range(0, len(keep), 500):
        rows = keep[start : start + 500]
        embeddings.store_vectors(db, [ids[i] for i in rows], vectors[rows], model)


def _info(db: Database, row: _Installed, status: str) -> PackInfo:
    with db.read_session() as session:
        documents = session.execute(
            select(func.count()).select_from(KbDocumentRow).where(KbDocumentRow.pack == row.name)
        ).scalar_one()
        triples = session.execute(
            select(func.count()).select_from(GraphRelationRow).where(GraphRelationRow.pack == row.name)
        ).scalar_one()
        accepted = session.execute(
            select(func.count())
            .select_from(GraphRelationRow)
            .where(GraphRelationRow.pack == row.name, GraphRelationRow.review_status == "clinician_accepted")
        ).scalar_one()
    return PackInfo(
        name=row.name,
        version=row.version,
        licence=row.licence,
        installed_at=row.installed_at,
        documents=documents,
        triples=triples,
        status=status,
        review_status=row.review_status,
        triples_accepted=accepted,
        description=row.description,
    )


def listing(db: Database) -> list[PackInfo]:
    return [_info(db, row, "installed") for row in installed(db).values()]


def shipped() -> list[Path]:
    return sorted(p for p in SHIPPED.iterdir() if (p / "manifest.json").is_file()) if SHIPPED.is_dir() else []


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def ensure_shipped(db: Database) -> list[PackInfo]:
    """Install the packs shipped in the repo that are missing or older (once per process and database)."""
    from medfusion.settings import get_settings

    if not get_settings().autoload_packs:
        return []
    with _lock:
        if db.url in _installed_once:
            return []
        have = installed(db)
        results = []
        for path in shipped():
            manifest = _Pack(path).manifest
            row = have.get(manifest.name)
            # only missing or older: a newer version the user imported (e.g. the full ICD-10 list built
            # from their licensed file) is never replaced by the shipped one
            if row is None or _version(row.version) < _version(manifest.version):
                results.append(install(db, path))
        _installed_once.add(db.url)
        return results
