"""Tests for seqcast.workflow: the job behind `seqcast run`, and the public API."""

import dataclasses
import json
import types

import numpy as np
import pandas as pd
import pytest

import seqcast
from seqcast import metrics, plots, workflow
from seqcast.errors import SeqcastError
from seqcast.forecasting import Forecaster
from seqcast.models import DenseConfig
from seqcast.training import TrainConfig
from seqcast.workflow import DataConfig, RunConfig, load_data, run, write_outputs

QUICK = RunConfig(training=TrainConfig(epochs=2))
METRIC_NAMES = {"mae", "mse", "rmse", "mape", "smape", "mase"}


def write_csv(path, values, dates=None):
    lines = ["date,value"] if dates is not None else ["value"]
    for index, value in enumerate(values):
        if dates is None:
            lines.append(f"{value}")
        else:
            lines.append(f"{dates[index].date()},{value}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def quick_report():
    return run(QUICK)


# --- settings -----------------------------------------------------------------


def test_run_config_defaults_are_reference():
    config = RunConfig()
    assert config.data == DataConfig()
    assert config.model.window_size == 20
    assert config.model.hidden == (10, 10)
    assert config.model.activation == "relu"
    assert config.optimizer.name == "sgd"
    assert config.optimizer.learning_rate == 1e-6
    assert config.optimizer.momentum == 0.9
    assert config.training.batch_size == 32
    assert config.training.shuffle_buffer == 1000
    assert config.training.epochs == 100
    assert config.training.loss == "mse"
    assert config.seed == 0
    assert config.executions == 1
    assert config.auto_learning_rate is False


def test_synthetic_series_splits_at_1000():
    series, split = load_data(DataConfig())
    assert len(series) == 1461
    assert split == 1000


def test_csv_without_split_trains_on_80_percent(tmp_path):
    path = write_csv(tmp_path / "values.csv", np.arange(50.0))
    series, split = load_data(DataConfig(csv=path))
    assert len(series) == 50
    assert split == 40


def test_csv_split_by_date(tmp_path):
    dates = pd.date_range("2000-01-01", periods=50, freq="D")
    path = write_csv(tmp_path / "values.csv", np.arange(50.0), dates)
    _, split = load_data(DataConfig(csv=path, split="2000-01-31"))
    assert split == 30


def test_column_without_csv_is_rejected():
    with pytest.raises(SeqcastError, match="--column 'x' applies to a CSV file"):
        DataConfig(column="x")


def test_season_given_inferred_or_synthetic(tmp_path):
    dates = pd.date_range("2000-01-31", periods=40, freq="ME")
    monthly = write_csv(tmp_path / "monthly.csv", np.arange(40.0), dates)
    plain = write_csv(tmp_path / "plain.csv", np.arange(40.0))
    data = DataConfig(csv=monthly)
    assert workflow.season_of(data, load_data(data)[0]) == 12
    data = DataConfig(csv=monthly, season=6)
    assert workflow.season_of(data, load_data(data)[0]) == 6
    data = DataConfig(csv=plain)
    assert workflow.season_of(data, load_data(data)[0]) is None
    data = DataConfig()
    assert workflow.season_of(data, load_data(data)[0]) == 365


# --- run ----------------------------------------------------------------------


def test_run_rows_network_then_baselines(quick_report):
    rows = list(quick_report.metrics)
    assert rows[0] == "network"
    assert rows[1:] == list(quick_report.forecasts)[1:]
    assert "naive" in rows
    for name, figures in quick_report.metrics.items():
        assert set(figures) == METRIC_NAMES, name
        assert all(np.isfinite(value) for value in figures.values()), name


def test_run_forecasts_cover_validation(quick_report):
    assert quick_report.split == 1000
    for name, forecast in quick_report.forecasts.items():
        assert forecast.shape == (461,), name
    np.testing.assert_array_equal(quick_report.time, np.arange(1000, 1461))


def test_run_network_metrics_match_evaluate(quick_report):
    values = quick_report.series.values
    expected = metrics.evaluate(
        values[1000:],
        quick_report.forecasts["network"],
        training=values[:1000],
        season=365,
    )
    assert quick_report.metrics["network"] == pytest.approx(expected, rel=1e-12)


def test_run_records_rate_and_history(quick_report):
    assert quick_report.learning_rate == 1e-6
    assert quick_report.learning_rate_source == "given"
    assert quick_report.history["loss"].shape == (1, 2)
    assert quick_report.history["val_loss"].shape == (1, 2)


def test_run_mase_uses_lag_1_without_season(tmp_path):
    path = write_csv(tmp_path / "plain.csv", np.sin(np.arange(80) / 3.0) + 5)
    config = dataclasses.replace(
        QUICK, data=DataConfig(csv=path), model=DenseConfig(window_size=5)
    )
    report = run(config)
    values = report.series.values
    assert report.season is None
    expected = metrics.mase(
        values[64:], report.forecasts["naive"], training=values[:64], season=1
    )
    assert report.metrics["naive"]["mase"] == pytest.approx(expected, rel=1e-12)


def test_run_keeps_each_execution(tmp_path):
    report = run(dataclasses.replace(QUICK, executions=3))
    assert report.members.shape == (3, 461)
    assert len(report.execution_metrics) == 3
    np.testing.assert_allclose(
        report.forecasts["network"], report.members.mean(axis=0), rtol=1e-6
    )
    maes = [figures["mae"] for figures in report.execution_metrics]
    assert len(set(maes)) == 3
    assert report.labels["network"].endswith("mean of 3")


def test_run_rejects_series_shorter_than_window(tmp_path):
    path = write_csv(tmp_path / "short.csv", np.arange(15.0))
    config = RunConfig(data=DataConfig(csv=path))
    with pytest.raises(SeqcastError, match=r"has 15 values .* at least 21"):
        run(config)


def test_run_dates_reach_the_forecast_plot(tmp_path):
    dates = pd.date_range("2000-01-01", periods=200, freq="D")
    path = write_csv(tmp_path / "daily.csv", np.cos(np.arange(200) / 9.0), dates)
    report = run(dataclasses.replace(QUICK, data=DataConfig(csv=path)))
    assert isinstance(report.time, pd.DatetimeIndex)
    assert report.time[0] == dates[report.split]
    figure = plots._forecast_figure(
        report.time, report.series.values[report.split :], {}
    )
    assert figure.axes[0].get_xlabel() == "date"


# --- learning rate chosen by a sweep -------------------------------------------


def test_auto_rate_takes_sweep_best(monkeypatch):
    calls = []

    def fake_sweep(series, **settings):
        calls.append(settings)
        return types.SimpleNamespace(best_rate=3e-6, rates=np.array([1e-6, 3e-6]))

    monkeypatch.setattr(workflow, "exact_sweep", fake_sweep)
    report = run(dataclasses.replace(QUICK, auto_learning_rate=True))
    assert report.learning_rate == 3e-6
    assert report.learning_rate_source == "exact sweep over 2 rates"
    assert report.forecaster.optimizer.learning_rate == 3e-6
    assert calls[0]["split"] == 1000


def test_auto_rate_all_diverged_is_an_error(monkeypatch):
    def fake_sweep(series, **settings):
        return types.SimpleNamespace(best_rate=None, rates=np.array([1.0, 2.0]))

    monkeypatch.setattr(workflow, "exact_sweep", fake_sweep)
    with pytest.raises(SeqcastError, match="diverged"):
        run(dataclasses.replace(QUICK, auto_learning_rate=True))


def test_auto_rate_with_real_sweep():
    report = run(dataclasses.replace(QUICK, auto_learning_rate=True))
    assert report.learning_rate > 0
    assert report.learning_rate_source.startswith("exact sweep over ")


# --- outputs ------------------------------------------------------------------


def test_write_outputs_files(quick_report, tmp_path):
    out = tmp_path / "out"
    files = write_outputs(quick_report, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "forecast.png",
        "loss.png",
        "metrics.json",
        "model",
    ]
    assert files == quick_report.files
    document = json.loads((out / "metrics.json").read_text())
    assert document["split"] == 1000
    assert document["learning_rate_source"] == "given"
    assert list(document["metrics"]) == list(quick_report.metrics)
    assert document["files"]["model"] == str(out / "model")


def test_written_model_reproduces_forecasts(quick_report, tmp_path):
    write_outputs(quick_report, tmp_path)
    loaded = Forecaster.load(tmp_path / "model")
    forecast = loaded.predict_steps(quick_report.series, start=1000)
    np.testing.assert_array_equal(forecast.members, quick_report.members)


def test_failed_write_leaves_nothing(quick_report, tmp_path):
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "notes.txt").write_text("not a model")
    with pytest.raises(SeqcastError):
        write_outputs(quick_report, out)
    assert sorted(p.name for p in out.iterdir()) == ["model"]
    assert sorted(p.name for p in (out / "model").iterdir()) == ["notes.txt"]


def test_failed_write_removes_new_folder(quick_report, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise SeqcastError("plot failed")

    monkeypatch.setattr(workflow, "plot_history", fail)
    out = tmp_path / "new"
    with pytest.raises(SeqcastError, match="plot failed"):
        write_outputs(quick_report, out)
    assert not out.exists()


def test_out_that_is_a_file_is_rejected(quick_report, tmp_path):
    target = tmp_path / "taken"
    target.write_text("")
    with pytest.raises(SeqcastError, match="is a file"):
        write_outputs(quick_report, target)


def test_report_dict_is_strict_json(quick_report):
    text = json.dumps(quick_report.to_dict(), allow_nan=False)
    assert json.loads(text)["series"] == "synthetic series"


# --- public API -----------------------------------------------------------------


def test_public_names_resolve():
    assert set(seqcast.__all__) == {"__version__", *seqcast._EXPORTS}
    for name in seqcast._EXPORTS:
        assert getattr(seqcast, name) is not None, name
    assert seqcast.run is workflow.run
