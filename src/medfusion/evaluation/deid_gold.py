"""The synthetic population's planted identifiers (``medfusion synth population --plant-pii``) as a
de-identification gold set: every note of ``residents`` residents with its gold spans and the names known
from the record. Built here, not in ``privacy``, because nothing in the data layer imports ``synth``."""

from __future__ import annotations

from medfusion.privacy.gold import GoldDoc
from medfusion.synth import generate_record


def synthetic_notes(residents: int, seed: int = 77) -> list[GoldDoc]:
    docs: list[GoldDoc] = []
    for index in range(residents):
        record = generate_record(seed, index, plant_pii=True)
        for note in record["notes"]:
            docs.append((note["text"], note["pii_spans"], (record["patient"]["name"],)))
    return docs
