"""The starter-diseases pack after the issue-15 clinical review: every correction is present and cited, the
front-door emergencies are full entries, every chunk has its pre-built vector (and no vector is stale),
and a rebuild embeds only what changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medfusion.errors import InvalidInput
from medfusion.graph import Graph
from medfusion.knowledge import embeddings, packs
from medfusion.knowledge.base import KnowledgeBase, chunk_id
from medfusion.knowledge.chunking import chunk_text
from medfusion.store.database import Database

PACK = packs.SHIPPED / "starter-diseases"
EMERGENCIES = {
    "主动脉夹层": "I71.0",
    "过敏性休克": "T78.2",
    "异位妊娠": "O00",
    "低血糖": "E16.2",
    "急性中毒": "T65.9",
    "婴幼儿发热": "R50.9",
}
REVIEWED = {
    "原发性高血压",
    "慢性心力衰竭",
    "慢性肾脏病",
    "幽门螺杆菌感染",
    "细菌性阴道病",
    "甲状腺结节",
    "痔",
    "痛风",
    "糖尿病酮症酸中毒",
    "年龄相关性白内障",
    "新生儿高胆红素血症",
    "阻塞性睡眠呼吸暂停",
    "慢性鼻窦炎",
}


def _entries() -> dict[str, packs.DiseaseEntry]:
    lines = (PACK / "diseases.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [packs.DiseaseEntry.model_validate_json(line) for line in lines if line.strip()]
    by_name = {e.name: e for e in entries}
    assert len(by_name) == len(entries), "disease names are unique"
    return by_name


def _cited(entry: packs.DiseaseEntry) -> str:
    return " ".join([entry.source, *entry.also_cited])


def test_every_entry_validates_cites_a_source_and_carries_its_review_status() -> None:
    entries = _entries()
    assert len(entries) == 105 + len(EMERGENCIES)
    for entry in entries.values():
        assert entry.source and entry.first_line and entry.symptoms and entry.checks and entry.department
        assert entry.review_status == "needs_clinician_review"  # nobody has signed an entry yet
    for name in REVIEWED | set(EMERGENCIES):
        note = entries[name].review_note
        assert note is not None and "issue 15" in note, name
    manifest = json.loads((PACK / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] == "1.1"  # newer than 1.0, so installed databases take the corrections


def test_a_misspelt_field_is_an_error_naming_its_line(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "manifest.json").write_text('{"name": "typo-pack", "version": "1.0", "licence": "CC0"}')
    row = {
        "name": "示例病",
        "department": "全科医学科",
        "symptoms": ["甲"],
        "checks": ["乙"],
        "first_line": "丙。",
        "source": "示例指南",
        "redflags": ["丁"],  # not a field: would silently vanish without extra="forbid"
    }
    (source / "diseases.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"diseases.jsonl:1"):
        packs.build(source, tmp_path / "out", embed=False)


def test_dka_holds_insulin_below_potassium_3_3_per_chinese_guideline_and_ada() -> None:
    dka = _entries()["糖尿病酮症酸中毒"]
    assert "血钾<3.3 mmol/L时先补钾、暂缓胰岛素，至血钾≥3.3 mmol/L再开始" in dka.first_line
    assert "中国高血糖危象诊断与治疗指南" in dka.source
    assert any("Kitabchi" in c and "2009" in c for c in dka.also_cited)
    assert any("Umpierrez" in c and "2024;47(8):1257-1275" in c for c in dka.also_cited)


def test_haemorrhoids_are_k64_since_icd10_2016() -> None:
    assert _entries()["痔"].icd10 == "K64"


def test_benign_thyroid_nodule_is_not_treated_with_levothyroxine() -> None:
    nodule = _entries()["甲状腺结节"]
    assert "左甲状腺素" not in nodule.drugs
    assert "不推荐用左甲状腺素（TSH抑制治疗）治疗良性结节" in nodule.first_line
    assert "甲状腺结节和分化型甲状腺癌诊治指南(第二版)" in nodule.source and "2023" in nodule.source


def test_citations_point_at_the_current_guidelines() -> None:
    e = _entries()
    heart = e["慢性心力衰竭"]
    assert "国家心力衰竭指南2023" in heart.source and "2018" not in _cited(heart)
    assert "SGLT2抑制剂" in heart.first_line and "β受体阻滞剂" in heart.first_line
    kidney = e["慢性肾脏病"]
    assert kidney.source.startswith("KDIGO 2024") and "2012" not in _cited(kidney)
    assert "SGLT2抑制剂" in kidney.first_line
    hp = e["幽门螺杆菌感染"]
    assert "第六次全国幽门螺杆菌感染处理共识报告" in hp.source and "2022" in hp.source
    assert "第五次" not in _cited(hp) and "高剂量双联" in hp.first_line
    assert "中华妇产科杂志 2021;56(1):3-6" in e["细菌性阴道病"].source
    pressure = e["原发性高血压"]
    assert "2024年修订版" in pressure.source and "2018" not in pressure.source
    assert "β受体阻滞剂" in pressure.first_line and "风险分层" in pressure.first_line
    gout = e["痛风"]
    assert (
        "≥480 μmol/L" in gout.first_line and "≥420 μmol/L" in gout.first_line
    )  # when to start lowering urate
    assert "预防发作" in gout.first_line and "3-6个月" in gout.first_line  # flare prophylaxis
    assert any("American College of Rheumatology" in c and "2020" in c for c in gout.also_cited)


def test_phototherapy_cpap_and_irrigation_are_procedures_not_drugs() -> None:
    e = _entries()
    drugs = {d for entry in e.values() for d in entry.drugs}
    assert not drugs & {"蓝光", "无创正压通气", "普拉洛芬", "生理盐水鼻腔冲洗"}
    assert "光疗" in e["新生儿高胆红素血症"].procedures
    assert "持续气道正压通气（CPAP）" in e["阻塞性睡眠呼吸暂停"].procedures
    assert "超声乳化白内障摘除联合人工晶状体植入术" in e["年龄相关性白内障"].procedures
    triples = list(packs.disease_triples(e["新生儿高胆红素血症"]))
    [phototherapy] = [t for t in triples if t.tail == "光疗"]
    assert phototherapy.tail_type == "procedure" and phototherapy.relation == "treated_by"


def test_front_door_emergencies_are_full_cited_entries() -> None:
    e = _entries()
    for name, code in EMERGENCIES.items():
        entry = e[name]
        assert entry.icd10 == code, name
        assert len(entry.symptoms) >= 4 and len(entry.checks) >= 3 and len(entry.red_flags) >= 3, name
        assert entry.first_actions and entry.first_line and "《" in entry.source, name
        text = packs.disease_document(entry, "starter-diseases").text
        assert "## 危险信号" in text and "## 首要处置" in text and entry.source in text
    assert "撕裂样胸痛" in e["主动脉夹层"].symptoms
    assert "肾上腺素肌内注射" in (e["过敏性休克"].first_actions or "")
    assert "年龄<3个月且体温≥38℃" in e["婴幼儿发热"].red_flags
    assert "NG143" in " ".join(e["婴幼儿发热"].also_cited)


def _chunk_ids(source: Path) -> set[str]:
    documents = packs._documents(packs._Pack(source))
    return {chunk_id(piece.text) for d in documents for piece in chunk_text(d.text)}


def _vectors(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "vectors.npz") as data:
        ids, vectors = list(data["ids"]), np.asarray(data["vectors"])
    return {str(i): vectors[n] for n, i in enumerate(ids)}


def test_every_chunk_has_a_prebuilt_vector_and_every_vector_a_chunk() -> None:
    vectors = _vectors(PACK)
    assert set(vectors) == _chunk_ids(PACK)
    assert {v.shape for v in vectors.values()} == {(384,)}
    manifest = json.loads((PACK / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["embedding_model"] == embeddings.MODEL


def test_rebuilding_in_place_embeds_only_the_changed_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "starter-diseases"
    shutil.copytree(PACK, folder)
    before = _vectors(folder)
    rows = [json.loads(line) for line in (folder / "diseases.jsonl").read_text(encoding="utf-8").splitlines()]
    rows[0]["first_line"] += "（测试改动）"
    (folder / "diseases.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    embedded: list[str] = []

    def fake(texts: list[str]) -> np.ndarray:
        embedded.extend(texts)
        unit: np.ndarray = np.full((len(texts), 384), 1 / np.sqrt(384), dtype=np.float32)
        return unit

    monkeypatch.setattr(embeddings, "embed_passages", fake)
    packs.build(folder, folder)
    after = _vectors(folder)
    assert set(after) == _chunk_ids(folder)
    added, dropped = set(after) - set(before), set(before) - set(after)
    assert added and len(embedded) == len(added) and all("测试改动" in t for t in embedded)
    assert dropped and all(i not in after for i in dropped)
    assert all(np.array_equal(after[i], before[i]) for i in set(after) & set(before))


def test_installed_pack_answers_for_the_new_emergency(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'starter.db'}")
    db.upgrade()
    info = packs.install(db, PACK)
    assert info.documents == len(_entries()) and embeddings.missing_chunk_ids(db) == []
    hits = KnowledgeBase(db).search("撕裂样胸痛", k=3)
    assert hits[0].source == "pack:starter-diseases/主动脉夹层"
    treated = Graph(db).queries.neighbours("新生儿高胆红素血症", limit=50)
    assert {(n.name, n.type) for n in treated if n.relation == "treated_by"} == {
        ("光疗", "procedure"),
        ("换血疗法", "procedure"),
    }
    db.dispose()
