"""Build the ``icd10-categories`` knowledge pack from an ICD-10 code list the user is licensed to use.

ICD-10 (codes, titles, chapter and block structure) is © World Health Organization; WHO does not permit
"the simple redistribution of the classification data" and licenses use in products separately. The
Chinese editions — 《疾病分类与代码》 GB/T 14396-2016 and the 国家临床版 2.0 / 医保版 2.0 code sets — are
issued by the national standards and health authorities under their own terms. MedFusion therefore ships
only a minimal extract (the categories its own packs cite, with their blocks and chapters, attributed — see
the pack's ``LICENSE.txt``), and this importer builds the full pack from the user's own copy:

``medfusion kb pack import-icd10 CODES.csv [--catalogue CATALOGUE.csv]``

- ``CODES``: CSV or TSV with a header; the code column is the first of ``code``/``编码``/``疾病编码``/
  ``类目编码``/``诊断编码``, the title column the first of ``disease``/``name``/``名称``/``疾病名称``/
  ``类目名称``/``诊断名称``. Three-character categories (``I10``) and finer codes (``I10.x00``, ``K64.0``) are
  both kept; a finer code is linked ``member_of`` its category when the category is in the file.
- ``CATALOGUE`` (optional): chapters and blocks as ``code_lower_bound,code_upper_bound,level,catalog``
  (level 1 chapter, 2 block — the layout of chaseliu/ICD-10-CN's ``disease_catalog``); a category is linked
  to the narrowest block containing it, a block to its chapter.

Every bad row names its ``file:line``; nothing valid is dropped silently (rows that are not ICD-10 codes are
counted and reported).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from medfusion.errors import InvalidInput

PACK = "icd10-categories"
IMPORTED_VERSION = "2.0"
SHIPPED_VERSION = "1.1"
_CODE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Za-z+]{1,8})?[*†+]?$")
_CATEGORY = re.compile(r"^[A-Z][0-9]{2}[*†+]?$")
_CODE_COLUMNS = ("code", "编码", "疾病编码", "类目编码", "诊断编码")
_NAME_COLUMNS = ("disease", "name", "名称", "疾病名称", "类目名称", "诊断名称")
_TRIPLE_HEADER = [
    "head",
    "head_type",
    "relation",
    "tail",
    "tail_type",
    "source",
    "severity",
    "review_status",
    "note",
]
_VOCABULARY_HEADER = ["name", "type", "code_system", "code", "synonyms"]


@dataclass(frozen=True)
class Section:
    """A chapter (level 1) or block (level 2): a code range with its title."""

    low: str
    high: str
    level: int
    title: str

    @property
    def name(self) -> str:
        return f"{self.low}-{self.high} {self.title}"

    def holds(self, category: str) -> bool:
        return self.low <= category[:3] <= self.high


@dataclass
class Icd10List:
    codes: dict[str, str]  # code → title, in file order
    sections: list[Section] = field(default_factory=list)
    skipped: int = 0  # rows whose code is not an ICD-10 code (headings, blank codes)


def _rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    if not path.is_file():
        raise InvalidInput.for_field(str(path), "文件不存在 no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    first = text.splitlines()[0] if text.strip() else ""
    dialect = "excel-tab" if first.count("\t") > first.count(",") else "excel"
    rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text), dialect=dialect), start=1) if row]
    if not rows:
        raise InvalidInput.for_field(str(path), "空文件 empty file")
    header = [c.strip().lower() for c in rows[0][1]]
    return header, rows[1:]


def _column(header: list[str], names: tuple[str, ...], path: Path, what: str) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise InvalidInput.for_field(f"{path}:1", f"找不到{what}列 no {what} column (one of {', '.join(names)})")


def read_codes(path: Path) -> Icd10List:
    header, rows = _rows(path)
    code_at = _column(header, _CODE_COLUMNS, path, "编码 code")
    name_at = _column(header, _NAME_COLUMNS, path, "名称 title")
    codes: dict[str, str] = {}
    skipped = 0
    for number, row in rows:
        code = row[code_at].strip().upper() if code_at < len(row) else ""
        title = row[name_at].strip() if name_at < len(row) else ""
        if not _CODE.match(code):
            skipped += 1
            continue
        if not title:
            raise InvalidInput.for_field(f"{path}:{number}", f"编码 {code} 缺少名称 (code without a title)")
        if len(title) > 180:
            raise InvalidInput.for_field(
                f"{path}:{number}", f"名称过长 title longer than 180 characters: {code}"
            )
        if codes.get(code, title) != title:
            raise InvalidInput.for_field(f"{path}:{number}", f"编码 {code} 重复且名称不同 (duplicate code)")
        codes[code] = title
    if not codes:
        raise InvalidInput.for_field(str(path), "没有有效的 ICD-10 编码 no ICD-10 codes found")
    return Icd10List(codes=codes, skipped=skipped)


def read_catalogue(path: Path) -> list[Section]:
    header, rows = _rows(path)
    at = {
        name: _column(header, (name,), path, name)
        for name in ("code_lower_bound", "code_upper_bound", "level", "catalog")
    }
    sections = []
    for number, row in rows:
        try:
            low, high = (
                row[at["code_lower_bound"]].strip().upper(),
                row[at["code_upper_bound"]].strip().upper(),
            )
            level, title = int(row[at["level"]]), row[at["catalog"]].strip()
        except (IndexError, ValueError):
            raise InvalidInput.for_field(f"{path}:{number}", "无效章节行 invalid catalogue row") from None
        if not (_CATEGORY.match(low) and _CATEGORY.match(high) and low <= high and level in (1, 2) and title):
            raise InvalidInput.for_field(f"{path}:{number}", "无效章节行 invalid catalogue row")
        sections.append(Section(low, high, level, title))
    return sections


def _parent(code: str, codes: dict[str, str], sections: list[Section]) -> str | None:
    """The entity a code is a member of: its category (finer codes), else its narrowest block, else its
    chapter."""
    if not _CATEGORY.match(code) and code[:3] in codes:
        return codes[code[:3]]
    for level in (2, 1):
        holding = [s for s in sections if s.level == level and s.holds(code)]
        if holding:
            return min(holding, key=lambda s: (s.high, s.low)).name
    return None


def restrict(listing: Icd10List, keep: Iterable[str]) -> Icd10List:
    """Only the categories of ``keep`` (any code; its three-character category is kept) and the blocks and
    chapters that hold them — the shipped extract."""
    wanted = {code.strip().upper()[:3] for code in keep if code and _CODE.match(code.strip().upper())}
    codes = {c: t for c, t in listing.codes.items() if c[:3] in wanted and _CATEGORY.match(c)}
    sections = [s for s in listing.sections if any(s.holds(c) for c in codes)]
    return Icd10List(codes=codes, sections=sections, skipped=listing.skipped)


def write_pack(
    listing: Icd10List, out: Path, *, version: str, licence: str, source: str, description: str
) -> dict[str, int]:
    """Write the pack folder (manifest, vocabulary, member_of triples); return what it holds."""
    out.mkdir(parents=True, exist_ok=True)
    vocabulary: list[list[str]] = []
    triples: list[list[str]] = []
    for section in sorted(listing.sections, key=lambda s: (s.level, s.low, s.high)):
        vocabulary.append([section.name, "disease", "ICD-10", f"{section.low}-{section.high}", section.title])
        if section.level == 2:
            chapter = _parent(section.low, {}, [s for s in listing.sections if s.level == 1])
            if chapter is not None:
                triples.append([section.name, "disease", "member_of", chapter, "disease", source, "", "", ""])
    for code, title in listing.codes.items():
        vocabulary.append([title, "disease", "ICD-10", code, ""])
        parent = _parent(code, listing.codes, listing.sections)
        if parent is not None and parent != title:
            triples.append([title, "disease", "member_of", parent, "disease", source, "", "", ""])
    for name, header, rows in (
        ("vocabulary.csv", _VOCABULARY_HEADER, vocabulary),
        ("triples.csv", _TRIPLE_HEADER, triples),
    ):
        with (out / name).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
    manifest = {
        "name": PACK,
        "version": version,
        "licence": licence,
        "description": description,
        "sources": [source],
        "review_status": "source_reproduced",
        "files": ["triples.csv", "vocabulary.csv"],
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return {"codes": len(listing.codes), "sections": len(listing.sections), "triples": len(triples)}


def codes_cited_by(folders: Iterable[Path]) -> set[str]:
    """The ICD-10 codes the given packs' diseases and vocabularies carry (what the shipped extract keeps)."""
    found: set[str] = set()
    for folder in folders:
        diseases = folder / "diseases.jsonl"
        if diseases.is_file():
            for line in diseases.read_text(encoding="utf-8").splitlines():
                if line.strip() and (code := json.loads(line).get("icd10")):
                    found.add(str(code))
        vocabulary = folder / "vocabulary.csv"
        if vocabulary.is_file() and folder.name != PACK:
            with vocabulary.open(encoding="utf-8-sig") as fh:
                found.update(
                    r["code"]
                    for r in csv.DictReader(fh)
                    if r.get("code_system") == "ICD-10" and r.get("code")
                )
    return found


