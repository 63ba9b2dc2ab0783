from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from medfusion.cli.main import main
from medfusion.settings import get_settings


def run(
    args: list[str],
    capsys: pytest.CaptureFixture[str],
    stdin: str | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[int, str, str]:
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as done:
        main(args)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_db_upgrade_on_a_fresh_directory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["db", "upgrade"], capsys)
    from medfusion.store.database import Database

    assert code == 0 and f"revision {Database.head_revision()}" in out
    assert (get_settings().resolved_data_dir / "medfusion.db").exists()


def test_synth_into_db_then_export_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["synth", "population", "--size", "8", "--seed", "4", "--into-db"], capsys)
    assert code == 0 and "loaded 8" in err
    out_file = tmp_path / "p3.json"
    code, _, _ = run(["fhir", "export", "--patient", "P0000003", "--out", str(out_file)], capsys)
    assert code == 0
    bundle = json.loads(out_file.read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle"
    code, out, _ = run(["fhir", "import", str(out_file)], capsys)
    assert code == 0 and "P0000003" in out
    code, out, _ = run(["audit", "verify"], capsys)
    assert code == 0 and "intact" in out


def test_user_add_reads_the_password_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(
        ["user", "add", "--username", "dr_zhou", "--role", "doctor", "--password-stdin"],
        capsys,
        stdin="s3cret-pass\n",
        monkeypatch=monkeypatch,
    )
    assert code == 0 and "dr_zhou" in out
    code, _, err = run(
        ["user", "add", "--username", "dr_zhou", "--role", "doctor", "--password-stdin"],
        capsys,
        stdin="s3cret-pass\n",
        monkeypatch=monkeypatch,
    )
    assert code == 2 and "conflict" in err
    code, _, err = run(
        [
            "user",
            "add",
            "--username",
            "pat_x",
            "--role",
            "patient",
            "--password-stdin",
            "--patient-id",
            "NOPE",
        ],
        capsys,
        stdin="s3cret-pass\n",
        monkeypatch=monkeypatch,
    )
    assert code == 2 and "not_found" in err
    code, _, err = run(
        ["user", "add", "--username", "dr_q", "--role", "surgeon", "--password-stdin"],
        capsys,
        stdin="s3cret-pass\n",
        monkeypatch=monkeypatch,
    )
    assert code == 2 and "role" in err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["fhir", "export", "--patient", "NOPE"], "not_found"),
        (["fhir", "import", "/definitely/not/here.json"], "does not exist"),
        (["synth", "population", "--size", "3"], "--out"),
        (["synth", "population", "--size", "0", "--out", "-"], "size"),
        (["user", "add", "--username", "x1", "--role", "doctor"], "--password-stdin"),
        (
            ["synth", "population", "--size", "3", "--format", "fhir", "--plant-pii", "--out", "x.ndjson"],
            "--plant-pii",
        ),
        (["synth", "population", "--size", "3", "--executor", "dask", "--out", "x.jsonl"], "executor"),
    ],
)
def test_errors_are_one_line_and_non_zero(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(args, capsys)
    assert code != 0 and needle in err
    assert "Traceback" not in err


def test_malformed_fhir_file_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", '
        '"birthDate": "1990-02-30"}}]}',
        encoding="utf-8",
    )
    code, _, err = run(["fhir", "import", str(bad)], capsys)
    assert code == 2 and "entry[0].resource.birthDate" in err and "Traceback" not in err
    (tmp_path / "junk.json").write_bytes(b"\xff\xfe not json")
    code, _, err = run(["fhir", "import", str(tmp_path / "junk.json")], capsys)
    assert code == 2 and "JSON" in err


def test_audit_verify_names_the_first_bad_entry(capsys: pytest.CaptureFixture[str]) -> None:
    run(["synth", "population", "--size", "2", "--seed", "1", "--into-db"], capsys)
    run(["fhir", "export", "--patient", "P0000001"], capsys)
    run(["fhir", "export", "--patient", "P0000002"], capsys)
    db_file = get_settings().resolved_data_dir / "medfusion.db"
    with sqlite3.connect(db_file) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET actor = 'someone_else' WHERE seq = 2")
    code, _, err = run(["audit", "verify"], capsys)
    assert code == 2 and "entry 2" in err


def test_demo_seed_is_idempotent_and_prints_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["demo", "seed", "--size", "5"], capsys)
    assert code == 0 and "demo_doctor" in out and "demo_patient" in out
    first = json.loads((get_settings().resolved_data_dir / "demo-credentials.json").read_text())
    code, out, _ = run(["demo", "seed", "--size", "5"], capsys)
    assert code == 0 and "跳过" in out
    second = json.loads((get_settings().resolved_data_dir / "demo-credentials.json").read_text())
    assert first == second and first["demo_admin"] in out
    mode = (get_settings().resolved_data_dir / "demo-credentials.json").stat().st_mode & 0o777
    assert mode == 0o600
