"""Code-shape checks for the code systems the record uses, and their FHIR system URIs.

- ICD-10: WHO ICD-10 shapes plus the Chinese national clinical version 2.0 extensions
  (国家临床版2.0, e.g. ``I10.x00x002``, ``E11.900``, dagger–asterisk ``A01.001+K77.0*``, ``A17+``, ``D63*``).
- ICD-9-CM-3: procedure codes ``NN`` / ``NN.N`` / ``NN.NN`` (国家临床版3.0 adds ``x`` extensions such as
  ``36.0600x001``).
- ATC: WHO Collaborating Centre ATC levels 1–5 (e.g. ``C08CA01``).
- LOINC: ``NNNNN-N`` with its check digit position.
Value sets are not enforced by fhir.resources, so we validate shapes here.
"""

from __future__ import annotations

import re

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
ICD10_CN_VERSION = "国家临床版2.0"
ICD9CM3_SYSTEM = "http://hl7.org/fhir/sid/icd-9-cm"
ICD9CM3_CN_VERSION = "国家临床版3.0"
ATC_SYSTEM = "http://www.whocc.no/atc"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"

_ICD10_CORE = r"[A-Z]\d{2}(\.[0-9xX]{1,3}([xX]\d{3})?)?"
# dagger–asterisk pairs (e.g. ``A01.001+K77.0*``) are written as one code in the clinical version;
# a lone code may carry its own dagger (``A17+``) or asterisk (``D63*``) mark
_ICD10 = re.compile(rf"^{_ICD10_CORE}(\+{_ICD10_CORE}\*|[+*])?$")
_ICD9CM3 = re.compile(r"^\d{2}(\.[0-9x]{1,4}(x\d{3,4})?)?$")
_ATC = re.compile(r"^[A-Z](\d{2}([A-Z]([A-Z](\d{2})?)?)?)?$")
_LOINC = re.compile(r"^\d{1,7}-\d$")


def _checker(pattern: re.Pattern[str], label: str):  # type: ignore[no-untyped-def]
    def check(code: str) -> str:
        if not pattern.match(code):
            raise ValueError(f"不是有效的{label}编码 not a valid {label} code: {code!r}")
        return code

    return check


check_icd10 = _checker(_ICD10, "ICD-10")
check_icd9cm3 = _checker(_ICD9CM3, "ICD-9-CM-3")
check_atc = _checker(_ATC, "ATC")
check_loinc = _checker(_LOINC, "LOINC")
