from __future__ import annotations

import csv

import pytest

from medfusion.record.codes import check_atc, check_icd9cm3, check_icd10
from tests.conftest import shared_dataset


@pytest.mark.parametrize(
    "code", ["I10", "E11.9", "E11.900", "I10.x00x002", "A01.001+K77.0*", "G56.100X001", "A17+", "D63*"]
)
def test_icd10_shapes(code: str) -> None:
    assert check_icd10(code) == code


@pytest.mark.parametrize("code", ["i10", "I1", "10.1", "E11.90000", "I10++", "A01.001+K77.0"])
def test_icd10_rejects(code: str) -> None:
    with pytest.raises(ValueError):
        check_icd10(code)


@pytest.mark.parametrize("code", ["36.06", "36.0601", "99.9x99", "86.700x0013"])
def test_icd9cm3_shapes(code: str) -> None:
    assert check_icd9cm3(code) == code


@pytest.mark.parametrize("code", ["C", "C08", "C08C", "C08CA", "C08CA01"])
def test_atc_levels(code: str) -> None:
    assert check_atc(code) == code


@pytest.mark.dataset
def test_every_code_of_the_chs_drg_catalogue_validates() -> None:
    folder = shared_dataset("chs_drg_catalogue")
    with (folder / "derived_diagnosis_codes.csv").open(encoding="utf-8") as fh:
        diagnoses = [row["diagnosis_code"] for row in csv.DictReader(fh)]
    with (folder / "derived_operation_codes.csv").open(encoding="utf-8") as fh:
        operations = [row["operation_code"] for row in csv.DictReader(fh)]
    assert len(diagnoses) > 20_000 and len(operations) > 5_000
    for code in diagnoses:
        check_icd10(code)
    for code in operations:
        check_icd9cm3(code)


@pytest.mark.dataset
def test_icd10_categories_validate() -> None:
    folder = shared_dataset("icd10_cn_categories")
    with (folder / "disease.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            check_icd10(row["code"])
