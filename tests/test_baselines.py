"""Tests for the baseline forecasts.

The reference figures are those of the Keras-style forecasting workflow that
seqcast follows, which works in NumPy on float32 arrays. Its synthetic series is
a trend plus a yearly pattern plus Gaussian noise from `np.random.RandomState(42)`.
The workflow's forecasts are the naive `series[999:-1]`, the 30-value moving
average, the moving average of 50 seasonal differences
`series[365:] - series[:-365]` plus `series[635:-365]`, and the same plus
`moving_average(series[630:1101], 10)` for the smoothed past.
"""

import numpy as np
import pytest

from seqcast.baselines import (
    BASELINE_NAMES,
    Baselines,
    baseline_forecasts,
    moving_average,
    moving_average_forecast,
    naive_forecast,
    seasonal_difference_forecast,
)
from seqcast.errors import SeqcastError

SPLIT = 1000
SEASON = 365
TOLERANCE = 5e-5


def synthetic_series(
    amplitude: float = 15.0, noise_level: float = 6.0, seed: int = 42
) -> np.ndarray:
    """Build the textbook series of 4 * 365 + 1 daily values as float32."""
    time = np.arange(4 * 365 + 1)
    season_time = (time % 365) / 365
    pattern = np.where(
        season_time < 0.4,
        np.cos(season_time * 2 * np.pi),
        1 / np.exp(3 * season_time),
    )
    noise = np.random.RandomState(seed).randn(len(time)) * noise_level
    series = 10 + 0.09 * time + amplitude * pattern + noise
    return series.astype(np.float32)


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    return synthetic_series()


@pytest.fixture(scope="module")
def validation_errors(series) -> dict[str, tuple[float, float]]:
    """Return the validation (MAE, MSE) of each baseline, computed in float32."""
    result = baseline_forecasts(series, SPLIT, season=SEASON)
    actual = series[SPLIT:]
    errors = {}
    for name, forecast in result.forecasts.items():
        difference = actual - forecast
        errors[name] = (
            float(np.mean(np.abs(difference))),
            float(np.mean(difference**2)),
        )
    return errors


def test_helper_matches_main_series():
    # The main series of the workflow (amplitude 20, noise 5) prints 109.170746.
    value = synthetic_series(amplitude=20.0, noise_level=5.0)[1000]
    assert value == pytest.approx(109.170746, abs=1e-5)


@pytest.mark.parametrize(
    ("name", "expected_mae", "expected_mse"),
    [
        ("naive", 6.8993, 76.4749),
        ("moving_average", 5.5328, 49.0444),
        ("seasonal_difference", 7.0072, 76.2821),
        ("seasonal_difference_smoothed", 5.1360, 40.9023),
    ],
)
def test_reference_validation_errors(
    validation_errors, name, expected_mae, expected_mse
):
    mae, mse = validation_errors[name]
    assert mae == pytest.approx(expected_mae, abs=TOLERANCE), f"{name} MAE"
    assert mse == pytest.approx(expected_mse, abs=TOLERANCE), f"{name} MSE"


def test_reference_forecasts_are_float32(series):
    result = baseline_forecasts(series, SPLIT, season=SEASON)
    for name in BASELINE_NAMES:
        assert result.forecasts[name].dtype == np.float32, name
        assert result.forecasts[name].shape == (461,), name


def test_forecasts_match_textbook_slices(series):
    # Each forecast is rebuilt here with a plain loop over float32 slices, in
    # the way the textbook computes it, and must agree to float32 rounding.
    def loop_average(values, window):
        count = len(values) - window
        return np.array([values[i : i + window].mean() for i in range(count)])

    differences = series[SEASON:] - series[:-SEASON]
    trend = loop_average(differences, 50)[SPLIT - SEASON - 50 :]
    expected = {
        "naive": series[SPLIT - 1 : -1],
        "moving_average": loop_average(series, 30)[SPLIT - 30 :],
        "seasonal_difference": series[SPLIT - SEASON : -SEASON] + trend,
        "seasonal_difference_smoothed": loop_average(series[630:1101], 10) + trend,
    }
    result = baseline_forecasts(series, SPLIT, season=SEASON)
    for name, forecast in expected.items():
        np.testing.assert_allclose(
            result.forecasts[name], forecast, rtol=1e-6, err_msg=name
        )


