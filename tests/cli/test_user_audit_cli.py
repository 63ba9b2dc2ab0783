"""``medfusion user …`` administration and ``medfusion audit list / export`` (issue 16): the same changes
as the API, audited; times in the display zone with the zone's name."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from medfusion.settings import get_settings
from medfusion.store.database import get_database
from medfusion.store.tokens import Credentials, sign_in
from tests.cli.test_cli import run


def _add(
    username: str, role: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(
        ["user", "add", "--username", username, "--role", role, "--password-stdin"],
        capsys,
        stdin="first-pass-1\n",
        monkeypatch=monkeypatch,
    )
    assert code == 0, err


def test_user_administration_from_the_command_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _add("boss", "admin", capsys, monkeypatch)
    _add("dr_he", "doctor", capsys, monkeypatch)
    code, _, err = run(["user", "disable", "boss"], capsys)
    assert code == 2 and "last_admin" in err and "Traceback" not in err
    assert run(["user", "disable", "dr_he"], capsys)[0] == 0
    assert "(disabled)" in run(["user", "list"], capsys)[1]
    assert run(["user", "enable", "dr_he"], capsys)[0] == 0
    code, out, _ = run(
        ["user", "reset-password", "dr_he", "--password-stdin"], capsys, "temp-pass-2\n", monkeypatch
    )
    assert code == 0 and "must change it" in out
    db, settings = get_database(), get_settings()
    assert sign_in(db, settings, Credentials(username="dr_he", password="temp-pass-2")).must_change_password
    assert "(temporary password)" in run(["user", "list"], capsys)[1]
    code, out, _ = run(["user", "role", "dr_he", "pharmacist"], capsys)
    assert code == 0 and "pharmacist" in out
    assert run(["user", "role", "dr_he", "patient"], capsys)[0] == 2  # a patient account needs its record
    assert run(["user", "sign-out", "dr_he"], capsys)[0] == 0
    assert run(["user", "unlock", "dr_he"], capsys)[0] == 0
    assert run(["user", "unlock", "nobody"], capsys)[0] == 2
    code, out, _ = run(["audit", "list", "--action", "user."], capsys)
    assert code == 0 and out.startswith("# ") and "Asia/Shanghai" in out.splitlines()[0]
    actions = [line.split("\t")[4] for line in out.splitlines()[1:]]
    for action in (
        "user.create",
        "user.disable",
        "user.enable",
        "user.reset_password",
        "user.role",
        "user.sign_out",
    ):
        assert action in actions
    assert all(re.search(r"\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CST\t", line) for line in out.splitlines()[1:])


def test_audit_export_writes_csv_and_is_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _add("dr_qi", "doctor", capsys, monkeypatch)
    out_file = tmp_path / "audit.csv"
    code, out, _ = run(["audit", "export", "--out", str(out_file), "--action", "user.create"], capsys)
    assert code == 0 and "exported 1 entries" in out
    rows = list(csv.DictReader(io.StringIO(out_file.read_text(encoding="utf-8-sig"))))
    assert [r["action"] for r in rows] == ["user.create"] and rows[0]["time_local"].endswith(" CST")
    code, out, _ = run(["audit", "list", "--action", "audit.export"], capsys)
    assert code == 0 and "audit.export" in out
    code, _, err = run(["audit", "list", "--since", "2026-13-40"], capsys)
    assert code == 2 and "invalid_time" in err
    code, out, _ = run(["audit", "list", "--since", "2999-01-01"], capsys)
    assert code == 0 and out.startswith("# 0 entries")
