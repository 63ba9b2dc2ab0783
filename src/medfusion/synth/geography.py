"""Where synthetic residents live and were born: picks from Shanghai's districts, roads and migrants' birth
regions (the reference data and its sources are in :mod:`medfusion.record.districts`)."""

from __future__ import annotations

import random

from medfusion.record.districts import DISTRICTS, FIRST_ISSUE_YEAR, MIGRANT_REGIONS, District


def pick_district(rng: random.Random) -> District:
    return rng.choices(DISTRICTS, weights=[d.weight for d in DISTRICTS])[0]


def pick_birth_region(rng: random.Random, district: District, born_in_shanghai: bool, birth_year: int) -> str:
    issued = max(birth_year, FIRST_ISSUE_YEAR)
    if born_in_shanghai:
        return district.code_at(issued)
    usable = [(code, weight) for code, weight, since in MIGRANT_REGIONS if since <= issued]
    return rng.choices([c for c, _ in usable], weights=[w for _, w in usable])[0]


def pick_street_address(rng: random.Random, district: District) -> str:
    road = rng.choice(district.roads)
    number = rng.randint(1, 2000)
    room = f"{rng.randint(1, 30)}{rng.randint(1, 4):02d}室"
    if rng.random() < 0.6:
        return f"{road}{rng.randint(1, 1200)}弄{rng.randint(1, 60)}号{room}"
    return f"{road}{number}号{room}"
