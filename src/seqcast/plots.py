"""Figures of forecasts, training histories, learning-rate sweeps and searches.

Every public function builds a ``matplotlib.figure.Figure`` on the Agg canvas,
writes it as a PNG through :func:`seqcast.files.atomic_path` and returns the path.
The figures are never registered with ``pyplot``, so no global figure state is
created or needs closing, and plotting works without a display.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from seqcast import files
from seqcast.errors import SeqcastError

_DPI = 120
# A y axis turns logarithmic when its positive values span more than this ratio.
_LOG_SPAN = 100.0


def _png_path(path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise SeqcastError(
            f"plot path {str(target)!r} does not end in .png; plots are written as "
            "PNG, so name the file with a .png suffix"
        )
    return target


def _new_figure(width: float = 9.0, height: float = 4.5) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, target: Path) -> Path:
    with files.atomic_path(target) as temporary:
        figure.savefig(temporary, format="png", dpi=_DPI)
    return target


def _as_float_array(
    name: str, values: Any, ndims: tuple[int, ...] = (1,)
) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SeqcastError(
            f"{name} must contain numbers, but converting it failed: {e}; pass a "
            "numeric array"
        ) from e
    if array.ndim not in ndims:
        shapes = " or ".join(f"{n}-D" for n in ndims)
        raise SeqcastError(
            f"{name} has shape {array.shape}, but a {shapes} array is expected; "
            "reshape it"
        )
    if array.shape[0] == 0:
        raise SeqcastError(f"{name} is empty; pass at least one value")
    return array


def _check_length(name: str, array: np.ndarray, length: int, against: str) -> None:
    if array.shape[0] != length:
        raise SeqcastError(
            f"{name} has {array.shape[0]} values but {against} has {length}; pass "
            "arrays of the same length"
        )


def _positive_rates(name: str, values: Any) -> np.ndarray:
    rates = _as_float_array(name, values)
    if not np.all(np.isfinite(rates) & (rates > 0)):
        raise SeqcastError(
            f"{name} must be finite and positive for a log axis, got minimum "
            f"{np.nanmin(rates):.3g}; remove the invalid rates"
        )
    return rates


def _positive_rate(name: str, value: float) -> float:
    rate = float(value)
    if not (math.isfinite(rate) and rate > 0):
        raise SeqcastError(
            f"{name} must be a finite positive learning rate, got {value!r}; pass "
            "a rate > 0"
        )
    return rate


def _limits(name: str, limits: Sequence[float] | None, positive: bool = False):
    if limits is None:
        return None
    try:
        low, high = (float(value) for value in limits)
    except (TypeError, ValueError) as e:
        raise SeqcastError(
            f"{name} {limits!r} is invalid; pass a pair (low, high)"
        ) from e
    valid = math.isfinite(low) and math.isfinite(high) and low < high
    if not valid or (positive and low <= 0):
        needed = "0 < low < high" if positive else "low < high"
        raise SeqcastError(f"{name} {limits!r} is invalid; pass finite {needed}")
    return low, high


def _wants_log_scale(values: np.ndarray) -> bool:
    """Return whether the finite values are all positive and span over two decades."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or np.any(finite <= 0):
        return False
    return finite.max() / finite.min() > _LOG_SPAN


