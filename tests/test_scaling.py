"""Tests for scaling a series by statistics of its training split."""

import numpy as np
import pytest

from seqcast.data import synthetic_series
from seqcast.errors import SeqcastError
from seqcast.forecasting import Forecaster
from seqcast.optimizers import OptimizerConfig
from seqcast.scaling import Scaler
from seqcast.training import TrainConfig


def test_standard_scaler_statistics():
    scaler = Scaler.fit([1.0, 2.0, 3.0, 4.0], "standard")
    assert scaler.center == pytest.approx(2.5, abs=1e-12)
    assert scaler.scale == pytest.approx(np.std([1.0, 2.0, 3.0, 4.0]), abs=1e-12)


def test_minmax_scaler_maps_to_unit_range():
    scaler = Scaler.fit([5.0, 7.0, 9.0], "minmax")
    np.testing.assert_allclose(scaler.transform([5.0, 9.0]), [0.0, 1.0], atol=1e-7)


def test_scaler_round_trip():
    values = np.array([300.5, 310.25, 329.0], np.float32)
    scaler = Scaler.fit(values, "standard")
    restored = scaler.inverse_transform(scaler.transform(values))
    np.testing.assert_allclose(restored, values, rtol=1e-6)


def test_none_scaler_is_identity():
    values = np.array([1.5, -2.0], np.float32)
    scaler = Scaler.fit(values, "none")
    np.testing.assert_array_equal(scaler.transform(values), values)


def test_constant_training_values_rejected():
    with pytest.raises(SeqcastError, match="constant"):
        Scaler.fit([2.0, 2.0, 2.0], "standard")


def test_unknown_method_rejected():
    with pytest.raises(SeqcastError, match="unknown scaling 'log'"):
        Scaler.fit([1.0, 2.0], "log")


def test_scaler_ignores_validation_values():
    series = synthetic_series()
    forecaster = Forecaster(training=TrainConfig(epochs=1), scale="standard")
    forecaster.fit(series, split=1000)
    expected = float(np.mean(series.values[:1000], dtype=np.float64))
    assert forecaster.scaler_.center == pytest.approx(expected, rel=1e-9)


def test_scaled_forecasts_in_series_units():
    # Values near 1000 make the reference rate of 1e-6 learn almost nothing in
    # 20 epochs. On standard-scaled values a rate of 1e-2 fits, and forecasts
    # come back in the series' units.
    series = synthetic_series(baseline=1000.0)
    training = TrainConfig(epochs=20)
    scaled = Forecaster(
        optimizer=OptimizerConfig(learning_rate=1e-2),
        training=training,
        scale="standard",
    ).fit(series, 1000)
    raw = Forecaster(training=training).fit(series, 1000)
    actual = series.values[1000:]
    scaled_mae = np.abs(scaled.predict_steps(start=1000).mean - actual).mean()
    raw_mae = np.abs(raw.predict_steps(start=1000).mean - actual).mean()
    assert scaled_mae < 10.0
    assert raw_mae > 4 * scaled_mae


def test_saved_scaler_restored(tmp_path):
    series = synthetic_series(baseline=500.0)
    forecaster = Forecaster(training=TrainConfig(epochs=2), scale="minmax")
    forecaster.fit(series, split=1000)
    forecaster.save(tmp_path / "model")
    loaded = Forecaster.load(tmp_path / "model")
    assert loaded.scaler_ == forecaster.scaler_
    np.testing.assert_allclose(
        loaded.predict(4, series).mean, forecaster.predict(4).mean, rtol=1e-6
    )
