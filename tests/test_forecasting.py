"""Tests for seqcast.forecasting: one-step, recursive and saved forecasts."""

import jax
import numpy as np
import pandas as pd
import pytest

from seqcast.data import Series, synthetic_series
from seqcast.errors import SeqcastError
from seqcast.forecasting import Forecaster, predict_windows, recursive_forecast
from seqcast.metrics import mae
from seqcast.models import DenseConfig, init_stack
from seqcast.training import TrainConfig
from seqcast.windows import label_window_starts

SHORT = TrainConfig(epochs=3)


def test_same_seed_gives_identical_forecasts():
    series = synthetic_series()
    first = Forecaster(training=SHORT, seed=3).fit(series, 1000)
    second = Forecaster(training=SHORT, seed=3).fit(series, 1000)
    np.testing.assert_array_equal(
        first.predict_steps(start=1000).members,
        second.predict_steps(start=1000).members,
    )


def test_vectorized_forecasts_match_window_loop():
    # Values scaled to about 1 keep float32 rounding far below atol 1e-5.
    config = DenseConfig(window_size=20, hidden=(10, 10))
    params, _ = init_stack(config, [0, 1])
    values = synthetic_series().values / 100
    starts = label_window_starts(20, 1000, len(values))
    vectorized = predict_windows(config, params, values, starts)

    apply_one = jax.jit(config.module().apply)
    for model in range(2):
        single = jax.tree.map(lambda leaf, m=model: leaf[m], params)
        looped = [
            float(apply_one(single, values[s : s + 20][None])[0]) for s in starts
        ]
        np.testing.assert_allclose(
            vectorized[model], looped, atol=1e-5, err_msg=f"model {model}"
        )


def test_recursive_forecast_feeds_back_forecasts():
    # The model returns its newest input plus one, so the forecasts past
    # 1..10 continue the count.
    forecasts = recursive_forecast(
        lambda windows: windows[:, -1] + 1, np.arange(1.0, 11.0), 3, 3
    )
    np.testing.assert_array_equal(forecasts, [[11.0, 12.0, 13.0]])


def test_recursive_forecast_uses_last_window_only():
    # The model returns the mean of its window of 3: (8 + 9 + 10) / 3 = 9, then
    # (9 + 10 + 9) / 3 = 9.333..., then (10 + 9 + 9.333...) / 3 = 9.444...
    forecasts = recursive_forecast(
        lambda windows: windows.mean(axis=1), np.arange(1.0, 11.0), 3, 3
    )
    np.testing.assert_allclose(forecasts, [[9.0, 28 / 3, 85 / 9]], rtol=1e-6)


def test_save_load_round_trip(tmp_path):
    series = synthetic_series()
    forecaster = Forecaster(training=SHORT, executions=2).fit(series, 1000)
    forecaster.save(tmp_path / "model")
    loaded = Forecaster.load(tmp_path / "model")

    np.testing.assert_array_equal(
        loaded.predict_steps(series, start=1000).members,
        forecaster.predict_steps(series, start=1000).members,
    )
    np.testing.assert_array_equal(
        loaded.predict(5, series).members, forecaster.predict(5, series).members
    )
    assert loaded.config_dict() == forecaster.config_dict()


def test_reference_network_mae_over_seeds():
    # The reference workflow's network (windows of 20, layers of 10 and 10, SGD
    # at 1e-6 with momentum 0.9, 100 epochs) scored MAE 4.51 in its published
    # run and 5.09 with seed 0 under Keras 3.15. Seeds 0-4 train as one stack.
    series = synthetic_series()
    forecaster = Forecaster(executions=5, seed=0).fit(series, 1000)
    members = forecaster.predict_steps(start=1000).members
    actual = series.values[1000:]
    scores = [mae(actual, member) for member in members]
    mean_score = float(np.mean(scores))
    assert 4.3 <= mean_score <= 5.2, f"MAE per seed 0-4: {scores}"


def test_predict_continues_dates():
    time = pd.date_range("2000-01-01", periods=60, freq="D")
    values = synthetic_series(length=60).values
    series = Series(values, time)
    forecaster = Forecaster(DenseConfig(window_size=5, hidden=(4,)), training=SHORT)
    forecaster.fit(series, 50)
    forecast = forecaster.predict(3)
    assert list(forecast.time) == list(
        pd.date_range("2000-03-01", periods=3, freq="D")
    )
    assert forecast.mean.shape == (3,)
    assert np.isfinite(forecast.mean).all()


@pytest.mark.parametrize("executions", [1, 3])
def test_forecast_mean_of_members(executions):
    series = synthetic_series()
    forecaster = Forecaster(training=SHORT, executions=executions).fit(series, 1000)
    forecast = forecaster.predict_steps(start=1000)
    assert forecast.members.shape == (executions, 461)
    np.testing.assert_allclose(
        forecast.mean, forecast.members.mean(axis=0), rtol=1e-6
    )


def test_loaded_forecaster_continues_saved_series(tmp_path):
    series = synthetic_series()
    forecaster = Forecaster(training=TrainConfig(epochs=2)).fit(series, split=1000)
    forecaster.save(tmp_path / "model")
    loaded = Forecaster.load(tmp_path / "model")
    np.testing.assert_allclose(
        loaded.predict(3).mean, forecaster.predict(3).mean, rtol=1e-6
    )
    np.testing.assert_array_equal(loaded.series_.values, series.values)


def test_loaded_forecaster_without_series_needs_one(tmp_path):
    series = synthetic_series()
    forecaster = Forecaster(training=TrainConfig(epochs=1)).fit(series, split=1000)
    forecaster.save(tmp_path / "model")
    (tmp_path / "model" / "series.npz").unlink()
    loaded = Forecaster.load(tmp_path / "model")
    with pytest.raises(SeqcastError, match="pass series="):
        loaded.predict(3)
    assert loaded.predict(3, series).mean.shape == (3,)


def test_saved_weights_readable_like_other_files(tmp_path):
    series = synthetic_series()
    Forecaster(training=TrainConfig(epochs=1)).fit(series, 1000).save(tmp_path / "m")
    folder = tmp_path / "m"
    modes = {path.name: path.stat().st_mode & 0o777 for path in folder.iterdir()}
    assert modes["weights.safetensors"] == modes["config.json"]
