"""The icd10-categories pack: what is shipped stays within what its LICENSE.txt documents (an attributed
extract of the categories our packs cite), and the importer builds the full pack from a user's own file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medfusion.errors import InvalidInput
from medfusion.graph import Graph
from medfusion.knowledge import icd10_pack, packs
from medfusion.settings import get_settings
from medfusion.store.database import Database
from tests.cli.test_cli import run

SHIPPED = packs.SHIPPED / "icd10-categories"
CODES = (
    "code\tdisease\nI10\t特发性(原发性)高血压\nI10.x00\t高血压\nK64\t痔和肛周静脉血栓形成\n"
    "K64.0\t一度痔\nA17+\t神经系统的结核\n\t（章标题行，无编码）\n"
)
CATALOGUE = (
    "code_lower_bound,code_upper_bound,level,catalog\n"
    "A00,B99,1,某些传染病和寄生虫病\nA15,A19,2,结核病\n"
    "I00,I99,1,循环系统疾病\nI10,I15,2,高血压病\nK00,K93,1,消化系统疾病\nK55,K64,2,肠的其他疾病\n"
)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    codes, catalogue = tmp_path / "codes.tsv", tmp_path / "catalogue.csv"
    codes.write_text(CODES, encoding="utf-8")
    catalogue.write_text(CATALOGUE, encoding="utf-8")
    return codes, catalogue


def test_shipped_extract_holds_only_the_categories_our_packs_cite_and_says_so() -> None:
    manifest = json.loads((SHIPPED / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["licence"].startswith("ICD-10 © WHO") and "not MIT" in manifest["licence"]
    licence = (SHIPPED / "LICENSE.txt").read_text(encoding="utf-8")
    assert "© World Health Organization" in licence and "import-icd10" in licence
    cited = {c[:3] for c in icd10_pack.codes_cited_by(packs.shipped())}
    with (SHIPPED / "vocabulary.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    categories = [r["code"] for r in rows if "-" not in r["code"]]
    sections = [r["code"] for r in rows if "-" in r["code"]]
    assert categories and set(categories) <= cited  # nothing beyond what LICENSE.txt documents
    assert f"the {len(categories)} three-character categories" in licence
    assert f"the {len(sections)} chapters and blocks" in licence


def test_importer_builds_and_installs_the_full_pack_from_a_users_file(tmp_path: Path) -> None:
    codes, catalogue = _files(tmp_path)
    result = icd10_pack.build(
        codes, tmp_path / "pack", catalogue=catalogue, licence="licensed to test", source="user:codes.tsv"
    )
    assert (result.codes, result.sections, result.skipped_rows) == (5, 6, 1)
    db = Database(f"sqlite:///{tmp_path / 'icd.db'}")
    db.upgrade()
    info = packs.install(db, tmp_path / "pack")
    assert (info.name, info.version, info.licence) == ("icd10-categories", "2.0", "licensed to test")
    graph = Graph(db)
    [haemorrhoids] = graph.lexicon.resolve("K64")
    chain = graph.queries.path("一度痔", "K00-K93 消化系统疾病")
    assert [e.tail.name for e in chain] == [haemorrhoids.name, "K55-K64 肠的其他疾病", "K00-K93 消化系统疾病"]
    assert graph.queries.path("神经系统的结核", "A15-A19 结核病")  # dagger codes are codes too
    db.dispose()


def test_a_bad_row_names_its_line_and_a_file_without_codes_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("编码,名称\nI10,特发性高血压\nI11,\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"bad.csv:3"):
        icd10_pack.read_codes(bad)
    bad.write_text("编码,名称\nI10,甲\nI10,乙\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"bad.csv:3"):
        icd10_pack.read_codes(bad)
    bad.write_text("id,label\nI10,甲\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="code"):
        icd10_pack.read_codes(bad)
    bad.write_text("code,name\n第一章,某些传染病\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no ICD-10 codes"):
        icd10_pack.read_codes(bad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30)), max_size=8))
def test_reading_any_code_file_never_crashes(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str]]
) -> None:
    path = tmp_path_factory.mktemp("codes") / "codes.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["code", "name"])
        writer.writerows(rows)
    try:
        listing = icd10_pack.read_codes(path)
    except InvalidInput:
        return
    assert listing.codes and all(icd10_pack._CODE.match(c) and t for c, t in listing.codes.items())


def test_cli_import_replaces_the_shipped_extract_which_never_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    codes, catalogue = _files(tmp_path)
    monkeypatch.setenv("MEDFUSION_AUTOLOAD_PACKS", "true")
    get_settings.cache_clear()
    code, out, _ = run(["kb", "pack", "list"], capsys)  # first use installs the shipped extract
    assert (
        code == 0
        and {"name": "icd10-categories", "version": "1.1"}.items()
        <= next(p for p in json.loads(out) if p["name"] == "icd10-categories").items()
    )
    code, out, _ = run(["kb", "pack", "import-icd10", str(codes), "--catalogue", str(catalogue)], capsys)
    assert code == 0 and json.loads(out)["installed"] == "installed" and json.loads(out)["codes"] == 5
    packs._installed_once.clear()  # a new process: the shipped packs are checked again
    code, out, _ = run(["kb", "pack", "list"], capsys)
    [icd] = [p for p in json.loads(out) if p["name"] == "icd10-categories"]
    assert icd["version"] == "2.0" and icd["licence"].startswith("user-supplied licensed copy")
    code, _, _ = run(["kb", "pack", "import-icd10", str(tmp_path / "missing.csv")], capsys)
    assert code != 0