def _spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the mean, minimum and maximum of the finite values of each row."""
    finite = np.where(np.isfinite(values), values, np.nan)
    with warnings.catch_warnings():
        # Rows where every value is NaN give NaN, which matplotlib leaves out.
        warnings.simplefilter("ignore", RuntimeWarning)
        return (
            np.nanmean(finite, axis=-1),
            np.nanmin(finite, axis=-1),
            np.nanmax(finite, axis=-1),
        )


def _note(axes, text: str) -> None:
    axes.text(
        0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center",
        color="0.4",
    )  # fmt: skip


def _time_axis(time: Any, length: int) -> tuple[np.ndarray, bool]:
    """Return the x values and whether they are dates."""
    if isinstance(time, pd.Index | pd.Series) and pd.api.types.is_datetime64_any_dtype(
        time
    ):
        index = pd.DatetimeIndex(time)
        if index.tz is not None:
            # Plot the local wall-clock times, not their UTC equivalents.
            index = index.tz_localize(None)
        values = index.to_numpy()
    else:
        values = np.asarray(time)
    if values.ndim != 1:
        raise SeqcastError(
            f"time has shape {values.shape}; pass a 1-D array or a DatetimeIndex"
        )
    if values.shape[0] != length:
        raise SeqcastError(
            f"time has {values.shape[0]} values but actual has {length}; pass the "
            "time steps of the plotted values"
        )
    if values.dtype.kind == "M":
        return values, True
    if values.dtype.kind in "iuf":
        return values, False
    raise SeqcastError(
        f"time has dtype {values.dtype}; pass numbers, numpy datetime64 values or "
        "a pandas DatetimeIndex"
    )


def _forecast_figure(
    time: Any,
    actual: Any,
    forecasts: Mapping[str, Any],
    *,
    title: str | None = None,
) -> Figure:
    """Build the figure that :func:`plot_forecast` saves."""
    actual_values = _as_float_array("actual", actual)
    x, is_date = _time_axis(time, actual_values.shape[0])
    curves = {}
    for name, forecast in forecasts.items():
        values = _as_float_array(f"forecast {name!r}", forecast)
        _check_length(f"forecast {name!r}", values, actual_values.shape[0], "actual")
        curves[str(name)] = values

    figure = _new_figure()
    axes = figure.add_subplot()
    # The actual values are drawn last (zorder 3) so no forecast hides them.
    axes.plot(
        x, actual_values, color="black", linewidth=1.6, label="actual", zorder=3
    )
    for index, (name, values) in enumerate(curves.items()):
        axes.plot(x, values, color=f"C{index}", linewidth=1.2, label=name)
    if is_date:
        locator = mdates.AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes.set_xlabel("date" if is_date else "time step")
    axes.set_ylabel("value")
    if title is None:
        title = "forecasts over the validation split"
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    return figure


def plot_forecast(
    path: str | os.PathLike[str],
    time: Any,
    actual: Any,
    forecasts: Mapping[str, Any],
    *,
    title: str | None = None,
) -> Path:
    """Plot the actual values and each named forecast against time.

    Args:
        path: the PNG file to write.
        time: the time of each value, shape (n,): a pandas ``DatetimeIndex`` or
            datetime64 array (the x axis then shows dates) or numbers.
        actual: the observed values, shape (n,).
        forecasts: forecast name to values of shape (n,), drawn in that order.
        title: the figure title; by default it names the validation split.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        SeqcastError: if a shape or length does not match, or ``path`` does not
            end in ``.png``.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> values = np.sin(np.arange(50) / 5)
        >>> plot_forecast(folder / "f.png", np.arange(50), values,
        ...               {"naive": np.roll(values, 1)}).name
        'f.png'
    """
    target = _png_path(path)
    return _save(_forecast_figure(time, actual, forecasts, title=title), target)


def _history_figure(history: Mapping[str, Any]) -> Figure:
    """Build the figure that :func:`plot_history` saves."""
    if not history:
        raise SeqcastError("history is empty; pass at least one metric, e.g. 'loss'")
    curves = {
        str(name): _as_float_array(f"history[{name!r}]", values, ndims=(1, 2))
        for name, values in history.items()
    }

    figure = _new_figure(8.0, 4.5)
    axes = figure.add_subplot()
    for index, (name, values) in enumerate(curves.items()):
        color = f"C{index}"
        epochs = np.arange(1, values.shape[-1] + 1)
        if values.ndim == 1:
            axes.plot(epochs, values, color=color, linewidth=1.8, label=name)
            continue
        for row in values:
            axes.plot(epochs, row, color=color, linewidth=0.6, alpha=0.35)
        mean, _, _ = _spread(values.T)
        label = f"{name} (mean of {values.shape[0]} models)"
        axes.plot(epochs, mean, color=color, linewidth=2.2, label=label)
    if _wants_log_scale(np.concatenate([v.ravel() for v in curves.values()])):
        axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("value")
    axes.set_title("training history")
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    return figure


def plot_history(path: str | os.PathLike[str], history: Mapping[str, Any]) -> Path:
    """Plot each metric of a training history against the epoch.

    Args:
        path: the PNG file to write.
        history: metric name (such as ``"loss"`` or ``"val_loss"``) to values of
            shape (epochs,) or (models, epochs). For a model stack each model is
            drawn thin and the mean over the models whose value is finite bold.
            NaN marks epochs a model did not train and leaves a gap.

    Returns:
        ``path`` as a ``Path``. The y axis is logarithmic when all finite values
        are positive and span more than two decades.

    Raises:
        SeqcastError: if ``history`` is empty or a metric is not a 1-D or 2-D
            numeric array, or ``path`` does not end in ``.png``.
    """
    target = _png_path(path)
    return _save(_history_figure(history), target)


def _lr_sweep_figure(
    rates: Any,
    losses: Any,
    *,
    suggestion: float | None = None,
    xlim: Sequence[float] | None = None,
    ylim: Sequence[float] | None = None,
) -> Figure:
    """Build the figure that :func:`plot_lr_sweep` saves."""
    rate_values = _positive_rates("rates", rates)
    loss_values = _as_float_array("losses", losses)
    _check_length("losses", loss_values, rate_values.shape[0], "rates")
    x_limits = _limits("xlim", xlim, positive=True)
    y_limits = _limits("ylim", ylim)
    suggested = None if suggestion is None else _positive_rate("suggestion", suggestion)

    figure = _new_figure(8.0, 4.5)
    axes = figure.add_subplot()
    finite = np.isfinite(loss_values)
    axes.plot(rate_values[finite], loss_values[finite], color="C0", label="loss")
    if not finite.any():
        _note(axes, "every loss is NaN or infinite")
    if suggested is not None:
        axes.axvline(
            suggested, color="C3", linestyle="--",
            label=f"suggested learning rate {suggested:.3g}",
        )  # fmt: skip
    axes.set_xscale("log")
    if x_limits is not None:
        axes.set_xlim(*x_limits)
    if y_limits is not None:
        axes.set_ylim(*y_limits)
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    axes.set_title("learning-rate sweep")
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    return figure


def plot_lr_sweep(
    path: str | os.PathLike[str],
    rates: Any,
    losses: Any,
    *,
    suggestion: float | None = None,
    xlim: Sequence[float] | None = None,
    ylim: Sequence[float] | None = None,
) -> Path:
    """Plot the loss against the learning rate of a learning-rate sweep.

    Args:
        path: the PNG file to write.
        rates: the learning rate of each step of the sweep, shape (n,), all > 0.
            The x axis is logarithmic.
        losses: the loss at each rate, shape (n,). NaN and infinite losses are
            left out.
        suggestion: a learning rate to mark with a dashed vertical line.
        xlim: (low, high) learning-rate range to show; by default all rates.
        ylim: (low, high) loss range to show; by default all finite losses.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        SeqcastError: if the lengths differ, a rate or the suggestion is not
            positive, a limit is not an increasing pair, or ``path`` does not end
            in ``.png``.
    """
    target = _png_path(path)
    figure = _lr_sweep_figure(
        rates, losses, suggestion=suggestion, xlim=xlim, ylim=ylim
    )
    return _save(figure, target)


def _plot_with_spread(axes, rates, values, color, label):
    """Draw a curve, with a min-max band when ``values`` has executions."""
    if values.ndim == 1:
        finite = np.isfinite(values)
        return axes.plot(
            rates[finite], values[finite], "o-", color=color, markersize=3,
            label=label,
        )[0]  # fmt: skip
    mean, low, high = _spread(values)
    axes.fill_between(rates, low, high, color=color, alpha=0.2, linewidth=0)
    label = f"{label} (mean, min-max of {values.shape[1]} executions)"
    return axes.plot(rates, mean, "o-", color=color, markersize=3, label=label)[0]


def _diverged_mask(diverged: Any, train_loss: np.ndarray, count: int) -> np.ndarray:
    if diverged is None:
        return ~np.isfinite(train_loss.reshape(count, -1)).all(axis=1)
    mask = np.asarray(diverged)
    if mask.dtype != bool or mask.ndim not in (1, 2) or mask.shape[0] != count:
        raise SeqcastError(
            f"diverged has dtype {mask.dtype} and shape {mask.shape}; pass a "
            f"boolean array of shape ({count},) or ({count}, executions)"
        )
    return mask.reshape(count, -1).any(axis=1)


def _exact_sweep_figure(
    rates: Any,
    train_loss: Any,
    val_mae: Any,
    *,
    best: float | None = None,
    diverged: Any = None,
) -> Figure:
    """Build the figure that :func:`plot_exact_sweep` saves."""
    rate_values = _positive_rates("rates", rates)
    count = rate_values.shape[0]
    loss_values = _as_float_array("train_loss", train_loss, ndims=(1, 2))
    mae_values = _as_float_array("val_mae", val_mae, ndims=(1, 2))
    _check_length("train_loss", loss_values, count, "rates")
    _check_length("val_mae", mae_values, count, "rates")
    best_rate = None if best is None else _positive_rate("best", best)
    diverged_mask = _diverged_mask(diverged, loss_values, count)

    figure = _new_figure()
    loss_axes = figure.add_subplot()
    mae_axes = loss_axes.twinx()
    handles = [
        _plot_with_spread(loss_axes, rate_values, loss_values, "C0", "training loss"),
        _plot_with_spread(mae_axes, rate_values, mae_values, "C1", "validation MAE"),
    ]
    for axes, values in ((loss_axes, loss_values), (mae_axes, mae_values)):
        if _wants_log_scale(values):
            axes.set_yscale("log")
    if diverged_mask.any():
        # x in data units, y in axes units: the marks sit along the top edge.
        handles += loss_axes.plot(
            rate_values[diverged_mask], np.full(diverged_mask.sum(), 0.96), "x",
            color="C3", markersize=8, markeredgewidth=2, clip_on=False,
            transform=loss_axes.get_xaxis_transform(), label="diverged",
        )  # fmt: skip
    if best_rate is not None:
        handles.append(
            loss_axes.axvline(
                best_rate, color="C2", linestyle="--",
                label=f"best learning rate {best_rate:.3g}",
            )
        )  # fmt: skip
    loss_axes.set_xscale("log")
    loss_axes.set_xlabel("learning rate")
    loss_axes.set_ylabel("training loss", color="C0")
    mae_axes.set_ylabel("validation MAE", color="C1")
    loss_axes.set_title("training loss and validation MAE per learning rate")
    loss_axes.grid(alpha=0.3)
    loss_axes.legend(handles=handles, loc="best")
    return figure


def plot_exact_sweep(
    path: str | os.PathLike[str],
    rates: Any,
    train_loss: Any,
    val_mae: Any,
    *,
    best: float | None = None,
    diverged: Any = None,
) -> Path:
    """Plot the training loss and validation MAE of each fixed learning rate.

    The training loss uses the left y axis and the validation MAE the right one.
    Either axis is logarithmic when its positive values span over two decades.

    Args:
        path: the PNG file to write.
        rates: the learning rates, shape (rates,), all > 0. The x axis is
            logarithmic.
        train_loss: final training loss, shape (rates,) or (rates, executions).
            With executions the mean is drawn with a band from the minimum to the
            maximum over the executions whose value is finite.
        val_mae: validation MAE, shaped like ``train_loss``.
        best: a learning rate to mark with a dashed vertical line.
        diverged: boolean array of shape (rates,) or (rates, executions). A rate
            is marked with an x along the top edge when any of its executions
            diverged. By default, rates with a NaN or infinite training loss in
            any execution are marked.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        SeqcastError: if the shapes do not match, a rate or ``best`` is not
            positive, or ``path`` does not end in ``.png``.
    """
    target = _png_path(path)
    figure = _exact_sweep_figure(
        rates, train_loss, val_mae, best=best, diverged=diverged
    )
    return _save(figure, target)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _plot_hyperparameter(axes, name, values, scores, best_index) -> None:
    """Draw the scores against one hyperparameter's values."""
    sampled = [value for value in values if value is not None]
    if all(_is_number(value) for value in sampled):
        # Trials that did not sample this hyperparameter have None and are left out.
        x = np.array([np.nan if v is None else float(v) for v in values])
        if _wants_log_scale(x):
            axes.set_xscale("log")
    else:
        categories = list(dict.fromkeys(str(value) for value in values))
        positions = {category: i for i, category in enumerate(categories)}
        x = np.array([positions[str(value)] for value in values], dtype=float)
        axes.set_xticks(range(len(categories)), categories)
        axes.set_xlim(-0.5, len(categories) - 0.5)
    shown = np.isfinite(x) & np.isfinite(scores)
    axes.scatter(x[shown], scores[shown], s=18, color="C0", alpha=0.7)
    if best_index is not None and shown[best_index]:
        axes.scatter(
            x[best_index], scores[best_index], s=110, marker="*", color="C3",
            zorder=3, label="best trial",
        )  # fmt: skip
    if not shown.any():
        _note(axes, "no finite scores")
    axes.set_xlabel(name)
    axes.grid(alpha=0.3)


