"""Tests for the `seqcast` command line: output, bad input and real data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from seqcast import workflow
from seqcast.cli import app

runner = CliRunner()

# Two epochs keep each training to about a second; the figures are still real.
QUICK = ["--epochs", "2"]


def invoke(*args: str):
    return runner.invoke(app, [str(arg) for arg in args])


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# --- help ---------------------------------------------------------------------


def test_every_command_has_help():
    commands = typer.main.get_command(app).commands
    assert {"run", "forecast"} <= set(commands)
    for name, command in commands.items():
        assert command.help, name
        result = invoke(name, "--help")
        assert result.exit_code == 0, name
        assert "Usage" in result.output, name


def test_no_arguments_shows_help():
    result = invoke()
    assert result.exit_code == 2
    assert "run" in result.output
    assert "forecast" in result.output


# --- run and forecast -----------------------------------------------------------


@pytest.fixture(scope="module")
def run_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    result = invoke("run", *QUICK, "--out", out, "--json")
    return result, out


def test_run_json_is_one_object(run_output):
    result, out = run_output
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document["metrics"])[0] == "network"
    for figures in document["metrics"].values():
        assert {"mae", "rmse", "mase"} <= set(figures)
    assert document["learning_rate"] == 1e-6
    assert document["learning_rate_source"] == "given"
    assert document["split"] == 1000
    assert document["series"] == "synthetic series"
    assert document["files"]["metrics"] == str(out / "metrics.json")


def test_run_writes_files(run_output):
    _, out = run_output
    for name in ("forecast.png", "loss.png", "metrics.json", "model/config.json"):
        assert (out / name).is_file(), name
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_run_prints_table(tmp_path):
    result = invoke("run", *QUICK, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    for text in ("MAE", "RMSE", "MASE", "network (10, 10)", "naive"):
        assert text in result.stdout
    caption = " ".join(result.stdout.split())
    assert "learning rate 1e-06 (given)" in caption.lower()
    assert "2 epochs" in caption
    assert str(tmp_path / "out" / "metrics.json") in result.stdout


def test_forecast_continues_synthetic_series(run_output):
    _, out = run_output
    result = invoke("forecast", "--model", out / "model", "--steps", "3", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [row["time"] for row in document["forecasts"]] == [1461, 1462, 1463]
    assert all(np.isfinite(row["forecast"]) for row in document["forecasts"])


def test_forecast_continues_csv_dates(tmp_path):
    dates = pd.date_range("2000-01-01", periods=120, freq="D")
    lines = ["date,value"] + [
        f"{day.date()},{np.sin(i / 7) + 3:.4f}" for i, day in enumerate(dates)
    ]
    path = write_lines(tmp_path / "daily.csv", lines)
    out = tmp_path / "out"
    trained = invoke("run", "--csv", path, "--window-size", "10", *QUICK, "--out", out)
    assert trained.exit_code == 0, trained.output
    result = invoke(
        "forecast", "--model", out / "model", "--csv", path, "--steps", "2", "--json"
    )
    assert result.exit_code == 0, result.output
    times = [row["time"] for row in json.loads(result.stdout)["forecasts"]]
    assert times == ["2000-04-30", "2000-05-01"]


def test_forecast_without_csv_uses_training_series(tmp_path):
    dates = pd.date_range("2000-01-01", periods=120, freq="D")
    lines = ["date,value"] + [
        f"{day.date()},{np.sin(i / 7) + 3:.4f}" for i, day in enumerate(dates)
    ]
    path = write_lines(tmp_path / "daily.csv", lines)
    out = tmp_path / "out"
    trained = invoke("run", "--csv", path, "--window-size", "10", *QUICK, "--out", out)
    assert trained.exit_code == 0, trained.output
    result = invoke("forecast", "--model", out / "model", "--steps", "2", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    times = [row["time"] for row in document["forecasts"]]
    assert times == ["2000-04-30", "2000-05-01"]
    assert "value" in document["series"]


def test_run_hints_at_scaling_far_from_zero(tmp_path):
    # Values near 5000 barely move the network at the reference rate.
    lines = ["value"] + [f"{5000 + 50 * np.sin(i / 9):.3f}" for i in range(300)]
    path = write_lines(tmp_path / "high.csv", lines)
    result = invoke("run", "--csv", path, *QUICK, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "hint: the network's validation MAE is" in text
    assert "--scale standard" in text


def test_run_without_hint_on_reference_series(tmp_path):
    result = invoke("run", "--epochs", "20", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "hint:" not in result.stdout


# --- bad input ----------------------------------------------------------------


@pytest.fixture
def csv_files(tmp_path):
    return {
        "good": write_lines(
            tmp_path / "good.csv", ["date,value"] + [
                f"2000-01-{day:02d},{day}" for day in range(1, 29)
            ]
        ),
        "text": write_lines(
            tmp_path / "text.csv", ["date,value", "2000-01-01,1", "2000-01-02,abc"]
        ),
        "gap": write_lines(
            tmp_path / "gap.csv",
            ["date,value", "2000-01-01,1", "2000-01-02,2", "2000-01-03,"],
        ),
        "short": write_lines(
            tmp_path / "short.csv", ["value"] + [str(i) for i in range(15)]
        ),
    }


BAD_INPUT = {
    "missing file": (["--csv", "{tmp}/missing.csv"], ["missing.csv", "not found"]),
    "missing column": (
        ["--csv", "{good}", "--column", "sales"],
        ["'sales' not found", "'date'", "'value'"],
    ),
    "text cell": (
        ["--csv", "{text}", "--column", "value"],
        ["line 3", "'abc'", "not a number"],
    ),
    "missing value": (
        ["--csv", "{gap}"],
        ["line 4", "--fill interpolate", "--fill drop"],
    ),
    "short series": (["--csv", "{short}"], ["15 values", "at least 21"]),
    "window 0": (["--window-size", "0"], ["--window-size", "got 0"]),
    "batch 0": (["--batch-size", "0"], ["--batch-size", "got 0"]),
    "epochs 0": (["--epochs", "0"], ["--epochs", "got 0"]),
    "epochs negative": (["--epochs", "-5"], ["--epochs", "got -5"]),
    "no validation": (["--split", "1461"], ["no validation data", "1460"]),
    "bad split": (["--split", "soon"], ["'soon'", "fraction"]),
    "bad hidden": (["--hidden", "10,x"], ["'10,x'", "such as 10,10"]),
    "bad rate": (["--lr", "fast"], ["'fast'", "positive number"]),
    "bad optimizer": (["--optimizer", "rmsprop"], ["'rmsprop'", "adamw"]),
    "column without csv": (["--column", "value"], ["--csv FILE"]),
    "diverged": (
        ["--lr", "10", "--epochs", "3"],
        ["diverged", "learning rate 10"],
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_is_one_line(case, csv_files, tmp_path):
    arguments, fragments = BAD_INPUT[case]
    names = {name: str(path) for name, path in csv_files.items()}
    arguments = [arg.format(tmp=tmp_path, **names) for arg in arguments]
    out = tmp_path / "out"
    result = invoke("run", *arguments, "--out", out)
    assert_one_line_error(result, *fragments)
    assert not out.exists()


def test_missing_model_folder(tmp_path):
    result = invoke("forecast", "--model", tmp_path / "nothing", "--steps", "2")
    assert_one_line_error(result, "nothing", "not found", "seqcast run")


def test_forecast_steps_zero(run_output):
    _, out = run_output
    result = invoke("forecast", "--model", out / "model", "--steps", "0")
    assert_one_line_error(result, "--steps", "got 0")


def test_failed_run_keeps_existing_out(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier")
    result = invoke("run", "--hidden", "0", "--out", out)
    assert_one_line_error(result, "--hidden")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_console_script_reports_one_line(tmp_path):
    script = Path(sys.executable).with_name("seqcast")
    if not script.exists():
        pytest.skip(f"console script {script} is not installed")
    completed = subprocess.run(
        [script, "run", "--csv", tmp_path / "missing.csv", "--out", tmp_path / "o"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert completed.stderr.startswith("error: file not found")
    assert not (tmp_path / "o").exists()


# --- real data ----------------------------------------------------------------

REAL_RUNS = {
    "sunspots": [
        "--csv",
        "sunspots_monthly.csv",
        "--column",
        "Monthly Mean Total Sunspot Number",
        "--time-column",
        "Date",
        "--split",
        "3000",
        "--window-size",
        "60",
    ],
    "co2": [
        "--csv",
        "co2_weekly.csv",
        "--column",
        "co2",
        "--time-column",
        "date",
        "--fill",
        "interpolate",
    ],
}


@pytest.mark.parametrize("name", REAL_RUNS)
def test_real_data_run(name, shared_data, tmp_path, monkeypatch):
    plotted_times = []
    plot_forecast = workflow.plot_forecast

    def record_plot(path, time, *args, **kwargs):
        plotted_times.append(time)
        return plot_forecast(path, time, *args, **kwargs)

    monkeypatch.setattr(workflow, "plot_forecast", record_plot)
    arguments = list(REAL_RUNS[name])
    arguments[1] = str(shared_data / arguments[1])
    out = tmp_path / "out"
    result = invoke("run", *arguments, "--epochs", "10", "--out", out)
    assert result.exit_code == 0, result.output

    document = json.loads((out / "metrics.json").read_text())
    for row, figures in document["metrics"].items():
        for metric in ("mae", "rmse", "mase"):
            assert np.isfinite(figures[metric]), (row, metric)
    assert (out / "forecast.png").stat().st_size > 0
    assert len(plotted_times) == 1
    assert isinstance(plotted_times[0], pd.DatetimeIndex)