def test_moving_average_values():
    result = moving_average(np.array([1.0, 2.0, 3.0, 4.0, 6.0]), 2)
    np.testing.assert_array_equal(result, [1.5, 2.5, 3.5, 5.0])
    assert result.dtype == np.float32


def test_moving_average_matches_loop():
    values = np.random.RandomState(0).randn(200).astype(np.float32)
    for window in (1, 7, 8, 9, 31, 200):
        expected = [values[i : i + window].mean() for i in range(201 - window)]
        np.testing.assert_allclose(
            moving_average(values, window),
            expected,
            rtol=1e-6,
            atol=1e-7,
            err_msg=f"window {window}",
        )


def test_moving_average_window_too_long():
    with pytest.raises(SeqcastError, match="window 5 is longer than the 4 values"):
        moving_average([1.0, 2.0, 3.0, 4.0], 5)


def test_naive_forecast_values():
    values = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    np.testing.assert_array_equal(naive_forecast(values, 2), [2.0, 4.0, 8.0])
    np.testing.assert_array_equal(naive_forecast(values, 1, end=3), [1.0, 2.0])


def test_moving_average_forecast_values():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    forecast = moving_average_forecast(values, 3, start=3)
    np.testing.assert_allclose(forecast, [2.0, 3.0, 4.0], rtol=1e-7)
    forecast = moving_average_forecast(values, 2, start=2, end=4)
    np.testing.assert_allclose(forecast, [1.5, 2.5], rtol=1e-7)


def test_seasonal_difference_by_hand():
    # Season 2, window 2: steps 4, 5 and 6 have differences 4, 3 and 5. Step 6
    # gets mean(4, 3) + values[4] = 7.5 and step 7 mean(3, 5) + values[5] = 9.
    values = np.array([0.0, 1.0, 0.0, 2.0, 4.0, 5.0, 9.0, 7.0])
    forecast = seasonal_difference_forecast(values, 2, 2, start=6)
    np.testing.assert_allclose(forecast, [7.5, 9.0], rtol=1e-7)


def test_smoothed_past_uses_centred_window():
    # With season 4 and smooth_window 3, step t adds back the mean of
    # values[t - 5 : t - 2] and, with smooth_window 4, of values[t - 6 : t - 2].
    values = np.arange(20, dtype=np.float32) ** 2
    start = 10
    plain = seasonal_difference_forecast(values, 4, 1, start)
    trend = plain - values[start - 4 : 20 - 4]
    for smooth_window, first in ((3, 5), (4, 6)):
        smoothed = seasonal_difference_forecast(
            values, 4, 1, start, smooth_window=smooth_window
        )
        past = [values[t - first : t - 2].mean() for t in range(start, 20)]
        np.testing.assert_allclose(
            smoothed - trend, past, rtol=1e-6, err_msg=f"k={smooth_window}"
        )


def test_forecasts_ignore_values_after_step(series):
    # Changing the values from step 1200 on must not change any forecast of
    # the steps up to 1200.
    changed = series.copy()
    changed[1200:] = 0.0
    original = baseline_forecasts(series, SPLIT, season=SEASON)
    altered = baseline_forecasts(changed, SPLIT, season=SEASON)
    for name in BASELINE_NAMES:
        np.testing.assert_array_equal(
            original.forecasts[name][:201], altered.forecasts[name][:201], name
        )


def test_baselines_without_season_skip_seasonal(series):
    result = baseline_forecasts(series, SPLIT)
    assert list(result.forecasts) == ["naive", "moving_average"]
    assert "give one with --season" in result.skipped["seasonal_difference"]
    assert "give one with --season" in result.skipped["seasonal_difference_smoothed"]


def test_baselines_short_history_skipped(series):
    # Season 365 with 50 differences needs start >= 415.
    result = baseline_forecasts(series, 414, season=SEASON)
    assert list(result.forecasts) == ["naive", "moving_average"]
    assert result.skipped["seasonal_difference"] == (
        "needs start >= 415, one season (365) plus 50 steps of history before it, "
        "got start 414"
    )
    assert "needs start >= 415" in result.skipped["seasonal_difference_smoothed"]


def test_baselines_smoothing_needs_more_history():
    # A smoothing window of 10 reaches 5 steps before t - season, further back
    # than 2 differences, so only the smoothed variant is skipped.
    values = np.arange(30, dtype=np.float32)
    result = baseline_forecasts(
        values, 12, season=10, moving_average_window=3, difference_window=2
    )
    assert "seasonal_difference" in result.forecasts
    assert result.skipped["seasonal_difference_smoothed"].startswith(
        "needs start >= 15"
    )


