"""Tests of the `seqcast lr-find` command."""

import json

import pytest
from typer.testing import CliRunner

from seqcast.cli import app
from seqcast.cli.lr_find import parse_rates
from seqcast.errors import SeqcastError
from seqcast.learning_rates import SUGGESTION_RULE

runner = CliRunner()

# Five epochs keep each command fast; the sweep then stops at 1.58e-8.
SHORT = ["lr-find", "--epochs", "5"]


def invoke(*args):
    return runner.invoke(app, list(args))


def invoke_json(*args):
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_sweep_shape():
    report = invoke_json(*SHORT)
    assert set(report) == {
        "suggested_learning_rate", "reason", "rule", "losses", "learning_rates",
    }  # fmt: skip
    assert report["rule"] == SUGGESTION_RULE
    assert report["learning_rates"] == [1e-8 * 10 ** (e / 20) for e in range(5)]
    assert len(report["losses"]) == 5
    assert all(isinstance(loss, float) for loss in report["losses"])
    assert isinstance(report["suggested_learning_rate"], float)
    assert report["reason"] is None


def test_json_sweep_options_set_schedule():
    report = invoke_json(*SHORT, "--start", "1e-6", "--factor", "2", "--every", "1")
    assert report["learning_rates"] == [1e-6 * 2**e for e in range(5)]


def test_json_reason_when_no_suggestion():
    report = invoke_json(*SHORT, "--start", "1e3", "--factor", "10", "--every", "1")
    assert report["suggested_learning_rate"] is None
    assert isinstance(report["reason"], str)
    assert report["reason"]


def test_json_exact_shape():
    report = invoke_json(*SHORT, "--rates", "1e-6,1e-5,100", "--executions", "2")
    assert "suggested_learning_rate" in report
    rows = report["rates"]
    assert [row["learning_rate"] for row in rows] == [1e-6, 1e-5, 100.0]
    for row in rows:
        assert {
            "learning_rate", "loss", "val_mae", "val_mae_std", "ensemble_val_mae",
            "diverged",
        } <= set(row)  # fmt: skip
    assert rows[2]["diverged"] is True
    assert rows[2]["val_mae"] is None
    assert rows[0]["diverged"] is False
    assert isinstance(rows[0]["val_mae"], float)
    assert report["best_learning_rate"] in (1e-6, 1e-5)


def test_exact_flag_uses_default_grid():
    report = invoke_json("lr-find", "--epochs", "2", "--exact", "--executions", "1")
    assert len(report["rates"]) == 12
    assert report["rates"][4]["learning_rate"] == 1e-6


def test_summary_names_suggestion():
    result = invoke(*SHORT)
    assert result.exit_code == 0, result.output
    assert "suggested learning rate:" in result.stdout
    assert SUGGESTION_RULE in result.stdout
    assert "the loss still falls at the last rate" in result.stdout


def test_summary_exact_table_marks_best():
    result = invoke(*SHORT, "--rates", "1e-6,100", "--executions", "2")
    assert result.exit_code == 0, result.output
    assert "exact sweep" in result.stdout
    assert "1 best" in result.stdout
    assert "all" in result.stdout, "the diverged rate is not marked"
    assert "best learning rate: 1e-06" in result.stdout


def test_out_writes_pngs(tmp_path):
    out = tmp_path / "figures"
    result = invoke(*SHORT, "--rates", "1e-6,1e-5", "--executions", "1",
                    "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("lr_sweep.png", "lr_exact.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    assert sorted(p.name for p in out.iterdir()) == ["lr_exact.png", "lr_sweep.png"]


def test_out_without_exact_writes_sweep_only(tmp_path):
    result = invoke(*SHORT, "--out", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["lr_sweep.png"]


def test_help_names_rule():
    result = invoke("lr-find", "--help")
    assert result.exit_code == 0
    assert SUGGESTION_RULE in result.stdout
    for option in ("--start", "--factor", "--every", "--exact", "--rates", "--out"):
        assert option in result.stdout, option


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rates", "abc"], "invalid --rates 'abc'"),
        (["--rates", "1e-6,-1"], "invalid --rates '1e-6,-1'"),
        (["--rates", "1e-6,1e-6"], "duplicates"),
        (["--start", "-1"], "invalid --start -1.0"),
        (["--factor", "0"], "invalid --factor 0.0"),
        (["--every", "inf"], "invalid --every inf"),
        (["--executions", "0"], "--executions"),
        (["--split", "2000"], "split"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    result = invoke(*SHORT, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_out_that_is_a_file_exits_2(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    result = invoke(*SHORT, "--out", str(target))
    assert result.exit_code == 2
    assert "is a file" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1e-6", [1e-6]), ("1e-6, 3e-5,0.1", [1e-6, 3e-5, 0.1])],
)
def test_parse_rates(text, expected):
    assert parse_rates(text) == expected


@pytest.mark.parametrize("text", ["", "1e-6,", "0", "nan", "1e-6;1e-5"])
def test_parse_rates_rejects(text):
    with pytest.raises(SeqcastError, match="invalid --rates"):
        parse_rates(text)