def _search_figure(
    hyperparameters: Mapping[str, Sequence[Any]],
    scores: Sequence[float],
    *,
    objective: str = "loss",
) -> Figure:
    """Build the figure that :func:`plot_search` saves."""
    score_values = _as_float_array("scores", scores)
    if not hyperparameters:
        raise SeqcastError(
            "hyperparameters is empty; pass at least one name with one value per "
            "trial"
        )
    columns = {}
    for name, values in hyperparameters.items():
        values = list(values)
        if len(values) != score_values.shape[0]:
            raise SeqcastError(
                f"hyperparameter {name!r} has {len(values)} values but scores has "
                f"{score_values.shape[0]}; pass one value per trial"
            )
        columns[str(name)] = values
    finite = np.isfinite(score_values)
    best_index = int(np.argmin(np.where(finite, score_values, np.inf)))
    best_index = best_index if finite.any() else None

    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    figure = _new_figure(3.6 * ncols + 0.4, 3.0 * nrows + 0.5)
    grid = figure.subplots(nrows, ncols, sharey=True, squeeze=False)
    for axes, (name, values) in zip(grid.flat, columns.items(), strict=False):
        _plot_hyperparameter(axes, name, values, score_values, best_index)
    for axes in grid.flat[len(columns) :]:
        axes.set_visible(False)
    for axes in grid[:, 0]:
        axes.set_ylabel(objective)
    if _wants_log_scale(score_values):
        grid[0, 0].set_yscale("log")
    labelled, _ = grid[0, 0].get_legend_handles_labels()
    if labelled:
        grid[0, 0].legend(loc="best")
    finite_count = int(finite.sum())
    figure.suptitle(
        f"{objective} of {finite_count} trials per hyperparameter (lower is better)"
    )
    return figure


def plot_search(
    path: str | os.PathLike[str],
    hyperparameters: Mapping[str, Sequence[Any]],
    scores: Sequence[float],
    *,
    objective: str = "loss",
) -> Path:
    """Plot each trial's score against each hyperparameter, one panel apiece.

    Args:
        path: the PNG file to write.
        hyperparameters: hyperparameter name to its value in each trial, every
            list as long as ``scores``. Lists of numbers get a numeric axis
            (logarithmic when positive and over two decades wide), and ``None``
            entries, for trials that did not sample the hyperparameter, are left
            out. Any other list is drawn as categories in order of first
            appearance.
        scores: the objective of each trial. NaN and infinite scores are left
            out. The lowest score is marked as the best trial.
        objective: the name of the score, such as ``"val_mae"``, for the labels.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        SeqcastError: if there are no hyperparameters or scores, a list's length
            differs from that of ``scores``, or ``path`` does not end in ``.png``.
    """
    target = _png_path(path)
    figure = _search_figure(hyperparameters, scores, objective=objective)
    return _save(figure, target)
