"""One importer per source format, each yielding :class:`Triple` s with their source.

- ``kg39_disease`` (39健康网 disease graph via zhihao-chen/QASystemOnMedicalGraph; no licence stated, so it is
  imported by the user from ``MEDFUSION_SHARED_DATA``, never shipped): ``relations.csv`` head,relation,tail.
- the documented triple CSV for users' own graphs:
  ``head,head_type,relation,tail,tail_type[,source,severity]``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from medfusion.errors import InvalidInput
from medfusion.graph.model import EntityType, Relation, Triple

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


def triple_csv(path: Path) -> Iterator[Triple]:
    """Users' own graphs; every row is validated and a bad row names its line."""
    with path.open(encoding="utf-8-sig") as fh:
        for number, row in enumerate(csv.DictReader(fh), start=2):
            try:
                yield Triple(
                    head=row["head"].strip(),
                    head_type=EntityType(row["head_type"].strip()),
                    relation=Relation(row["relation"].strip()),
                    tail=row["tail"].strip(),
                    tail_type=EntityType(row["tail_type"].strip()),
                    source=(row.get("source") or f"user:{path.name}").strip(),
                    severity=(row.get("severity") or None),
                )
            except (KeyError, ValueError) as exc:
                raise InvalidInput.for_field(
                    f"{path}:{number}", f"无效三元组 invalid triple: {exc}"
                ) from None
