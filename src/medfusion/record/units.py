"""Units we accept in the record, each mapped to its UCUM code for FHIR ``Quantity``.

Chinese clinical practice writes SI units (mmol/L, μmol/L) and local count words (片, 粒, 支); UCUM
(https://ucum.org, version 2.1) is what FHIR expects in ``Quantity.code``. Anything outside this table is
rejected instead of guessed, because a mis-read unit is a dosing or interpretation error.
"""

from __future__ import annotations

from types import MappingProxyType

from medfusion.errors import UnknownUnit

# display unit → UCUM code
_UNITS: dict[str, str] = {
    "mmHg": "mm[Hg]",
    "次/分": "/min",
    "/min": "/min",
    "℃": "Cel",
    "°C": "Cel",
    "%": "%",
    "mmol/L": "mmol/L",
    "μmol/L": "umol/L",
    "umol/L": "umol/L",
    "mg/dL": "mg/dL",
    "g/L": "g/L",
    "g/dL": "g/dL",
    "mg/L": "mg/L",
    "ng/mL": "ng/mL",
    "pg/mL": "pg/mL",
    "U/L": "U/L",
    "IU/L": "[IU]/L",
    "mIU/L": "m[IU]/L",
    "×10^9/L": "10*9/L",
    "×10^12/L": "10*12/L",
    "fL": "fL",
    "pg": "pg",
    "s": "s",
    "kg": "kg",
    "g": "g",
    "mg": "mg",
    "μg": "ug",
    "ug": "ug",
    "cm": "cm",
    "m": "m",
    "kg/m²": "kg/m2",
    "kg/m2": "kg/m2",
    "mL": "mL",
    "L": "L",
    "mL/min/1.73m²": "mL/min/{1.73_m2}",
    "IU": "[IU]",
    "U": "U",
    "片": "{tbl}",
    "粒": "{cap}",
    "支": "{ampule}",
    "袋": "{bag}",
    "喷": "{puff}",
    "滴": "[drp]",
    "mmol/mol": "mmol/mol",
    "mL/min": "mL/min",
    "mPa·s": "mPa.s",
    "ratio": "1",
}

KNOWN_UNITS = MappingProxyType(_UNITS)
_BY_UCUM: dict[str, str] = {}
for _display, _code in _UNITS.items():
    _BY_UCUM.setdefault(_code, _display)


def ucum_code(unit: str, field: str = "unit") -> str:
    """UCUM code for a unit we know; raises :class:`UnknownUnit` naming ``field`` otherwise."""
    try:
        return _UNITS[unit]
    except KeyError:
        raise UnknownUnit.for_field(field, f"未知单位 unknown unit {unit!r}", code="unknown_unit") from None


def display_unit(ucum: str, field: str = "unit") -> str:
    """Our display unit for a UCUM code (inverse of :func:`ucum_code`)."""
    try:
        return _BY_UCUM[ucum]
    except KeyError:
        raise UnknownUnit.for_field(field, f"未知 UCUM 单位 unknown UCUM unit {ucum!r}") from None


def check_unit(unit: str) -> str:
    """Validator helper for pydantic: returns the unit or raises ``ValueError``."""
    if unit not in _UNITS:
        raise ValueError(f"未知单位 unknown unit {unit!r}")
    return unit
