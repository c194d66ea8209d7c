"""Statistical baseline forecasts: naive, moving average and seasonal differencing.

Every forecast function takes the whole series and the first step to forecast,
`start`, and returns a float32 array whose element `i` forecasts step `start + i`
from values before that step only. Values are converted to float32, the dtype of
a seqcast series. Each mean accumulates in float32, so it equals NumPy's own
`mean` of that float32 window.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from seqcast.errors import SeqcastError

BASELINE_NAMES = (
    "naive",
    "moving_average",
    "seasonal_difference",
    "seasonal_difference_smoothed",
)


def _as_series(values) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise SeqcastError(
            f"values could not be read as float32 numbers ({error}); "
            "pass a 1-D array of numbers"
        ) from None
    if array.ndim != 1 or array.size == 0:
        raise SeqcastError(
            f"values has shape {array.shape}; pass a non-empty 1-D array of shape (n,)"
        )
    return array


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool):
        raise SeqcastError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise SeqcastError(
            f"{name} must be an integer >= {minimum}, got {value!r}"
        ) from None
    if number < minimum:
        raise SeqcastError(f"{name} must be an integer >= {minimum}, got {number}")
    return number


def _check_range(
    start, end, n: int, needed: int, reason: str, fix: str
) -> tuple[int, int]:
    """Validate `start` and `end` against the series length and the history needed."""
    start = _check_int("start", start, 0)
    end = n if end is None else _check_int("end", end, 0)
    if start < needed:
        raise SeqcastError(
            f"start {start} is too early because {reason} needs start >= {needed}; "
            f"{fix}"
        )
    if not start < end <= n:
        raise SeqcastError(
            f"end {end} is invalid for start {start} and a series of {n} values; "
            f"pass {start} < end <= {n}"
        )
    return start, end


def _seasonal_needed(season: int, window: int, smooth_window: int | None) -> int:
    """Return the smallest `start` for which the seasonal forecasts are defined."""
    needed = season + window
    if smooth_window is not None:
        needed = max(needed, season + smooth_window // 2)
    return needed


def _check_seasonal(season, window, smooth_window) -> tuple[int, int, int | None]:
    season = _check_int("season", season, 1)
    window = _check_int("window", window, 1)
    if smooth_window is not None:
        smooth_window = _check_int("smooth_window", smooth_window, 1)
        if smooth_window > 2 * season:
            raise SeqcastError(
                f"smooth_window {smooth_window} is too wide for season {season} "
                "because the window centred one season back would reach the forecast "
                f"step; use smooth_window <= {2 * season}"
            )
    return season, window, smooth_window


def moving_average(values, window: int) -> np.ndarray:
    """Compute the mean of every full window of consecutive values.

    Args:
        values: the series, shape (n,).
        window: how many consecutive values each mean covers, 1 <= window <= n.

    Returns:
        float32 array of shape (n - window + 1,) whose element i is
        mean(values[i:i + window]).

    Raises:
        SeqcastError: if values is not a non-empty 1-D array or window is out of
            range.

    Example:
        >>> moving_average([1.0, 2.0, 3.0, 4.0], 2).tolist()
        [1.5, 2.5, 3.5]
    """
    array = _as_series(values)
    window = _check_int("window", window, 1)
    if window > array.size:
        raise SeqcastError(
            f"window {window} is longer than the {array.size} values given; "
            f"use window <= {array.size}"
        )
    return sliding_window_view(array, window).mean(axis=-1, dtype=np.float32)


def naive_forecast(values, start: int, end: int | None = None) -> np.ndarray:
    """Forecast each step as the value one step before it.

    Args:
        values: the series, shape (n,).
        start: the first step to forecast, 1 <= start < end.
        end: one past the last step to forecast, at most n. Defaults to n.

    Returns:
        float32 array of shape (end - start,) whose element i is
        values[start + i - 1].

    Raises:
        SeqcastError: if start or end is out of range.

    Example:
        >>> naive_forecast([1.0, 2.0, 4.0, 8.0], start=2).tolist()
        [2.0, 4.0]
    """
    array = _as_series(values)
    start, end = _check_range(
        start, end, array.size, 1, "the naive forecast", "pass start >= 1"
    )
    return array[start - 1 : end - 1].copy()


def moving_average_forecast(
    values, window: int, start: int, end: int | None = None
) -> np.ndarray:
    """Forecast each step as the mean of the `window` values before it.

    Args:
        values: the series, shape (n,).
        window: how many past values to average, at least 1.
        start: the first step to forecast, window <= start < end.
        end: one past the last step to forecast, at most n. Defaults to n.

    Returns:
        float32 array of shape (end - start,) whose element i is
        mean(values[t - window:t]) for step t = start + i.

    Raises:
        SeqcastError: if window, start or end is out of range.

    Example:
        >>> moving_average_forecast([1.0, 2.0, 3.0, 4.0, 5.0], 2, start=3).tolist()
        [2.5, 3.5]
    """
    array = _as_series(values)
    window = _check_int("window", window, 1)
    start, end = _check_range(
        start,
        end,
        array.size,
        window,
        f"a moving average of {window} values",
        "pass a later start or a smaller window",
    )
    return moving_average(array[start - window : end - 1], window)


def seasonal_difference_forecast(
    values,
    season: int,
    window: int,
    start: int,
    end: int | None = None,
    smooth_window: int | None = None,
) -> np.ndarray:
    """Forecast the seasonal difference by its moving average and add the past back.

    The seasonal difference at step t is values[t] - values[t - season]. The
    forecast for step t is the mean of that difference over steps t - window to
    t - 1, plus values[t - season]. With `smooth_window` k, the value added back
    is instead the mean of the k values centred one season back,
    values[t - season - k // 2 : t - season - k // 2 + k]. For an even k that
    window has one more value before t - season than after it: season 365 and
    k = 10 average values[t - 370 : t - 360]. All values used lie before step t
    because k <= 2 * season is required.

    Args:
        values: the series, shape (n,).
        season: the length of one seasonal cycle in steps, at least 1.
        window: how many seasonal differences to average, at least 1.
        start: the first step to forecast, at least season + window, and at least
            season + smooth_window // 2 when smoothing; start < end.
        end: one past the last step to forecast, at most n. Defaults to n.
        smooth_window: how many values around step t - season to average, from 1
            to 2 * season, or None to add back values[t - season] alone.

    Returns:
        float32 array of shape (end - start,) whose element i forecasts step
        start + i.

    Raises:
        SeqcastError: if season, window, smooth_window, start or end is out of
            range.

    Example:
        >>> yearly = [0.0, 5.0, 1.0, 6.0, 2.0, 7.0, 3.0, 8.0]
        >>> seasonal_difference_forecast(yearly, 2, 2, start=6).tolist()
        [3.0, 8.0]
    """
    array = _as_series(values)
    season, window, smooth_window = _check_seasonal(season, window, smooth_window)
    start, end = _check_range(
        start,
        end,
        array.size,
        _seasonal_needed(season, window, smooth_window),
        f"seasonal differencing with season {season}, window {window} and "
        f"smooth_window {smooth_window}",
        "pass a later start or smaller windows",
    )
    # Seasonal differences at steps start - window .. end - 2, so that each
    # forecast step t averages the differences at t - window .. t - 1.
    recent = array[start - window : end - 1]
    year_before = array[start - window - season : end - 1 - season]
    trend = moving_average(recent - year_before, window)
    if smooth_window is None:
        past = array[start - season : end - season]
    else:
        first = start - season - smooth_window // 2
        last = first + (end - start) + smooth_window - 1
        past = moving_average(array[first:last], smooth_window)
    return trend + past


@dataclass(frozen=True)
class Baselines:
    """The baseline forecasts of one validation range, and why any were skipped.

    Attributes:
        forecasts: forecast arrays of shape (end - start,) by baseline name, in
            the order of `BASELINE_NAMES`, holding only the baselines computed.
        labels: a short description of every baseline, computed or skipped, by
            name, for tables, such as "moving average (30)".
        skipped: the reason each baseline left out of `forecasts` was skipped, by
            name, written to follow the label in a report.
    """

    forecasts: dict[str, np.ndarray]
    labels: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)

    def describe(self, name: str) -> str:
        """Return the short description of baseline `name` for tables."""
        if name not in self.labels:
            raise SeqcastError(
                f"unknown baseline {name!r}; use one of {', '.join(BASELINE_NAMES)}"
            )
        return self.labels[name]


def baseline_forecasts(
    values,
    start: int,
    end: int | None = None,
    *,
    season: int | None = None,
    moving_average_window: int = 30,
    difference_window: int = 50,
    smooth_window: int | None = 10,
) -> Baselines:
    """Compute every baseline that the series history allows for steps start..end-1.

    The naive forecast is always computed. A baseline whose history before
    `start` is too short, or a seasonal baseline when `season` is None, is left
    out of `forecasts` and its reason stored in `skipped`, so a report can show
    the others. Invalid settings, such as a window of 0, raise instead.

    Args:
        values: the series, shape (n,).
        start: the first step to forecast (usually the split), 1 <= start < end.
        end: one past the last step to forecast, at most n. Defaults to n.
        season: the length of one seasonal cycle in steps, or None to skip the
            seasonal baselines.
        moving_average_window: how many past values the moving average covers.
        difference_window: how many seasonal differences the seasonal
            baselines average.
        smooth_window: how many values around one season back the smoothed
            seasonal baseline averages, or None to skip that baseline.

    Returns:
        A `Baselines` whose forecasts each have shape (end - start,).

    Raises:
        SeqcastError: if a setting is invalid or start or end is out of range.

    Example:
        >>> result = baseline_forecasts([1.0, 2.0, 3.0, 4.0, 5.0], start=3,
        ...                             moving_average_window=2)
        >>> {name: forecast.tolist() for name, forecast in result.forecasts.items()}
        {'naive': [3.0, 4.0], 'moving_average': [2.5, 3.5]}
        >>> result.skipped["seasonal_difference"].startswith("no season is known")
        True
    """
    array = _as_series(values)
    window = _check_int("moving_average_window", moving_average_window, 1)
    labels = {"naive": "naive", "moving_average": f"moving average ({window})"}
    forecasts = {"naive": naive_forecast(array, start, end)}
    skipped: dict[str, str] = {}
    if start >= window:
        forecasts["moving_average"] = moving_average_forecast(array, window, start, end)
    else:
        skipped["moving_average"] = (
            f"needs start >= {window} for {window} past values, got start {start}"
        )

    difference_window = _check_int("difference_window", difference_window, 1)
    if smooth_window is not None:
        smooth_window = _check_int("smooth_window", smooth_window, 1)
    if season is not None:
        season, _, _ = _check_seasonal(season, difference_window, smooth_window)
    labels.update(_seasonal_labels(season, difference_window, smooth_window))

    plain_reason = _seasonal_skip_reason(start, season, difference_window, None)
    if smooth_window is None:
        smoothed_reason = "smooth_window is None; pass a smoothing window such as 10"
    else:
        smoothed_reason = _seasonal_skip_reason(
            start, season, difference_window, smooth_window
        )
    variants = [
        ("seasonal_difference", None, plain_reason),
        ("seasonal_difference_smoothed", smooth_window, smoothed_reason),
    ]
    for name, smoothing, reason in variants:
        if reason is not None:
            skipped[name] = reason
            continue
        forecasts[name] = seasonal_difference_forecast(
            array, season, difference_window, start, end, smooth_window=smoothing
        )
    return Baselines(forecasts=forecasts, labels=labels, skipped=skipped)


def _seasonal_labels(
    season: int | None, window: int, smooth_window: int | None
) -> dict[str, str]:
    season_text = "" if season is None else f" ({season})"
    plain = f"seasonal difference{season_text} + moving average ({window})"
    smoothing_text = "" if smooth_window is None else f" ({smooth_window})"
    return {
        "seasonal_difference": plain,
        "seasonal_difference_smoothed": f"{plain}, smoothed past{smoothing_text}",
    }


def _seasonal_skip_reason(
    start: int, season: int | None, window: int, smooth_window: int | None
) -> str | None:
    """Return why a seasonal baseline cannot be computed, or None if it can."""
    if season is None:
        return (
            "no season is known for this series, so give one with --season "
            "(season= in Python), such as 12 for monthly values"
        )
    needed = _seasonal_needed(season, window, smooth_window)
    if start < needed:
        return (
            f"needs start >= {needed}, one season ({season}) plus {needed - season} "
            f"steps of history before it, got start {start}"
        )
    return None
