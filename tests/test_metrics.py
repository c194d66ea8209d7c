"""Tests for the forecast error metrics, with expected values computed by hand."""

import math

import numpy as np
import pytest

from seqcast.errors import SeqcastError
from seqcast.metrics import evaluate, mae, mape, mase, mse, rmse, smape

METRICS = [mae, mse, rmse, mape, smape]


def test_mae_by_hand():
    # |1 - 2| + |2 - 2| + |3 - 5| = 3, over 3 values.
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0, abs=1e-12)


def test_mse_by_hand():
    # (1 + 0 + 4) / 3.
    assert mse([1, 2, 3], [2, 2, 5]) == pytest.approx(5 / 3, abs=1e-12)


def test_rmse_by_hand():
    assert rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt(5 / 3), abs=1e-12)


def test_mape_by_hand():
    # |100 - 110| / 100 = 10 % and |200 - 150| / 200 = 25 %, mean 17.5 %.
    assert mape([100, 200], [110, 150]) == pytest.approx(17.5, abs=1e-12)


def test_mape_negative_actuals():
    # The denominator is |actual|: |-50 - (-40)| / 50 = 20 %.
    assert mape([-50.0], [-40.0]) == pytest.approx(20.0, abs=1e-12)


def test_smape_by_hand():
    # 2 * 200 / (100 + 300) = 1 and 2 * 10 / (50 + 40) = 2/9, mean 61.11 %.
    expected = 100 * (1 + 2 / 9) / 2
    assert smape([100, 50], [300, 40]) == pytest.approx(expected, abs=1e-12)


def test_smape_counts_zero_over_zero_as_zero():
    # The second pair (0, 0) contributes 0; the first 2 * 1 / 3.
    expected = 100 * (2 / 3 + 0.0) / 2
    assert smape([1.0, 0.0], [2.0, 0.0]) == pytest.approx(expected, abs=1e-12)


def test_smape_opposite_signs_reach_200():
    assert smape([1.0], [-1.0]) == pytest.approx(200.0, abs=1e-12)


def test_mase_by_hand():
    # Training 1, 3, 2, 6 has naive (season 1) errors 2, 1, 4: scale 7/3.
    # Forecast errors 1 and 3 give MAE 2, so MASE = 2 / (7/3) = 6/7.
    training = [1.0, 3.0, 2.0, 6.0]
    result = mase([5.0, 7.0], [6.0, 4.0], training=training)
    assert result == pytest.approx(6 / 7, abs=1e-12)


def test_mase_seasonal_lag():
    # Season 2 on training 1, 3, 2, 6, 4: errors |2-1|, |6-3|, |4-2|, scale 2.
    training = np.array([1.0, 3.0, 2.0, 6.0, 4.0])
    result = mase([5.0], [8.0], training=training, season=2)
    assert result == pytest.approx(1.5, abs=1e-12)


def test_mase_accepts_column_training():
    training = np.array([[1.0], [3.0], [2.0], [6.0]])
    result = mase([5.0, 7.0], [6.0, 4.0], training=training)
    assert result == pytest.approx(6 / 7, abs=1e-12)


def test_mase_without_training():
    with pytest.raises(SeqcastError, match="MASE needs training"):
        mase([1.0], [2.0])


def test_mase_short_training():
    with pytest.raises(
        SeqcastError, match="training has 3 values but .* season 3 needs more than 3"
    ):
        mase([1.0], [2.0], training=[1.0, 2.0, 3.0], season=3)


def test_mase_constant_training():
    with pytest.raises(SeqcastError, match="would divide by 0; use MAE instead"):
        mase([1.0], [2.0], training=[4.0, 4.0, 4.0])


def test_mase_invalid_season():
    with pytest.raises(SeqcastError, match="season must be an integer >= 1, got 0"):
        mase([1.0], [2.0], training=[1.0, 2.0], season=0)


def test_mase_bad_training_shape():
    with pytest.raises(SeqcastError, match=r"training has shape \(2, 2\)"):
        mase([1.0], [2.0], training=np.ones((2, 2)))


def test_column_predictions_not_broadcast():
    # NumPy would broadcast (3,) against (3, 1) into a 3 x 3 grid with MAE 8/9.
    actual = np.array([1.0, 2.0, 3.0])
    predicted = np.array([[1.0], [2.0], [3.0]])
    assert mae(actual, predicted) == 0.0
    assert mse(actual, predicted) == 0.0
    assert mae(predicted, actual) == 0.0


def test_both_columns_accepted():
    actual = np.array([[1.0], [2.0]])
    assert mae(actual, np.array([[2.0], [4.0]])) == pytest.approx(1.5, abs=1e-12)


@pytest.mark.parametrize("metric", METRICS)
def test_length_mismatch_names_both_shapes(metric):
    message = r"actual has shape \(3,\) and predicted has shape \(2, 1\)"
    with pytest.raises(SeqcastError, match=message):
        metric([1.0, 2.0, 3.0], [[1.0], [2.0]])


@pytest.mark.parametrize("metric", METRICS)
def test_two_dimensional_rejected(metric):
    message = r"actual has shape \(2, 2\) and predicted has shape \(4,\)"
    with pytest.raises(SeqcastError, match=message):
        metric(np.ones((2, 2)), np.ones(4))


@pytest.mark.parametrize("metric", METRICS)
def test_row_vector_rejected(metric):
    # A (1, N) row is not squeezed, so it never pairs with a (N,) vector.
    with pytest.raises(SeqcastError, match=r"actual has shape \(1, 3\)"):
        metric(np.ones((1, 3)), np.ones(3))


