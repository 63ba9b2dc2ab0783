"""Conflict check against the shipped drug-safety pack: planted conflicts are all found (with the path
that explains them), clean plans raise nothing, reassurance is a note, unknown terms are reported."""

from __future__ import annotations

import json

import pytest

from medfusion.graph import Graph
from medfusion.graph.conflicts import ConflictChecker, ConflictReport
from medfusion.graph.model import Relation
from medfusion.graph.store import GraphStore
from medfusion.knowledge import packs
from medfusion.settings import get_settings
from medfusion.store.database import Database
from tests.cli.test_cli import run


@pytest.fixture
def checker(db: Database) -> ConflictChecker:
    packs.install(db, packs.SHIPPED / "drug-safety")
    return ConflictChecker(Graph(db))


def _kinds(report: ConflictReport) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(c.type, c.severity.value, tuple(c.items)) for c in report.conflicts}


# (conditions, allergies, drugs, procedures) → the conflict that must be found: type, severity, items
PLANTED = [
    ((), (), ("华法林", "布洛芬"), (), ("drug_interaction", "major")),
    ((), (), ("warfarin", "aspirin"), (), ("drug_interaction", "major")),
    ((), (), ("辛伐他汀", "克拉霉素"), (), ("drug_interaction", "contraindicated")),
    ((), (), ("C10AA01", "伊曲康唑"), (), ("drug_interaction", "contraindicated")),
    ((), (), ("莫西沙星", "胺碘酮"), (), ("drug_interaction", "major")),
    ((), (), ("舍曲林", "曲马多"), (), ("drug_interaction", "major")),
    ((), (), ("利奈唑胺", "艾司西酞普兰"), (), ("drug_interaction", "contraindicated")),
    ((), (), ("西地那非", "硝酸甘油"), (), ("drug_interaction", "contraindicated")),
    ((), (), ("依那普利", "螺内酯"), (), ("drug_interaction", "major")),
    ((), (), ("氯吡格雷", "奥美拉唑"), (), ("drug_interaction", "moderate")),
    ((), (), ("硫唑嘌呤", "别嘌醇"), (), ("drug_interaction", "major")),
    ((), (), ("二甲双胍",), ("增强CT",), ("drug_interaction", "moderate")),
    ((), (), ("利伐沙班",), ("腰穿",), ("drug_interaction", "major")),
    (("哮喘",), (), ("普萘洛尔",), (), ("contraindication", "contraindicated")),
    (("支气管哮喘",), (), ("美托洛尔",), (), ("contraindication", "caution")),
    (("妊娠",), (), ("依那普利",), (), ("contraindication", "contraindicated")),
    (("妊娠20周及以上",), (), ("布洛芬",), (), ("contraindication", "major")),
    (("CKD 4期",), (), ("二甲双胍",), (), ("contraindication", "contraindicated")),
    (("N18.5",), (), ("达比加群",), (), ("contraindication", "contraindicated")),
    (("HFrEF",), (), ("地尔硫䓬",), (), ("contraindication", "contraindicated")),
    (("长QT综合征",), (), ("阿奇霉素",), (), ("contraindication", "contraindicated")),
    (("植入非MRI兼容心脏起搏器",), (), (), ("增强MRI",), ("contraindication", "contraindicated")),
    (("G6PD缺乏症",), (), ("伯氨喹",), (), ("contraindication", "contraindicated")),
    ((), ("青霉素类",), ("阿莫西林",), (), ("allergy", "high")),
    ((), ("阿莫西林",), ("氨苄西林",), (), ("cross_reactivity", "high")),
    ((), ("青霉素",), ("头孢曲松",), (), ("cross_reactivity", "low")),
    ((), ("阿莫西林",), ("头孢羟氨苄",), (), ("cross_reactivity", "moderate")),
    ((), ("头孢他啶",), ("氨曲南",), (), ("cross_reactivity", "moderate")),
    ((), ("阿司匹林",), ("双氯芬酸",), (), ("cross_reactivity", "high")),
    ((), ("碘对比剂",), (), ("冠状动脉造影",), ("allergy", "high")),
]


@pytest.mark.parametrize(("conditions", "allergies", "drugs", "procedures", "expected"), PLANTED)
def test_every_planted_conflict_is_found_with_its_path(
    checker: ConflictChecker,
    conditions: tuple[str, ...],
    allergies: tuple[str, ...],
    drugs: tuple[str, ...],
    procedures: tuple[str, ...],
    expected: tuple[str, str],
) -> None:
    report = checker.check(conditions, allergies, drugs, procedures)
    assert not report.unresolved
    assert [(c.type, c.severity.value) for c in report.conflicts] == [expected]
    conflict = report.conflicts[0]
    assert conflict.source and conflict.status == "needs_clinician_confirmation"
    assert len(conflict.items) == 2 and set(conflict.items) <= {*conditions, *allergies, *drugs, *procedures}
    if conflict.type != "allergy" or conflict.path:
        assert conflict.path and conflict.explanation
        relations = {step.relation for step in conflict.path}
        assert relations & {
            "interacts_with",
            "contraindicated_in",
            "cross_reacts_with",
            "member_of",
            "uses_agent",
        }


def test_a_class_rule_reaches_members_through_the_path(checker: ConflictChecker) -> None:
    report = checker.check(drugs=["华法林", "布洛芬"])
    path = [(s.head, s.relation, s.tail) for s in report.conflicts[0].path]
    assert ("布洛芬", "member_of", "非选择性非甾体抗炎药") in path
    assert ("华法林", "member_of", "维生素K拮抗剂") in path
    assert any(r == "interacts_with" for _, r, _ in path)
    assert report.conflicts[0].review_status == "needs_clinician_review"


