"""One importer per source format, each yielding :class:`Triple` s with their source.

- ``kg39_disease`` (39健康网 disease graph via zhihao-chen/QASystemOnMedicalGraph; no licence stated, so it is
  imported by the user from ``MEDFUSION_SHARED_DATA``, never shipped): ``relations.csv`` head,relation,tail.
- the documented triple CSV for users' own graphs (and the shipped interaction seed set):
  ``head,head_type,relation,tail,tail_type[,source,severity,review_status,note]``; JSON Lines with the same
  keys; and the vocabulary CSV ``name,type,code_system,code,synonyms`` (synonyms ``|``-separated).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from medfusion.errors import InvalidInput
from medfusion.graph.model import EntityCode, EntityType, Relation, Severity, Triple

T = TypeVar("T")

KG39_SOURCE = "kg39_disease (39健康网, zhihao-chen/QASystemOnMedicalGraph@384370d)"
_KG39 = {
    "HAS_SYMPTOM": (Relation.has_symptom, EntityType.symptom),
    "HAS_CHECK": (Relation.needs_check, EntityType.check),
    "HAS_DRUG": (Relation.treated_by, EntityType.drug),
    "DEPARTMENT_IS": (Relation.belongs_to_department, EntityType.department),
    "HAS_COMPLICATION": (Relation.has_complication, EntityType.disease),
    "PART_IS": (Relation.located_in, EntityType.body_part),
}


def kg39(folder: Path, limit: int | None = None) -> Iterator[Triple]:
    path = folder / "relations.csv"
    if not path.exists():
        raise InvalidInput.for_field(str(path), "找不到 kg39 关系文件 relations.csv not found")
    with path.open(encoding="utf-8") as fh:
        for number, row in enumerate(csv.DictReader(fh)):
            if limit is not None and number >= limit:
                return
            head, relation, tail = row["head"].strip(), row["relation"].strip(), row["tail"].strip()
            if not head or not tail:
                continue
            if relation == "ALIAS_IS":
                # the alias points at the preferred disease name
                yield Triple(
                    head=tail,
                    head_type=EntityType.disease,
                    relation=Relation.synonym_of,
                    tail=head,
                    tail_type=EntityType.disease,
                    source=KG39_SOURCE,
                )
            elif relation in _KG39:
                kind, tail_type = _KG39[relation]
                yield Triple(
                    head=head,
                    head_type=EntityType.disease,
                    relation=kind,
                    tail=tail,
                    tail_type=tail_type,
                    source=KG39_SOURCE,
                )


def _triple(row: dict[str, str], default_source: str) -> Triple:
    def text(key: str) -> str:
        return str(row.get(key) or "").strip()

    return Triple(
        head=text("head"),
        head_type=EntityType(text("head_type")),
        relation=Relation(text("relation")),
        tail=text("tail"),
        tail_type=EntityType(text("tail_type")),
        source=text("source") or default_source,
        severity=Severity(text("severity")) if text("severity") else None,
        review_status=text("review_status") or None,
        note=text("note") or None,
    )


def _validated(
    path: Path, rows: Iterable[tuple[int, Any]], parse: Callable[[Any], T], what: str
) -> Iterator[T]:
    """Parse numbered rows; the first bad one is an error naming ``file:line``."""
    for number, row in rows:
        try:
            yield parse(row)
        except (KeyError, ValueError) as exc:
            raise InvalidInput.for_field(f"{path}:{number}", f"{what}: {exc}") from None


def _csv_rows(fh: IO[str]) -> Iterator[tuple[int, dict[str, str]]]:
    return enumerate(csv.DictReader(fh), start=2)  # line 1 is the header


def triple_csv(path: Path) -> Iterator[Triple]:
    """Users' own graphs; every row is validated and a bad row names its line."""
    with path.open(encoding="utf-8-sig") as fh:
        yield from _validated(
            path, _csv_rows(fh), lambda row: _triple(row, f"user:{path.name}"), "无效三元组 invalid triple"
        )


def _json_object(line: str) -> dict[str, Any]:
    row = json.loads(line)
    if not isinstance(row, dict):
        raise ValueError("each line must be a JSON object")
    return row


def triple_jsonl(path: Path) -> Iterator[Triple]:
    """The same triple format as JSON Lines, one object per line."""
    with path.open(encoding="utf-8-sig") as fh:
        lines = ((number, line) for number, line in enumerate(fh, start=1) if line.strip())
        yield from _validated(
            path,
            lines,
            lambda line: _triple(_json_object(line), f"user:{path.name}"),
            "无效三元组 invalid triple",
        )


