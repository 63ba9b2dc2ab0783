"""k-anonymity over quasi-identifiers (Sweeney 2002; GB/T 37964-2019 §6 re-identification risk): group
records by their quasi-identifier values, report equivalence classes smaller than k, and suppress those
cells so every released combination describes at least k people."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel

from medfusion.privacy.operators import age_band
from medfusion.record.clinical_time import age_on, today_local
from medfusion.record.models import PatientChart

SUPPRESSED = "*"


class SmallClass(BaseModel):
    values: dict[str, str]
    count: int


class KAnonymityReport(BaseModel):
    k: int
    quasi_identifiers: list[str]
    records: int
    classes: int
    smallest_class: int
    is_k_anonymous: bool
    small_classes: list[SmallClass]
    records_in_small_classes: int
    released: list[dict[str, str]]  # the rows with small-class cells suppressed


def quasi_identifiers(chart: PatientChart, on: date | None = None) -> dict[str, str]:
    p = chart.patient
    return {
        "age_band": age_band(age_on(p.birth_date, on or today_local())) if p.birth_date else "",
        "sex": p.sex.value,
        "district": (p.address.district or "") if p.address else "",
    }


def k_anonymity(rows: Sequence[dict[str, str]], quasi: Sequence[str], k: int) -> KAnonymityReport:
    keys = [tuple(row.get(q, "") for q in quasi) for row in rows]
    sizes = Counter(keys)
    small = {key: n for key, n in sizes.items() if n < k}
    released = [
        {q: (SUPPRESSED if key in small else value) for q, value in zip(quasi, key, strict=True)}
        for key in keys
    ]
    return KAnonymityReport(
        k=k,
        quasi_identifiers=list(quasi),
        records=len(rows),
        classes=len(sizes),
        smallest_class=min(sizes.values()) if sizes else 0,
        is_k_anonymous=not small,
        small_classes=[
            SmallClass(values=dict(zip(quasi, key, strict=True)), count=n)
            for key, n in sorted(small.items(), key=lambda kv: kv[1])
        ],
        records_in_small_classes=sum(small.values()),
        released=released,
    )