@dataclass
class ImportResult:
    codes: int
    sections: int
    triples: int
    skipped_rows: int
    out: str
    installed: str | None  # the pack's install status, or None with --no-install


def build(
    codes_file: Path,
    out: Path,
    *,
    catalogue: Path | None = None,
    licence: str,
    source: str,
    version: str = IMPORTED_VERSION,
    only: Iterable[str] | None = None,
) -> ImportResult:
    """Read the user's code list (and catalogue), optionally restrict it to ``only``'s categories, and write
    the pack folder at ``out``."""
    listing = read_codes(codes_file)
    if catalogue is not None:
        listing.sections = read_catalogue(catalogue)
    if only is not None:
        listing = restrict(listing, only)
    scope = "extract: the categories MedFusion's packs cite" if only is not None else "full list"
    description = (
        f"ICD-10 编码与名称（{len(listing.codes)} 个编码，{len(listing.sections)} 个章/节），"
        "类目→节→章以 member_of 相连。"
        f"ICD-10 codes and titles ({scope}), linked code → category → block → chapter. Built by "
        "medfusion.knowledge.icd10_pack from the file named in sources."
    )
    counts = write_pack(
        listing, out, version=version, licence=licence, source=source, description=description
    )
    return ImportResult(
        codes=counts["codes"],
        sections=counts["sections"],
        triples=counts["triples"],
        skipped_rows=listing.skipped,
        out=str(out),
        installed=None,
    )
