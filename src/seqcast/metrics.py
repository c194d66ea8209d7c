"""Forecast error metrics with strict shape checks.

Every metric takes the actual values and the predictions, each of shape (N,) or
(N, 1). A trailing axis of size 1 is dropped and the two shapes must then be the
same 1-D shape, so a (N, 1) column is never broadcast against a (N,) vector into
an N x N grid of errors. Inputs are read as float64 copies, so float32 arrays
are left as given and every figure is returned as a Python float.

NaN in the inputs is not an error: the metric returns nan, so a model whose
training diverged still gets a figure, and a ranking can place it last.
"""

from __future__ import annotations

import operator

import numpy as np

from seqcast.errors import SeqcastError


def _as_vector(name: str, values) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise SeqcastError(
            f"{name} could not be read as numbers ({error}); pass a numeric array"
        ) from None
    if array.ndim >= 2 and array.shape[-1] == 1:
        array = array[..., 0]
    return array


def _pair(actual, predicted) -> tuple[np.ndarray, np.ndarray]:
    """Return actual and predicted as float64 vectors of one shape (N,)."""
    actual_vector = _as_vector("actual", actual)
    predicted_vector = _as_vector("predicted", predicted)
    if (
        actual_vector.ndim != 1
        or predicted_vector.ndim != 1
        or actual_vector.shape != predicted_vector.shape
    ):
        raise SeqcastError(
            f"actual has shape {np.shape(actual)} and predicted has shape "
            f"{np.shape(predicted)}; pass two arrays of one length N, each of shape "
            "(N,) or (N, 1)"
        )
    if actual_vector.size == 0:
        raise SeqcastError("actual and predicted are empty; pass at least one value")
    return actual_vector, predicted_vector


def _check_season(season) -> int:
    if isinstance(season, bool):
        raise SeqcastError(f"season must be an integer >= 1, got {season!r}")
    try:
        number = operator.index(season)
    except TypeError:
        raise SeqcastError(f"season must be an integer >= 1, got {season!r}") from None
    if number < 1:
        raise SeqcastError(f"season must be an integer >= 1, got {number}")
    return number


def mae(actual, predicted) -> float:
    """Compute the mean absolute error.

    Args:
        actual: the observed values, shape (N,) or (N, 1).
        predicted: the forecasts, shape (N,) or (N, 1).

    Returns:
        mean(|actual - predicted|), in the units of the series; nan if any input
        is NaN.

    Raises:
        SeqcastError: if the shapes differ after dropping a trailing axis of size
            1, or the arrays are empty.

    Example:
        >>> mae([1.0, 2.0, 3.0], [2.0, 2.0, 5.0])
        1.0
    """
    actual_vector, predicted_vector = _pair(actual, predicted)
    return float(np.mean(np.abs(actual_vector - predicted_vector)))


def mse(actual, predicted) -> float:
    """Compute the mean squared error.

    Args:
        actual: the observed values, shape (N,) or (N, 1).
        predicted: the forecasts, shape (N,) or (N, 1).

    Returns:
        mean((actual - predicted) ** 2), in squared units of the series; nan if
        any input is NaN.

    Raises:
        SeqcastError: if the shapes differ after dropping a trailing axis of size
            1, or the arrays are empty.

    Example:
        >>> mse([1.0, 2.0, 3.0], [2.0, 2.0, 5.0])
        1.6666666666666667
    """
    actual_vector, predicted_vector = _pair(actual, predicted)
    return float(np.mean(np.square(actual_vector - predicted_vector)))


def rmse(actual, predicted) -> float:
    """Compute the root mean squared error, the square root of `mse`.

    Args:
        actual: the observed values, shape (N,) or (N, 1).
        predicted: the forecasts, shape (N,) or (N, 1).

    Returns:
        sqrt(mean((actual - predicted) ** 2)), in the units of the series; nan if
        any input is NaN.

    Raises:
        SeqcastError: if the shapes differ after dropping a trailing axis of size
            1, or the arrays are empty.

    Example:
        >>> rmse([0.0, 0.0], [3.0, -3.0])
        3.0
    """
    return float(np.sqrt(mse(actual, predicted)))


def mape(actual, predicted) -> float:
    """Compute the mean absolute percentage error.

    MAPE divides by each actual value, so it is undefined when any actual value
    is 0 and this function raises in that case. `evaluate` returns None instead.

    Args:
        actual: the observed values, shape (N,) or (N, 1), none of them 0.
        predicted: the forecasts, shape (N,) or (N, 1).

    Returns:
        100 * mean(|actual - predicted| / |actual|), in percent; nan if any input
        is NaN.

    Raises:
        SeqcastError: if any actual value is 0, the shapes differ after dropping a
            trailing axis of size 1, or the arrays are empty.

    Example:
        >>> mape([100.0, 200.0], [150.0, 100.0])
        50.0
    """
    actual_vector, predicted_vector = _pair(actual, predicted)
    zeros = int(np.count_nonzero(actual_vector == 0))
    if zeros:
        raise SeqcastError(
            f"MAPE is undefined because {zeros} of {actual_vector.size} actual "
            "values are 0; use sMAPE or MAE instead"
        )
    errors = np.abs(actual_vector - predicted_vector) / np.abs(actual_vector)
    return float(100.0 * np.mean(errors))