def test_baselines_moving_average_skipped():
    result = baseline_forecasts(np.arange(40.0), 10, moving_average_window=30)
    assert "moving_average" not in result.forecasts
    assert result.skipped["moving_average"] == (
        "needs start >= 30 for 30 past values, got start 10"
    )


def test_baselines_without_smoothing(series):
    result = baseline_forecasts(series, SPLIT, season=SEASON, smooth_window=None)
    assert "seasonal_difference" in result.forecasts
    assert "smooth_window is None" in result.skipped["seasonal_difference_smoothed"]


def test_baselines_labels(series):
    result = baseline_forecasts(series, SPLIT, season=SEASON)
    assert isinstance(result, Baselines)
    assert result.describe("naive") == "naive"
    assert result.describe("moving_average") == "moving average (30)"
    assert result.describe("seasonal_difference") == (
        "seasonal difference (365) + moving average (50)"
    )
    assert result.describe("seasonal_difference_smoothed") == (
        "seasonal difference (365) + moving average (50), smoothed past (10)"
    )
    assert result.skipped == {}


def test_baselines_describe_unknown(series):
    result = baseline_forecasts(series, SPLIT)
    with pytest.raises(SeqcastError, match="unknown baseline 'drift'"):
        result.describe("drift")


def test_baselines_end_limits_length(series):
    result = baseline_forecasts(series, SPLIT, 1100, season=SEASON)
    for name in BASELINE_NAMES:
        assert result.forecasts[name].shape == (100,), name


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda v: moving_average(v, 0), "window must be an integer >= 1, got 0"),
        (lambda v: moving_average(v, 2.5), "window must be an integer >= 1, got 2.5"),
        (lambda v: moving_average(v, True), "window must be an integer >= 1"),
        (lambda v: naive_forecast(v, 0), "naive forecast needs start >= 1"),
        (lambda v: naive_forecast(v, 5, end=5), "end 5 is invalid for start 5"),
        (lambda v: naive_forecast(v, 5, end=101), "pass 5 < end <= 100"),
        (lambda v: naive_forecast(v, 100), "end 100 is invalid for start 100"),
        (lambda v: naive_forecast(v, -1), "start must be an integer >= 0, got -1"),
        (
            lambda v: moving_average_forecast(v, 30, 29),
            "start 29 is too early because a moving average of 30 values needs "
            "start >= 30; pass a later start or a smaller window",
        ),
        (
            lambda v: seasonal_difference_forecast(v, 0, 5, 50),
            "season must be an integer >= 1, got 0",
        ),
        (
            lambda v: seasonal_difference_forecast(v, 10, 5, 14),
            "needs start >= 15",
        ),
        (
            lambda v: seasonal_difference_forecast(v, 10, 5, 50, smooth_window=21),
            "smooth_window 21 is too wide for season 10",
        ),
        (
            lambda v: seasonal_difference_forecast(v, 10, 2, 14, smooth_window=10),
            "needs start >= 15",
        ),
        (
            lambda v: baseline_forecasts(v, 50, difference_window=0),
            "difference_window must be an integer >= 1, got 0",
        ),
        (
            lambda v: baseline_forecasts(v, 50, moving_average_window=0),
            "moving_average_window must be an integer >= 1, got 0",
        ),
        (
            lambda v: baseline_forecasts(v, 50, season=-3),
            "season must be an integer >= 1, got -3",
        ),
    ],
)
def test_invalid_arguments_raise(call, message):
    values = np.arange(100, dtype=np.float32)
    with pytest.raises(SeqcastError, match=message):
        call(values)


def test_series_shape_checked():
    with pytest.raises(SeqcastError, match=r"values has shape \(10, 2\)"):
        naive_forecast(np.zeros((10, 2)), 1)
    with pytest.raises(SeqcastError, match=r"values has shape \(0,\)"):
        naive_forecast([], 1)
    with pytest.raises(SeqcastError, match="could not be read as float32"):
        naive_forecast(["a", "b"], 1)


def test_smoothed_window_bound_is_inclusive():
    # k = 2 * season is the widest window that still ends before step t.
    values = np.arange(30, dtype=np.float32)
    forecast = seasonal_difference_forecast(values, 3, 1, 10, smooth_window=6)
    assert forecast.shape == (20,)
