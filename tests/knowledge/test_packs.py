"""Knowledge packs: build (with pre-built vectors) → import → list → upgrade → remove, folder or zip;
the shipped packs cover ≥100 cited diseases and load on first use with their vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medfusion.errors import InvalidInput
from medfusion.graph import Graph
from medfusion.knowledge import embeddings, packs
from medfusion.knowledge.base import KnowledgeBase
from medfusion.settings import get_settings
from medfusion.store.database import Database
from tests.cli.test_cli import run

DISEASE = {
    "name": "示例病",
    "icd10": "Z99",
    "synonyms": ["示例综合征"],
    "department": "全科医学科",
    "symptoms": ["示例症状甲", "示例症状乙"],
    "checks": ["示例检查"],
    "drugs": ["对乙酰氨基酚"],
    "first_line": "一线治疗为休息与对症处理。",
    "source": "示例指南(2024), §3",
}


def _source(folder: Path, version: str = "1.0", diseases: list[dict[str, object]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "demo-pack", "version": version, "licence": "CC0", "sources": ["示例指南(2024)"]}
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    lines = [json.dumps(d, ensure_ascii=False) for d in (diseases or [DISEASE])]
    (folder / "diseases.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "documents.jsonl").write_text(
        json.dumps(
            {"source": "pack:demo-pack/faq", "title": "常见问题", "text": "示例病不传染。"},
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    (folder / "triples.csv").write_text(
        "head,head_type,relation,tail,tail_type,source,severity,review_status,note\n"
        "示例病,disease,has_complication,示例并发症,disease,示例指南(2024) §4,,needs_clinician_review,\n",
        encoding="utf-8",
    )
    return folder


def test_build_import_upgrade_remove_from_a_zip(db: Database, tmp_path: Path) -> None:
    manifest = packs.build(_source(tmp_path / "src"), tmp_path / "demo.zip", embed=False)
    assert manifest.files == ["diseases.jsonl", "documents.jsonl", "triples.csv"]
    info = packs.install(db, tmp_path / "demo.zip")
    assert (info.status, info.documents) == ("installed", 2)
    assert info.triples == 1 + 2 + 1 + 1 + 1 + 1  # department, 2 symptoms, check, drug, complication, synonym
    graph = Graph(db)
    assert [e.code for e in graph.lexicon.resolve("示例综合征")] == ["Z99"]
    assert packs.install(db, tmp_path / "demo.zip").status == "unchanged"
    # a newer version replaces the older, keeping nothing stale
    changed = dict(DISEASE, symptoms=["示例症状丙"])
    packs.build(_source(tmp_path / "src2", "1.1", [changed]), tmp_path / "demo2", embed=False)
    assert packs.install(db, tmp_path / "demo2").status == "upgraded"
    symptoms = {n.name for n in graph.queries.neighbours("示例病") if n.relation == "has_symptom"}
    assert symptoms == {"示例症状丙"}
    assert [p.version for p in packs.listing(db)] == ["1.1"]
    assert packs.remove(db, "demo-pack") and packs.listing(db) == []
    assert KnowledgeBase(db).stats()["documents"] == 0 and graph.queries.neighbours("示例病") == []
    assert not packs.remove(db, "demo-pack")


def test_bad_packs_name_the_problem(tmp_path: Path, db: Database) -> None:
    with pytest.raises(InvalidInput, match="manifest"):
        packs.install(db, tmp_path)
    folder = _source(tmp_path / "bad", diseases=[dict(DISEASE, symptoms=[])])
    with pytest.raises(InvalidInput, match=r"diseases.jsonl:1"):
        packs.build(folder, tmp_path / "out", embed=False)
    (folder / "manifest.json").write_text('{"name": "Bad Name", "version": "x", "licence": ""}')
    with pytest.raises(InvalidInput, match="manifest"):
        packs.install(db, folder)


def test_shipped_starter_pack_is_cited_and_comes_with_every_vector(tmp_path: Path) -> None:
    lines = (packs.SHIPPED / "starter-diseases" / "diseases.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [packs.DiseaseEntry.model_validate_json(line) for line in lines]
    assert len(entries) >= 100 and len({e.name for e in entries}) == len(entries)
    assert all(e.source and e.first_line and e.symptoms and e.checks and e.department for e in entries)
    db = Database(f"sqlite:///{tmp_path / 'packs.db'}")
    db.upgrade()
    info = packs.install(db, packs.SHIPPED / "starter-diseases")
    assert info.documents == len(entries)
    assert embeddings.missing_chunk_ids(db) == []  # pre-built: nothing to embed on a fresh machine
    hits = KnowledgeBase(db).search("痛风急性发作用什么药", k=3, channels=("dense",))
    assert hits[0].citation.title.startswith("痛风") and hits[0].channels == {"dense": 1}
    db.dispose()


def test_cli_pack_commands_and_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _source(tmp_path / "src")
    code, out, _ = run(
        ["kb", "pack", "build", str(source), "--out", str(tmp_path / "p.zip"), "--no-embed"], capsys
    )
    assert code == 0 and json.loads(out)["name"] == "demo-pack"
    code, out, _ = run(["kb", "pack", "import", str(tmp_path / "p.zip")], capsys)
    assert code == 0 and json.loads(out)["status"] == "installed"
    code, out, _ = run(["kb", "pack", "remove", "nope"], capsys)
    assert code != 0
    # shipped packs are installed the first time any knowledge command runs
    monkeypatch.setenv("MEDFUSION_AUTOLOAD_PACKS", "true")
    get_settings.cache_clear()
    code, out, _ = run(["kb", "pack", "list"], capsys)
    names = {p["name"] for p in json.loads(out)}
    shipped = {p.name for p in packs.shipped()}
    assert code == 0 and names == {"demo-pack", *shipped} and "symptom-lexicon" in shipped


def test_shipped_icd10_pack_links_categories_to_blocks_and_chapters(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'icd.db'}")
    db.upgrade()
    info = packs.install(db, packs.SHIPPED / "icd10-categories")
    # an attributed extract since issue 15 (ICD-10 is WHO's; the full list is user-imported)
    assert info.licence.startswith("ICD-10 © WHO") and info.triples > 100
    graph = Graph(db)
    [category] = graph.lexicon.resolve("I10")
    chain = graph.queries.path(category.name, "I00-I99 循环系统疾病")
    assert [e.relation for e in chain] == ["member_of", "member_of"]
    assert chain[0].tail.name == "I10-I15 高血压病"
    db.dispose()
