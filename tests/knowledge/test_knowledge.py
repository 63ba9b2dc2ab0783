from __future__ import annotations

import json
from pathlib import Path

import pytest

from medfusion.errors import InvalidInput
from medfusion.knowledge.base import KnowledgeBase, SearchFilters
from medfusion.knowledge.chunking import chunk_text
from medfusion.knowledge.documents import Authority, DocType, DocumentMeta
from medfusion.knowledge.readers import DocumentError, read_document
from medfusion.store.database import Database, get_database
from tests.cli.test_cli import run

GUIDELINE = """# 高血压基层诊疗指南
## 一、诊断
诊室血压≥140/90 mmHg 可诊断高血压。需非同日测量3次。
## 二、治疗
（一） 生活方式干预
减少钠盐摄入，每日食盐少于5g。规律运动，控制体重。
（二） 药物治疗
一线药物包括钙通道阻滞剂、ACEI、ARB、利尿剂和β受体阻滞剂。氨氯地平起始剂量5mg每日一次。
"""


def test_chunks_follow_headings_and_keep_exact_spans() -> None:
    pieces = chunk_text(GUIDELINE)
    sections = [p.section for p in pieces]
    assert "高血压基层诊疗指南 > 一、诊断" in sections
    assert any(s.endswith("（二） 药物治疗") for s in sections)
    for piece in pieces:
        assert GUIDELINE[piece.start : piece.end] == piece.text


def test_long_sections_are_packed_with_overlap() -> None:
    text = "## 长段落\n" + "".join(f"第{i}句内容说明血糖控制目标与随访要求。" for i in range(60))
    pieces = chunk_text(text, max_chars=120)
    assert len(pieces) > 5 and all(len(p.text) <= 140 for p in pieces)
    assert any(pieces[i].text.split("。")[-2] in pieces[i + 1].text for i in range(len(pieces) - 1))


def test_readers_handle_encodings_html_and_bad_files(tmp_path: Path) -> None:
    gb = tmp_path / "gb.txt"
    gb.write_bytes("糖尿病患者应定期监测糖化血红蛋白。".encode("gb18030"))
    assert read_document(gb)[1] == "糖尿病患者应定期监测糖化血红蛋白。"
    page = tmp_path / "p.html"
    page.write_text(
        "<html><head><title>胸痛指南</title><script>x=1</script></head><body><h2>处置</h2>"
        "<p>立即心电图。</p></body></html>",
        encoding="utf-8",
    )
    title, text = read_document(page)
    assert title == "胸痛指南" and "## 处置" in text and "x=1" not in text
    for name, data, reason in (
        ("e.txt", b"", "empty"),
        ("x.xlsx", b"abc", "unsupported"),
        ("bad.pdf", b"%PDF-1.4 garbage", "PDF"),
        ("bad.docx", b"not a zip", "DOCX"),
        ("bin.txt", bytes(range(256)) * 4, "GB18030"),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DocumentError, match=reason):
            read_document(path)


@pytest.fixture(params=["memory", "postgres"])
def kb(db: Database, request: pytest.FixtureRequest) -> KnowledgeBase:
    """The same tests on every sparse backend (PostgreSQL full-text needs a PostgreSQL database)."""
    if request.param == "postgres" and db.dialect != "postgresql":
        pytest.skip("the postgres backend runs on the PostgreSQL database")
    return KnowledgeBase(db, backend=request.param)


@pytest.mark.parametrize("dense", ["memory", "milvus"])
def test_dense_backends_agree_and_follow_updates(tmp_path: Path, dense: str) -> None:
    """The same corpus and vectors give the same dense ranking in memory and in Milvus (milvus-lite), and a
    deleted document leaves the collection before the next search."""
    db = Database(f"sqlite:///{tmp_path / 'kb.db'}")
    db.upgrade()
    kb = KnowledgeBase(db, dense=dense)
    kb.ingest_text(GUIDELINE, DocumentMeta(source="a.md", title="A"))
    kb.ingest_text("## 运动\n每周至少150分钟中等强度有氧运动。", DocumentMeta(source="b.md", title="B"))
    kb.embed(executor="inline")
    hits = kb.search("每周运动多久", k=2, channels=("dense",))
    assert hits[0].source == "b.md" and hits[0].channels == {"dense": 1}
    reference = KnowledgeBase(db, dense="memory").search("每周运动多久", k=5, channels=("dense",))
    assert [h.chunk_id for h in kb.search("每周运动多久", k=5, channels=("dense",))] == [
        h.chunk_id for h in reference
    ]
    assert kb.delete("b.md")
    assert all(h.source == "a.md" for h in kb.search("每周运动多久", k=5, channels=("dense",)))
    db.dispose()


def test_ingest_search_cite_update_delete(kb: KnowledgeBase) -> None:
    meta = DocumentMeta(
        source="guidelines/htn.md",
        title="高血压基层诊疗指南",
        publisher="中华医学会",
        department="心血管内科",
    )
    first = kb.ingest_text(GUIDELINE, meta)
    assert first.status == "added" and first.chunks >= 3
    assert kb.ingest_text(GUIDELINE, meta).status == "unchanged"
    hits = kb.search("氨氯地平的起始剂量是多少", k=3)
    assert hits and "氨氯地平" in hits[0].text and hits[0].source == "guidelines/htn.md"
    citation = hits[0].citation
    assert GUIDELINE[citation.start : citation.end] == hits[0].text and "药物治疗" in citation.section
    assert kb.ingest_text(GUIDELINE.replace("5g", "6g"), meta).status == "updated"
    assert kb.stats()["documents"] == 1
    assert kb.delete("guidelines/htn.md") and kb.stats() == {"documents": 0, "chunks": 0, "references": 0}
    assert kb.search("氨氯地平") == []


