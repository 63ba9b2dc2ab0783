from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.cli.test_cli import run

ROWS = [
    {"id": 1, "text": "患者张三，男，63岁，电话13812345678，于2024年3月1日入院。", "other": "13812345678"},
    {"id": 2, "note": "no text field here"},
    {"id": 3, "text": "家属李四（其子）身份证号11010519491231002X"},
]


def _write_jsonl(path: Path, rows: list[dict]) -> None:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_jsonl_rows_keep_order_and_other_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_jsonl(source, ROWS)
    code, out, err = run(
        ["privacy", "deid", "--in", str(source), "--out", str(target), "--quiet", "--executor", "inline"],
        capsys,
    )
    assert code == 0 and out == ""
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert (
        rows[0]["text"] == "患者[姓名]，男，63岁，电话[电话]，于[日期]入院。"
        and rows[0]["other"] == "13812345678"
    )
    assert rows[1] == ROWS[1]
    report = json.loads(err)
    assert report["rows"] == 3 and report["rows_without_field"] == 1 and report["counts"]["PERSON"] == 2
    assert "张三" not in target.read_text(encoding="utf-8")


def test_report_file_and_pseudo_key_creation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, target, report = tmp_path / "in.txt", tmp_path / "out.txt", tmp_path / "report.json"
    source.write_text("患者张三电话13812345678\n第二行无身份信息\n", encoding="utf-8")
    code, _, err = run(
        [
            "privacy",
            "deid",
            "--in",
            str(source),
            "--out",
            str(target),
            "--mode",
            "pseudo",
            "--report",
            str(report),
            "--quiet",
            "--executor",
            "inline",
        ],
        capsys,
    )
    assert code == 0 and "project.key" in err
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and "张三" not in lines[0] and lines[1] == "第二行无身份信息"
    assert json.loads(report.read_text())["rows"] == 2


def test_stdin_one_text(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("患者王五，电话139-1234-5678\n".encode())))
    code, out, _ = run(["privacy", "deid", "-"], capsys)
    assert code == 0 and out.strip() == "患者[姓名]，电话[电话]"


def test_csv_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text('id,text\n1,"患者赵六，电话13800001111"\n2,"多行\n文本"\n', encoding="utf-8")
    code, _, _ = run(["privacy", "deid", "--in", str(source), "--out", str(target)], capsys)
    assert code == 0
    assert target.read_text(encoding="utf-8") == 'id,text\n1,患者[姓名]，电话[电话]\n2,"多行\n文本"\n'


def test_bad_rows_are_reported_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "bad.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(b'{"text": "ok"}\n{bad json\n\xff\xfe\n{"text": 5}\n')
    code, _, err = run(
        ["privacy", "deid", "--in", str(source), "--out", str(target), "--quiet", "--executor", "inline"],
        capsys,
    )
    assert code == 2 and "3 rows" in err and "row 2" in err and not target.exists()


def test_empty_and_missing_inputs_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, err = run(["privacy", "deid", "--in", str(empty), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "empty" in err
    code, _, err = run(
        ["privacy", "deid", "--in", str(tmp_path / "nope"), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "no such file" in err


def test_large_corpus_runs_in_resumable_chunks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medfusion.cli.deid_jobs import DeidCorpus
    from medfusion.jobs import run_job

    source, target = tmp_path / "big.jsonl", tmp_path / "big.out.jsonl"
    _write_jsonl(source, [{"id": i, "text": f"患者张三{i}电话1381234{i:04d}"} for i in range(2000)])
    params = {
        "input": str(source),
        "output": str(target),
        "format": "jsonl",
        "field": "text",
        "mode": "tag",
        "key_file": None,
        "chunk_bytes": 4096,
    }
    result = run_job(
        DeidCorpus(), params, data_dir=tmp_path / "var", database_url="sqlite://", executor="local", workers=2
    )
    assert result.chunks > 10
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == list(range(2000))
    assert all("[电话]" in r["text"] for r in rows)
    again = run_job(
        DeidCorpus(), params, data_dir=tmp_path / "var", database_url="sqlite://", executor="inline"
    )
    assert again.output == str(target)
