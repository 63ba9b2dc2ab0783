"""Code mapping for imports: a diagnosis or procedure that arrives without ICD-10 / ICD-9-CM-3 (SNOMED CT,
a local code, text only) gets the record's code from the cited SNOMED CT table first, then from the graph's
lexicon by its name — the coding displays and the concept text, resolved exactly (by name, code or synonym;
never by containment: 肺炎 is not 肺炎链球菌肺炎). Nothing found → ``None``; the importer keeps the item
``unmapped`` with every coding it came with.

The lexicon's codes come from the installed packs (``icd10-categories``, the national clinical versions when
imported, the starter pack's own entries): what is mapped is only as good as those, so the import result
names each mapping and the chart shows the source codings beside it for the clinician to confirm.
"""

from __future__ import annotations

from collections.abc import Callable

from medfusion.graph import Graph
from medfusion.graph.model import EntityType
from medfusion.interop.fhir import CodeMapper, TableMapper
from medfusion.interop.fhir.code_maps import Target
from medfusion.record.codes import check_icd9cm3, check_icd10

# target → the entity type named, the code systems whose codes serve, the record's shape check
_TARGETS: dict[str, tuple[EntityType, tuple[str, ...], Callable[[str], str]]] = {
    "icd10": (EntityType.disease, ("ICD-10",), check_icd10),
    "icd9cm3": (EntityType.procedure, ("ICD-9-CM-3",), check_icd9cm3),
}


class LexiconMapper:
    """:class:`~medfusion.interop.fhir.CodeMapper` over the SNOMED table, then the graph's lexicon."""

    def __init__(self, graph: Graph, table: CodeMapper | None = None) -> None:
        self.graph = graph
        self.table = table if table is not None else TableMapper()

    def __call__(self, target: Target, codings: list[dict[str, str]], text: str | None) -> str | None:
        found = self.table(target, codings, text)
        if found is not None:
            return found
        type_, systems, check = _TARGETS[target]
        names = [text, *(c.get("display") for c in codings)]
        for name in dict.fromkeys(n.strip() for n in names if n and n.strip()):
            entity = self.graph.lexicon.resolve_term(type_, name)
            if entity is None or not entity.code or not (entity.code_system or "").startswith(systems):
                continue
            try:
                return check(entity.code)
            except ValueError:
                continue
        return None