@pytest.mark.parametrize("metric", METRICS)
def test_empty_rejected(metric):
    with pytest.raises(SeqcastError, match="actual and predicted are empty"):
        metric([], [])


def test_scalar_rejected():
    with pytest.raises(SeqcastError, match=r"actual has shape \(\)"):
        mae(1.0, 1.0)


def test_non_numeric_rejected():
    with pytest.raises(SeqcastError, match="predicted could not be read as numbers"):
        mae([1.0], ["x"])


def test_mape_zero_actuals_message():
    with pytest.raises(SeqcastError) as raised:
        mape([0.0, 1.0, 0.0, 4.0], [1.0, 1.0, 1.0, 1.0])
    assert str(raised.value) == (
        "MAPE is undefined because 2 of 4 actual values are 0; use sMAPE or MAE instead"
    )


@pytest.mark.parametrize("metric", METRICS)
def test_nan_prediction_returns_nan(metric):
    assert math.isnan(metric([1.0, 2.0], [1.0, np.nan]))


def test_mase_nan_prediction_returns_nan():
    assert math.isnan(mase([1.0, 2.0], [np.nan, 2.0], training=[1.0, 2.0, 4.0]))


def test_results_are_python_floats():
    actual = np.array([1.0, 2.0], dtype=np.float32)
    predicted = np.array([1.5, 2.5], dtype=np.float32)
    for metric in METRICS:
        assert type(metric(actual, predicted)) is float, metric.__name__
    assert type(mase(actual, predicted, training=[1.0, 2.0])) is float


def test_float32_inputs_unchanged():
    actual = np.array([1.0, 2.0], dtype=np.float32)
    predicted = np.array([[1.5], [2.5]], dtype=np.float32)
    evaluate(actual, predicted, training=actual)
    assert actual.dtype == np.float32
    assert predicted.shape == (2, 1)


def test_evaluate_all_keys():
    training = [1.0, 3.0, 2.0, 6.0]
    figures = evaluate([5.0, 7.0], [[6.0], [4.0]], training=training)
    assert list(figures) == ["mae", "mse", "rmse", "mape", "smape", "mase"]
    assert figures["mae"] == pytest.approx(2.0, abs=1e-12)
    assert figures["mse"] == pytest.approx(5.0, abs=1e-12)
    assert figures["rmse"] == pytest.approx(math.sqrt(5.0), abs=1e-12)
    assert figures["mape"] == pytest.approx(100 * (1 / 5 + 3 / 7) / 2, abs=1e-12)
    assert figures["smape"] == pytest.approx(100 * (2 / 11 + 6 / 11) / 2, abs=1e-12)
    assert figures["mase"] == pytest.approx(6 / 7, abs=1e-12)


def test_evaluate_zero_actual_gives_no_mape():
    figures = evaluate([0.0, 2.0], [1.0, 2.0])
    assert figures["mape"] is None
    assert figures["mae"] == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize(
    "training",
    [None, [1.0, 2.0], [3.0, 3.0, 3.0, 3.0]],
    ids=["missing", "too-short", "constant"],
)
def test_evaluate_undefined_mase_is_none(training):
    figures = evaluate([1.0, 2.0], [1.5, 2.5], training=training, season=2)
    assert figures["mase"] is None


def test_evaluate_column_pair_not_broadcast():
    figures = evaluate([1.0, 2.0, 3.0], [[1.0], [2.0], [3.0]])
    assert figures["mae"] == 0.0
    assert figures["mse"] == 0.0


def test_evaluate_rejects_bad_shapes():
    with pytest.raises(SeqcastError, match="actual has shape"):
        evaluate([1.0, 2.0], [1.0])


def test_evaluate_rejects_invalid_season():
    with pytest.raises(SeqcastError, match="season must be an integer >= 1"):
        evaluate([1.0], [1.0], season=0)


def test_evaluate_nan_prediction():
    figures = evaluate([1.0, 2.0], [np.nan, 2.0], training=[1.0, 2.0, 4.0])
    for name in ("mae", "mse", "rmse", "mape", "smape", "mase"):
        assert math.isnan(figures[name]), name


def test_reference_baseline_figures_in_float64():
    # The float32 baseline forecasts of the textbook series reach the published
    # figures at 4 decimals with these float64 metrics too. Series: trend
    # 10 + 0.09 t, yearly pattern of amplitude 15, noise 6 from seed 42.
    from seqcast.baselines import baseline_forecasts

    time = np.arange(1461)
    season_time = (time % 365) / 365
    pattern = np.where(
        season_time < 0.4, np.cos(season_time * 2 * np.pi), 1 / np.exp(3 * season_time)
    )
    noise = np.random.RandomState(42).randn(len(time)) * 6
    series = (10 + 0.09 * time + 15 * pattern + noise).astype(np.float32)
    forecasts = baseline_forecasts(series, 1000, season=365).forecasts
    expected = {
        "naive": (6.8993, 76.4749),
        "moving_average": (5.5328, 49.0444),
        "seasonal_difference": (7.0072, 76.2821),
        "seasonal_difference_smoothed": (5.1360, 40.9023),
    }
    for name, (expected_mae, expected_mse) in expected.items():
        figures = evaluate(series[1000:], forecasts[name])
        assert figures["mae"] == pytest.approx(expected_mae, abs=5e-5), name
        assert figures["mse"] == pytest.approx(expected_mse, abs=5e-5), name