def _entity_code(row: dict[str, str]) -> EntityCode:
    return EntityCode(
        name=row["name"].strip(),
        type=EntityType(row["type"].strip()),
        code_system=(row.get("code_system") or "").strip() or None,
        code=(row.get("code") or "").strip() or None,
        synonyms=[s.strip() for s in (row.get("synonyms") or "").split("|") if s.strip()],
    )


def vocabulary_csv(path: Path) -> Iterator[EntityCode]:
    """Entity codes and synonyms: ``name,type,code_system,code,synonyms``."""
    with path.open(encoding="utf-8-sig") as fh:
        yield from _validated(path, _csv_rows(fh), _entity_code, "无效词表行 invalid vocabulary row")


MEDICAL_KG_SOURCE = "medical_kg (liuhuanyong/QASystemOnMedicalKG@643eccb, 寻医问药)"
_MEDICAL_KG_DICTS = {
    "disease": EntityType.disease,
    "symptom": EntityType.symptom,
    "drug": EntityType.drug,
    "check": EntityType.check,
    "food": EntityType.food,
    "department": EntityType.department,
}
_MEDICAL_KG_COLUMNS = {
    "症状": (Relation.has_symptom, EntityType.symptom),
    "检查": (Relation.needs_check, EntityType.check),
    "科室": (Relation.belongs_to_department, EntityType.department),
    "并发症": (Relation.has_complication, EntityType.disease),
    "常用药物": (Relation.treated_by, EntityType.drug),
}


def _require(path: Path) -> Path:
    if not path.exists():
        raise InvalidInput.for_field(str(path), "找不到数据文件 data file not found")
    return path


def medical_kg_vocabulary(folder: Path) -> Iterator[EntityCode]:
    """The entity dictionaries (``dict/*.txt``, one name per line); producers and negation words are not
    entities of ours and are left out."""
    for stem, kind in _MEDICAL_KG_DICTS.items():
        with _require(folder / "dict" / f"{stem}.txt").open(encoding="utf-8") as fh:
            for line in fh:
                name = line.strip()
                if name and len(name) <= 200:
                    yield EntityCode(name=name, type=kind)


def medical_kg_triples(folder: Path) -> Iterator[Triple]:
    """The 21-disease structured sample: symptoms, checks, departments, complications and usual drugs."""
    with _require(folder / "medical_data_sample.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            disease = (row.get("疾病名称") or "").strip()
            if not disease:
                continue
            for column, (relation, kind) in _MEDICAL_KG_COLUMNS.items():
                for tail in {t.strip() for t in (row.get(column) or "").split(",") if t.strip()}:
                    yield Triple(
                        head=disease,
                        head_type=EntityType.disease,
                        relation=relation,
                        tail=tail[:200],
                        tail_type=kind,
                        source=MEDICAL_KG_SOURCE,
                    )


ICD10_SOURCE = "icd10_cn_categories (chaseliu/ICD-10-CN@a12ed01; ICD-10 © WHO, see its pack LICENSE.txt)"
ICD9CM3_SOURCE = "icd9cm3_cn_procedures (wangle1218/KBQA-for-Diagnosis@6890d7f)"
DRG_SOURCE = "chs_drg_catalogue derived code lists (bolingjack/DRG-GROUP@9f63f3b)"


def _code_rows(path: Path, code: str, name: str) -> Iterator[tuple[str, str]]:
    with _require(path).open(encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            value, label = (row.get(code) or "").strip(), (row.get(name) or "").strip()
            if value and label:
                yield value, label[:200]


def icd10_categories(folder: Path) -> Iterator[EntityCode]:
    """1,586 three-character ICD-10 categories with their Chinese names."""
    for code, name in _code_rows(folder / "disease.csv", "code", "disease"):
        yield EntityCode(name=name, type=EntityType.disease, code_system="ICD-10", code=code)


def icd9cm3_procedures(folder: Path) -> Iterator[EntityCode]:
    """ICD-9-CM-3 categories and detail codes (two-digit chapters are headings, not procedures)."""
    for code, name in _code_rows(folder / "code.csv", "code", "name"):
        if "." in code:
            yield EntityCode(name=name, type=EntityType.procedure, code_system="ICD-9-CM-3", code=code)


def drg_codes(folder: Path) -> Iterator[EntityCode]:
    """The CHS-DRG catalogue's derived diagnosis (ICD-10 医保版 2.0) and operation (ICD-9-CM-3 医保版 2.0)
    code lists."""
    for code, name in _code_rows(folder / "derived_diagnosis_codes.csv", "diagnosis_code", "diagnosis_name"):
        yield EntityCode(name=name, type=EntityType.disease, code_system="ICD-10-CHS", code=code)
    for code, name in _code_rows(folder / "derived_operation_codes.csv", "operation_code", "operation_name"):
        yield EntityCode(name=name, type=EntityType.procedure, code_system="ICD-9-CM-3-CHS", code=code)
