"""``synth --format fhir --profile synthea``: Synthea-style Bundles (SNOMED CT diagnoses and procedures,
transaction, urn:uuid references, Claims) that the importer must accept (issue 15 part 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medfusion.cli.main import main
from medfusion.errors import InvalidFhir
from medfusion.interop.fhir import bundle_to_charts, chart_to_bundle
from medfusion.synth import generate_population
from medfusion.synth.synthea import SNOMED, synthea_bundle


def test_synthea_bundles_carry_no_icd_and_all_import() -> None:
    unmapped = 0
    for chart in generate_population(25, seed=3):
        bundle = synthea_bundle(chart)
        assert bundle["type"] == "transaction"
        systems = {
            c["system"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Condition"
            for c in e["resource"]["code"]["coding"]
        }
        assert "http://hl7.org/fhir/sid/icd-10" not in systems
        result = bundle_to_charts(bundle)
        (imported,) = result.charts
        assert len(imported.conditions) == len(chart.conditions)
        assert len(imported.observations) == len(chart.observations)
        assert result.raw_only().get("Claim", 0) == len(chart.encounters)
        unmapped += result.summary()["unmapped"]["conditions"]
        for cond in imported.conditions:
            assert cond.codings and (cond.icd10_code is not None or cond.coding_status == "unmapped")
            if any(c.system == SNOMED for c in cond.codings):
                assert cond.icd10_code is not None  # every SNOMED concept we write has a cited mapping
        exported = chart_to_bundle(imported, result.raw)
        assert sorted(json.dumps(e["resource"], sort_keys=True) for e in exported["entry"]) == sorted(
            json.dumps(e["resource"], sort_keys=True) for e in bundle["entry"]
        )
    assert unmapped > 0  # the local-coded 健康查体 etc. stay unmapped, counted


def test_the_strict_profile_refuses_them() -> None:
    chart = next(c for c in generate_population(10, seed=3) if c.conditions)
    with pytest.raises(InvalidFhir):
        bundle_to_charts(synthea_bundle(chart), profile="medfusion-strict")


def test_cli_writes_synthea_ndjson_and_fhir_import_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "synthea.ndjson"
    with pytest.raises(SystemExit) as done:
        main(
            [
                "synth",
                "population",
                "--size",
                "3",
                "--format",
                "fhir",
                "--profile",
                "synthea",
                "--out",
                str(out),
                "--executor",
                "inline",
                "--quiet",
            ]
        )
    assert done.value.code in (0, None)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3
    with pytest.raises(SystemExit) as done:
        main(["fhir", "import", str(out), "--json"])
    assert done.value.code in (0, None)
    summaries = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(summaries) == 3 and all(s["profile"] == "r4" for s in summaries)
