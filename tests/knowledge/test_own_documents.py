"""Issue 15: a user's own documents must not be crowded out of search by the shipped packs' pre-built
vectors — a chunk without a vector yet is fused over the channels it is eligible for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medfusion.knowledge import embeddings
from medfusion.knowledge.base import KnowledgeBase, SearchFilters
from medfusion.knowledge.documents import Authority, DocType, DocumentMeta
from medfusion.knowledge.fusion import ordered, rrf, rrf_eligible
from medfusion.store.database import Database
from tests.cli.test_cli import run

OWN = {
    "own:htn-home": "高血压患者居家自测血压：每天早晚各测一次，测前静坐5分钟，连续测量7天，"
    "记录血压日记复诊时带给医生。",
    "own:dm-foot": "糖尿病患者每天检查双脚有无破损、水泡，洗脚水温不超过37度，鞋袜宽松，发现伤口及时就医。",
}
QUERIES = {"高血压患者在家怎么自测血压": "own:htn-home", "糖尿病患者脚要怎么护理": "own:dm-foot"}


def _ingest_own(kb: KnowledgeBase) -> None:
    for source, text in OWN.items():
        kb.ingest_text(
            text, DocumentMeta(source=source, title=source, doc_type=DocType.faq, authority=Authority.general)
        )


def test_own_documents_without_vectors_are_found_among_the_packs(packed_db: Database) -> None:
    kb = KnowledgeBase(packed_db)
    _ingest_own(kb)
    assert embeddings.missing_chunk_ids(packed_db)  # the user's chunks have no vector; the packs' all do
    for query, source in QUERIES.items():
        hits = kb.search(query, k=5)
        assert any("dense" in h.channels for h in hits)  # the dense channel ran (the packs' vectors)
        assert source in [h.source for h in hits], query
        assert hits[0].source == source and hits[0].channels == {"words": 1, "bigrams": 1}


def test_source_filter_separates_own_documents_from_packs(packed_db: Database) -> None:
    kb = KnowledgeBase(packed_db)
    _ingest_own(kb)
    own = kb.search("高血压 血压", k=10, filters=SearchFilters(source="own"))
    assert own and all(h.source.startswith("own:") for h in own)
    pack = kb.search("高血压 血压", k=10, filters=SearchFilters(source="pack:starter-diseases"))
    assert pack and all(h.source.startswith("pack:starter-diseases") for h in pack)
    assert kb.search("高血压", k=3, filters=SearchFilters(source="pack:no-such-pack")) == []
    everything = kb.search("高血压 血压", k=10, filters=SearchFilters(source="all"))
    assert {h.source[:4] for h in everything} == {"own:", "pack"}
    with pytest.raises(ValueError):
        SearchFilters(source="mine")


def test_cli_ingest_embeds_by_default_and_no_embed_defers(
    packed_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "own"
    folder.mkdir()
    (folder / "htn.txt").write_text(OWN["own:htn-home"], encoding="utf-8")
    (folder / "dm.txt").write_text(OWN["own:dm-foot"], encoding="utf-8")
    code, _, err = run(["kb", "ingest", str(folder / "dm.txt"), "--no-embed"], capsys)
    assert code == 0 and "kb embed" in err and len(embeddings.missing_chunk_ids(packed_db)) == 1
    code, _, err = run(["kb", "ingest", str(folder), "--executor", "inline"], capsys)
    assert code == 0 and "embedded 2 chunks" in err  # the deferred one too: it was ingested again
    assert embeddings.missing_chunk_ids(packed_db) == []
    code, out, _ = run(["kb", "search", "高血压患者在家怎么自测血压", "--source", "own", "--json"], capsys)
    hits = json.loads(out)
    assert code == 0 and hits[0]["source"].endswith("htn.txt") and "dense" in hits[0]["channels"]
    assert all(not h["source"].startswith("pack:") for h in hits)


_RANKING = st.lists(st.sampled_from([f"c{i}" for i in range(12)]), max_size=10, unique=True)


@given(words=_RANKING, bigrams=_RANKING, dense=_RANKING)
def test_eligible_fusion_is_plain_rrf_when_every_chunk_has_a_vector(
    words: list[str], bigrams: list[str], dense: list[str]
) -> None:
    plain = rrf([(dense, 3.0), (words, 1.0), (bigrams, 1.0)])
    fair = rrf_eligible([(dense, 3.0, None), (words, 1.0, None), (bigrams, 1.0, None)])
    assert fair == plain
    everyone = set(words) | set(bigrams) | set(dense)
    assert rrf_eligible([(dense, 3.0, everyone), (words, 1.0, None), (bigrams, 1.0, None)]) == plain


def test_a_chunk_without_a_vector_counts_as_doing_in_dense_what_it_did_elsewhere() -> None:
    # "new" has no vector: first in both sparse channels, it ties with a chunk first in all three
    fused = rrf_eligible(
        [(["old"], 3.0, {"old", "other"}), (["new", "old"], 1.0, None), (["new"], 1.0, None)]
    )
    assert fused["new"] == pytest.approx(5 / 61)
    assert fused["old"] == pytest.approx(3 / 61 + 1 / 62) and ordered(fused) == ["new", "old"]
    # and a vectored chunk the dense channel passed over is not rescaled
    assert rrf_eligible([(["x"], 3.0, {"x", "y"}), (["y"], 1.0, None)])["y"] == pytest.approx(1 / 61)