def smape(actual, predicted) -> float:
    """Compute the symmetric mean absolute percentage error.

    Each term is 2 * |actual - predicted| / (|actual| + |predicted|), so the
    result lies between 0 and 200 percent. A term whose actual value and
    prediction are both 0 is a perfect forecast and counts as 0.

    Args:
        actual: the observed values, shape (N,) or (N, 1).
        predicted: the forecasts, shape (N,) or (N, 1).

    Returns:
        100 * the mean of the terms, in percent; nan if any input is NaN.

    Raises:
        SeqcastError: if the shapes differ after dropping a trailing axis of size
            1, or the arrays are empty.

    Example:
        >>> smape([100.0, 0.0], [300.0, 0.0])
        50.0
    """
    actual_vector, predicted_vector = _pair(actual, predicted)
    scale = np.abs(actual_vector) + np.abs(predicted_vector)
    both_zero = scale == 0
    terms = 2.0 * np.abs(actual_vector - predicted_vector)
    terms = np.where(both_zero, 0.0, terms / np.where(both_zero, 1.0, scale))
    return float(100.0 * np.mean(terms))


def _naive_scale(training, season: int) -> tuple[float | None, str]:
    """Return the in-sample MAE of the seasonal naive forecast, or None and why."""
    if training is None:
        return None, "MASE needs training; pass the values before the split"
    training_vector = _as_vector("training", training)
    if training_vector.ndim != 1:
        raise SeqcastError(
            f"training has shape {np.shape(training)}; pass shape (T,) or (T, 1)"
        )
    if training_vector.size <= season:
        return None, (
            f"training has {training_vector.size} values but the seasonal naive "
            f"forecast with season {season} needs more than {season}; pass a "
            "longer training series or a smaller season"
        )
    scale = float(np.mean(np.abs(training_vector[season:] - training_vector[:-season])))
    if scale == 0:
        return None, (
            f"the seasonal naive forecast with season {season} fits training "
            "exactly, so MASE would divide by 0; use MAE instead"
        )
    return scale, ""


def mase(actual, predicted, *, training=None, season: int = 1) -> float:
    """Compute the mean absolute scaled error.

    MASE is the MAE of the forecasts divided by the MAE of the seasonal naive
    forecast inside `training`, which predicts each training value by the one
    `season` steps before it. Below 1, the forecasts beat that in-sample naive
    forecast.

    Args:
        actual: the observed values, shape (N,) or (N, 1).
        predicted: the forecasts, shape (N,) or (N, 1).
        training: the values before the split, shape (T,) or (T, 1) with
            T > season.
        season: the lag of the seasonal naive forecast in steps; 1 gives the
            plain naive forecast.

    Returns:
        The scaled error, without unit; nan if any input is NaN.

    Raises:
        SeqcastError: if training is missing, not of shape (T,) or (T, 1), has at
            most `season` values or is fitted exactly by the seasonal naive
            forecast, if season < 1, or if the shapes of actual and predicted
            differ or they are empty.

    Example:
        >>> mase([5.0, 6.0], [5.5, 6.5], training=[1.0, 2.0, 3.0, 4.0])
        0.5
    """
    season = _check_season(season)
    error = mae(actual, predicted)
    scale, reason = _naive_scale(training, season)
    if scale is None:
        raise SeqcastError(reason)
    return error / scale


def evaluate(
    actual, predicted, *, training=None, season: int = 1
) -> dict[str, float | None]:
    """Compute every metric of this module for one forecast.

    A metric that is undefined for these inputs is None rather than an error.
    "mape" is None when any actual value is 0. "mase" is None when training is
    None, has at most `season` values or is fitted exactly by its seasonal naive
    forecast.

    Args:
        actual: the observed values, shape (N,) or (N, 1).
        predicted: the forecasts, shape (N,) or (N, 1).
        training: the values before the split for MASE, shape (T,) or (T, 1), or
            None.
        season: the lag of the seasonal naive forecast that scales MASE.

    Returns:
        A dict with the keys "mae", "mse", "rmse", "mape", "smape" and "mase".

    Raises:
        SeqcastError: if season < 1, training is not of shape (T,) or (T, 1), or
            the shapes of actual and predicted differ or they are empty.

    Example:
        >>> figures = evaluate([1.0, 0.0], [2.0, 0.0])
        >>> figures["mae"], figures["mape"], figures["mase"]
        (0.5, None, None)
    """
    season = _check_season(season)
    actual_vector, predicted_vector = _pair(actual, predicted)
    error = mae(actual_vector, predicted_vector)
    squared_error = mse(actual_vector, predicted_vector)
    scale, _ = _naive_scale(training, season)
    has_zero = bool(np.any(actual_vector == 0))
    return {
        "mae": error,
        "mse": squared_error,
        "rmse": float(np.sqrt(squared_error)),
        "mape": None if has_zero else mape(actual_vector, predicted_vector),
        "smape": smape(actual_vector, predicted_vector),
        "mase": None if scale is None else error / scale,
    }