def test_duplicates_keep_every_source_and_filters_apply(kb: KnowledgeBase) -> None:
    kb.ingest_text(GUIDELINE, DocumentMeta(source="a.md", title="A", authority=Authority.guideline))
    kb.ingest_text(
        GUIDELINE.replace("。", "。 "),
        DocumentMeta(source="b.md", title="B", doc_type=DocType.faq, authority=Authority.general),
    )
    stats = kb.stats()
    assert stats["documents"] == 2 and stats["references"] == 2 * stats["chunks"]  # near-duplicates merged
    faq = kb.search("食盐", filters=SearchFilters(doc_type=DocType.faq))
    assert faq and all(h.source == "b.md" for h in faq)
    guideline = kb.search("食盐", filters=SearchFilters(authority=Authority.guideline))
    assert guideline and all(h.source == "a.md" for h in guideline)


def test_a_failed_ingest_leaves_nothing(kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    from medfusion.knowledge import base

    def boom(text: str) -> list[str]:
        raise RuntimeError("tokeniser crashed mid-document")

    monkeypatch.setattr(base.tokens, "bigrams", boom)
    with pytest.raises(RuntimeError):
        kb.ingest_text(GUIDELINE, DocumentMeta(source="c.md", title="C"))
    assert kb.stats() == {"documents": 0, "chunks": 0, "references": 0}


def test_cli_ingest_and_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "htn.md").write_text(GUIDELINE, encoding="utf-8")
    (folder / "sub" / "empty.txt").write_text("", encoding="utf-8")
    code, _, err = run(["kb", "ingest", str(folder)], capsys)
    assert code == 2 and "empty" in err and "added" in err
    code, out, _ = run(["kb", "search", "降压药物有哪些", "--k", "2", "--json"], capsys)
    hits = json.loads(out)
    assert code == 0 and hits and {"source", "citation", "score", "text"} <= set(hits[0])
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "q1", "query": "诊断标准"}\n{"id": "q2", "query": "运动"}\n', encoding="utf-8")
    code, out, _ = run(["kb", "search", "--batch", str(queries), "--k", "1"], capsys)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line["id"] for line in lines] == ["q1", "q2"]
    code, _, err = run(["kb", "search", "x", "--filter", "authority=最高"], capsys)
    assert code == 2 and "--filter" in err


def test_dense_channel_embeds_once_and_finds_paraphrases(tmp_path: Path) -> None:
    db = get_database()
    kb = KnowledgeBase(db)
    kb.ingest_text(GUIDELINE, DocumentMeta(source="htn.md", title="高血压基层诊疗指南"))
    assert kb.embed(executor="inline") >= 3
    assert kb.embed(executor="inline") == 0  # cached by content hash
    hits = kb.search("减少吃盐有什么要求", k=1, channels=("dense",))
    assert hits and "食盐" in hits[0].text and hits[0].channels == {"dense": 1}
    fused = kb.search("降压药怎么选", k=3)
    assert fused and any("dense" in h.channels for h in fused)


def test_embedding_after_a_search_refreshes_the_index() -> None:
    # found by the retrieval benchmark: an index built before `kb embed` must pick up the new vectors
    kb = KnowledgeBase(get_database())
    kb.ingest_text(GUIDELINE, DocumentMeta(source="htn2.md", title="高血压基层诊疗指南"))
    assert all("dense" not in h.channels for h in kb.search("食盐", k=3))
    kb.embed(executor="inline")
    assert any("dense" in h.channels for h in kb.search("食盐", k=3))


def test_backend_choice_is_checked(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'kb.db'}")
    with pytest.raises(InvalidInput, match="PostgreSQL"):
        KnowledgeBase(db, backend="postgres")
    with pytest.raises(InvalidInput, match="unknown backend"):
        KnowledgeBase(db, backend="elastic")


def test_the_medical_dictionary_is_the_packs_vocabulary_and_off_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from medfusion.knowledge import tokens
    from medfusion.settings import get_settings

    words = tokens.medical_words()
    # ~1,700 since issue 15: the ICD-10 pack ships an extract (the full list is imported by the user)
    assert len(words) > 1500 and {"沙库巴曲缬沙坦", "射血分数降低的心力衰竭", "华法林", "光疗"} <= words
    tokens.signature.cache_clear()
    off = tokens.signature()
    monkeypatch.setenv("MEDFUSION_KB_MEDICAL_DICTIONARY", "true")
    get_settings.cache_clear()
    tokens.signature.cache_clear()
    on = tokens.signature()
    monkeypatch.delenv("MEDFUSION_KB_MEDICAL_DICTIONARY")
    get_settings.cache_clear()
    tokens.signature.cache_clear()
    assert off.endswith("dictionary none") and on != off and tokens.signature() == off


def test_a_changed_tokeniser_re_tokenises_stored_chunks_once(kb: KnowledgeBase) -> None:
    from sqlalchemy import select, update

    from medfusion.store.tables import KbChunkRow, KbMetaRow

    kb.ingest_text(GUIDELINE, DocumentMeta(source="a.md", title="A"))
    with kb.db.session() as session:
        session.execute(update(KbChunkRow).values(word_tokens="stale"))
        session.execute(update(KbMetaRow).values(value="an older tokeniser"))
    assert kb.search("氨氯地平", k=1, channels=("words",)) == []  # stale tokens no longer match
    fresh = KnowledgeBase(kb.db, backend=kb.sparse.name)
    assert fresh._retokenise_if_needed() == 0  # done once, on construction
    with kb.db.read_session() as session:
        assert "stale" not in set(session.execute(select(KbChunkRow.word_tokens)).scalars())
    assert fresh.search("氨氯地平", k=1, channels=("words",))[0].source == "a.md"
