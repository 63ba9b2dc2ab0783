"""Chinese personal names for synthetic residents, drawn from the reference lists in
:mod:`medfusion.record.names` (surnames by frequency, given names by era and sex)."""

from __future__ import annotations

import random

from medfusion.record.names import (
    FEMALE_MID,
    FEMALE_OLD,
    FEMALE_YOUNG,
    MALE_MID,
    MALE_OLD,
    MALE_YOUNG,
    SURNAMES,
)

_SURNAME_CHOICES = [s for s, _ in SURNAMES]
_SURNAME_WEIGHTS = [w for _, w in SURNAMES]


def pick_name(rng: random.Random, sex: str, birth_year: int) -> str:
    surname = rng.choices(_SURNAME_CHOICES, weights=_SURNAME_WEIGHTS)[0]
    if birth_year < 1960:
        pool = MALE_OLD if sex == "male" else FEMALE_OLD
    elif birth_year < 1995:
        pool = MALE_MID if sex == "male" else FEMALE_MID
    else:
        pool = MALE_YOUNG if sex == "male" else FEMALE_YOUNG
    return surname + rng.choice(pool)


def pick_surname(rng: random.Random) -> str:
    return rng.choices(_SURNAME_CHOICES, weights=_SURNAME_WEIGHTS)[0]