def test_the_most_specific_rule_wins(checker: ConflictChecker) -> None:
    # amoxicillin ↔ cefadroxil share a side chain (moderate): more specific than the class rule (low)
    side_chain = checker.check(allergies=["阿莫西林"], drugs=["头孢羟氨苄"]).conflicts[0]
    assert side_chain.severity.value == "moderate" and len(side_chain.path) == 1
    assert "侧链" in (side_chain.note or "")
    # a dissimilar side chain falls back to the class rule
    assert checker.check(allergies=["阿莫西林"], drugs=["头孢唑林"]).conflicts[0].severity.value == "low"


CLEAN = [
    ((), (), ("氨氯地平_不存在",), ()),
    (("高血压_不存在",), (), (), ()),
    (("支气管哮喘",), (), ("对乙酰氨基酚",), ()),
    (("妊娠",), (), ("对乙酰氨基酚", "阿莫西林"), ()),
    ((), (), ("瑞舒伐他汀", "克拉霉素"), ()),
    ((), (), ("阿托伐他汀", "泮托拉唑"), ()),
    ((), (), ("氯吡格雷", "泮托拉唑"), ()),
    ((), (), ("美托洛尔", "阿托伐他汀", "阿司匹林"), ()),
    ((), (), ("二甲双胍", "依那普利"), ("磁共振检查",)),
    ((), ("磺胺类抗菌药",), ("氢氯噻嗪", "阿托伐他汀"), ()),
    (("慢性阻塞性肺疾病",), (), ("比索洛尔",), ()),
    ((), ("青霉素",), ("阿奇霉素",), ()),
]


@pytest.mark.parametrize(("conditions", "allergies", "drugs", "procedures"), CLEAN)
def test_clean_plans_raise_no_alarm(
    checker: ConflictChecker,
    conditions: tuple[str, ...],
    allergies: tuple[str, ...],
    drugs: tuple[str, ...],
    procedures: tuple[str, ...],
) -> None:
    assert checker.check(conditions, allergies, drugs, procedures).conflicts == []


def test_reassurance_is_a_note_not_an_alert(checker: ConflictChecker) -> None:
    report = checker.check(allergies=["复方磺胺甲噁唑"], drugs=["呋塞米", "塞来昔布"])
    assert report.conflicts == []
    assert {(n.items[1], n.severity.value) for n in report.notes} == {
        ("呋塞米", "none"),
        ("塞来昔布", "none"),
    }
    carbapenem = checker.check(allergies=["青霉素"], drugs=["美罗培南", "氨曲南"])
    assert carbapenem.conflicts == [] and {n.severity.value for n in carbapenem.notes} == {
        "negligible",
        "none",
    }
    seafood = checker.check(allergies=["海鲜"], procedures=["增强CT"])
    assert seafood.conflicts == [] and seafood.notes[0].path[-1].relation in {
        "cross_reacts_with",
        "uses_agent",
    }


def test_unknown_terms_are_reported_not_dropped(checker: ConflictChecker) -> None:
    report = checker.check(conditions=["不存在的病"], drugs=["华法林", "某新药"])
    assert {(u.term, u.role) for u in report.unresolved} == {("不存在的病", "condition"), ("某新药", "drug")}
    assert [r.term for r in report.resolved] == ["华法林"]


def test_seed_set_size_sources_and_review(db: Database) -> None:
    info = packs.install(db, packs.SHIPPED / "drug-safety")
    assert info.status == "installed" and info.triples > 300
    counts = GraphStore(db).counts()["relations"]
    rules = sum(
        counts.get(r.value, 0)
        for r in (
            Relation.interacts_with,
            Relation.cross_reacts_with,
            Relation.contraindicated_in,
            Relation.not_with_food,
        )
    )
    assert rules >= 150
    edges = GraphStore(db).edges(
        [Relation.interacts_with, Relation.contraindicated_in, Relation.cross_reacts_with]
    )
    assert all(e.source and e.severity and e.review_status == "needs_clinician_review" for e in edges)
    assert packs.install(db, packs.SHIPPED / "drug-safety").status == "unchanged"


def test_cli_check_json_loads_the_shipped_pack_on_first_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDFUSION_AUTOLOAD_PACKS", "true")
    get_settings.cache_clear()
    code, out, _ = run(
        [
            "graph",
            "check",
            "--conditions",
            "哮喘，妊娠",
            "--allergies",
            "青霉素",
            "--drugs",
            "普萘洛尔,华法林,布洛芬,头孢曲松",
            "--json",
        ],
        capsys,
    )
    report = json.loads(out)
    assert code == 0
    types = {(c["type"], tuple(c["items"])) for c in report["conflicts"]}
    assert ("contraindication", ("普萘洛尔", "哮喘")) in types
    assert ("contraindication", ("华法林", "妊娠")) in types
    assert ("drug_interaction", ("华法林", "布洛芬")) in types or (
        "drug_interaction",
        ("布洛芬", "华法林"),
    ) in types
    assert ("cross_reactivity", ("青霉素", "头孢曲松")) in types
    assert all(c["path"] and c["source"] for c in report["conflicts"])
    code, _, err = run(["graph", "check", "--conditions", "哮喘"], capsys)
    assert code != 0 and "--drugs" in err
