"""Learning-rate sweeps: the published sweep, its suggestion rule, and exact sweeps.

:func:`lr_sweep` trains one model while its learning rate grows every epoch,
by default from 1e-8 ten times larger every 20 epochs for 100 epochs, and
records each epoch's loss. The weights move while the rate changes, so the
curve only approximates what each rate would give on its own.
:func:`suggest_learning_rate` reads one rate off such a curve.

:func:`exact_sweep` answers the same question without that approximation: it
trains every rate of a grid from the same initialisations for the full number
of epochs, all in one model stack, and ranks the rates by validation MAE.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from seqcast import metrics, plots
from seqcast.data import Series, as_series
from seqcast.errors import SeqcastError
from seqcast.forecasting import predict_windows
from seqcast.models import DenseConfig
from seqcast.optimizers import OptimizerConfig
from seqcast.schedules import ExponentialSweep, Schedule
from seqcast.training import TrainConfig, TrainResult, train_stack
from seqcast.windows import label_window_starts

logger = logging.getLogger(__name__)

SUGGESTION_RULE = "smoothed-minimum"
SUGGESTION_RULE_HELP = (
    "the rate at the lowest point of the loss curve, after dropping every epoch "
    "from the first NaN or infinite loss or the first loss above 4 times the "
    "lowest loss so far, and smoothing log(loss) with a centred moving average "
    "of 9 epochs (fewer when under 18 epochs remain)"
)

# The default grid of the exact sweep: 1e-8 to about 3.2e-3, two rates a decade.
# Python's float power gives 1e-5 exactly, where NumPy's gives 9.999999999999999e-06.
DEFAULT_EXACT_RATES = np.array([10.0 ** (k / 2) for k in range(-16, -4)])

# A suggestion needs at least this many usable epochs.
_MIN_POINTS = 5
# Epochs averaged by the moving average of log(loss); 9 epochs are about half a
# decade of rate on the published sweep. Short curves use at most half their
# epochs, so that the average cannot flatten the whole curve.
_SMOOTHING = 9
# A loss above this multiple of the lowest loss so far marks divergence.
_BLOWUP_FACTOR = 4.0
# The default plot shows losses up to this multiple of the lowest loss.
_PLOT_LOSS_FACTOR = 8.0


@dataclasses.dataclass(frozen=True)
class Suggestion:
    """A learning rate read off a sweep, or the reason why none could be.

    Attributes:
        rate: the suggested learning rate, or ``None``.
        reason: why ``rate`` is ``None``, or ``None`` when a rate is suggested.
        rule: the name of the rule that produced the suggestion.
    """

    rate: float | None
    reason: str | None = None
    rule: str = SUGGESTION_RULE


def _float_vector(name: str, values) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SeqcastError(
            f"{name} must be a sequence of numbers, got {values!r}"
        ) from None
    if array.ndim != 1:
        raise SeqcastError(
            f"{name} must be 1-D, got shape {array.shape}; pass one value per epoch"
        )
    return array


def _check_positive_rates(rates: np.ndarray) -> None:
    valid = np.isfinite(rates) & (rates > 0)
    if not valid.all():
        bad = float(rates[~valid][0])
        raise SeqcastError(f"learning rates must be finite and positive, got {bad!r}")


def _usable_length(losses: np.ndarray) -> int:
    """Return how many leading epochs come before the sweep diverges.

    The sweep counts as diverged from the first loss that is not finite or that
    exceeds ``_BLOWUP_FACTOR`` times the lowest loss before it.
    """
    finite = np.isfinite(losses)
    length = len(losses) if finite.all() else int(np.argmin(finite))
    head = losses[:length]
    blown = head > _BLOWUP_FACTOR * np.minimum.accumulate(head)
    return int(np.argmax(blown)) if blown.any() else length


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """Average each value with its neighbours within ``width // 2`` on each side.

    Near the ends the window is cut off, and the average is over the values
    that remain.
    """
    kernel = np.ones(width)
    sums = np.convolve(values, kernel, mode="same")
    counts = np.convolve(np.ones_like(values), kernel, mode="same")
    return sums / counts


def suggest_learning_rate(rates, losses) -> Suggestion:
    """Suggest a learning rate from a sweep's loss curve.

    The rule, named ``"smoothed-minimum"``, returns the rate at the lowest point
    of the curve after two steps. First it drops every epoch from the first
    NaN or infinite loss, or from the first loss above 4 times the lowest loss
    so far, because the weights are then wrecked and later losses carry no
    information about the rate. Then it smooths ``log(loss)`` with a centred
    moving average of 9 epochs, so a single lucky epoch cannot pick the rate.
    Curves of fewer than 18 remaining epochs are averaged over at most half of
    them, rounded down to an odd number.

    Why the minimum: in a sweep the loss falls both because the rate grows and
    because the weights keep training, and it stops falling where the rate
    becomes too large to make progress. Two other common rules read the curve
    further left. Measured with :func:`lr_sweep` on the reference series for
    seeds 0 to 11 (CPU), this rule gives 2.8e-6 to 1.8e-5, around the
    published reading of 1e-5. A tenth of the minimum's rate gives 2.8e-7 to
    1.8e-6, below 1e-6 for 9 seeds. The steepest descent lands on the first
    epochs for 9 seeds, where the drop comes from leaving the initialisation
    rather than from the rate.

    Args:
        rates: the learning rate of each epoch, shape ``(E,)``, finite and
            positive.
        losses: the training loss of each epoch, shape ``(E,)``; NaN or
            infinite where training diverged.

    Returns:
        A :class:`Suggestion`. Its ``rate`` is ``None``, with the ``reason``,
        when fewer than 5 epochs come before the sweep diverged.

    Raises:
        SeqcastError: the arrays differ in length or a rate is not positive.

    Example:
        >>> rates = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3]
        >>> suggest_learning_rate(rates, [9.0, 7.0, 5.0, 4.0, 3.0, 50.0]).rate
        0.0001
    """
    rates = _float_vector("rates", rates)
    losses = _float_vector("losses", losses)
    if len(rates) != len(losses):
        raise SeqcastError(
            f"got {len(rates)} learning rates but {len(losses)} losses; pass one "
            "loss per rate"
        )
    _check_positive_rates(rates)
    if not np.isfinite(losses).any():
        return Suggestion(
            None,
            "every loss of the sweep is NaN or infinite; start the sweep at a "
            "lower learning rate",
        )
    usable = _usable_length(losses)
    if usable < _MIN_POINTS:
        return Suggestion(
            None,
            f"only {usable} epochs come before the loss diverges, but a suggestion "
            f"needs at least {_MIN_POINTS}; start lower or let the rate grow "
            "more slowly",
        )
    width = min(_SMOOTHING, usable // 2)
    width -= 1 - width % 2
    # A loss of exactly 0 would have no logarithm.
    logs = np.log(np.maximum(losses[:usable], np.finfo(np.float64).tiny))
    smoothed = _moving_average(logs, width)
    best = int(np.argmin(smoothed))
    if best == usable - 1 and usable == len(losses):
        logger.info(
            "the loss still falls at the last rate of the sweep, %.3g; a sweep "
            "to higher rates may suggest a higher rate",
            rates[best],
        )
    return Suggestion(float(rates[best]))


@dataclasses.dataclass
class _Windows:
    series: Series
    train_starts: np.ndarray
    val_starts: np.ndarray


def _split_windows(series, split, model: DenseConfig) -> _Windows:
    """Return the start indices of the training and validation windows."""
    series = as_series(series)
    n = len(series)
    split_at = n if split is None else series.split_index(split)
    if split_at < model.span:
        raise SeqcastError(
            f"the training part has {split_at} values but window_size "
            f"{model.window_size} needs at least {model.span}; use a longer "
            "series, a later split or a smaller window_size"
        )
    offset = model.window_size * model.stride
    train = label_window_starts(model.window_size, offset, split_at, model.stride)
    val = label_window_starts(model.window_size, split_at, n, model.stride)
    return _Windows(series, train, val)


def _round_up(value: float) -> float:
    """Round up to one significant digit: 289.6 becomes 300."""
    scale = 10.0 ** math.floor(math.log10(value))
    return math.ceil(value / scale) * scale


@dataclasses.dataclass
class SweepResult:
    """The loss of each epoch of a learning-rate sweep.

    Attributes:
        learning_rates: the rate of each epoch in float64, shape ``(E,)``.
        losses: the training loss of each epoch, shape ``(E,)``; NaN or
            infinite from the epoch where training diverged.
        suggestion: the rate that :func:`suggest_learning_rate` reads off.
        diverged_epoch: the first epoch (from 1) whose loss was not finite,
            or 0.
        schedule: the schedule that was swept.
        result: the trainer's full output for the one model.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    suggestion: Suggestion
    diverged_epoch: int
    schedule: Schedule
    result: TrainResult

    def plot_limits(self) -> tuple[tuple[float, float], tuple[float, float] | None]:
        """Return the default ``(xlim, ylim)`` of :meth:`plot`.

        The x axis spans the swept rates, and for an :class:`ExponentialSweep`
        it ends at the rate one epoch past the last, so the published sweep
        shows 1e-8 to 1e-3. The y axis runs from 0 to 8 times the lowest loss,
        rounded up to one significant digit (300 on the reference series),
        which leaves out the first epochs and the divergence. It is ``None``,
        automatic, when no loss is finite.
        """
        epochs = len(self.learning_rates)
        if isinstance(self.schedule, ExponentialSweep):
            high = float(self.schedule.rate_at(epochs))
        else:
            high = float(self.learning_rates.max())
        xlim = (float(self.learning_rates.min()), high)
        finite = self.losses[np.isfinite(self.losses)]
        if finite.size == 0 or finite.min() <= 0:
            return xlim, None
        top = min(float(finite.max()), _PLOT_LOSS_FACTOR * float(finite.min()))
        return xlim, (0.0, _round_up(top))

    def plot(
        self,
        path: str | os.PathLike[str],
        *,
        xlim: Sequence[float] | None = None,
        ylim: Sequence[float] | None = None,
    ) -> Path:
        """Plot loss against rate with the suggestion marked; write a PNG.

        ``xlim`` and ``ylim`` default to :meth:`plot_limits`.
        """
        default_x, default_y = self.plot_limits()
        return plots.plot_lr_sweep(
            path,
            self.learning_rates,
            self.losses,
            suggestion=self.suggestion.rate,
            xlim=default_x if xlim is None else xlim,
            ylim=default_y if ylim is None else ylim,
        )

    def to_dict(self) -> dict:
        """Return the suggestion and the curve as a JSON-ready dictionary.

        NaN and infinite losses become ``None``.
        """
        return {
            "suggested_learning_rate": self.suggestion.rate,
            "reason": self.suggestion.reason,
            "rule": self.suggestion.rule,
            "losses": _json_floats(self.losses),
            "learning_rates": _json_floats(self.learning_rates),
        }


def _json_floats(values) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values)]


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def lr_sweep(
    series,
    split=1000,
    *,
    model: DenseConfig = DenseConfig(),
    optimizer: OptimizerConfig = OptimizerConfig(),
    training: TrainConfig = TrainConfig(),
    schedule: Schedule = ExponentialSweep(),
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Train one model while the learning rate follows ``schedule``.

    The defaults are the published sweep: rate ``1e-8 * 10 ** (epoch / 20)``
    for 100 epochs, SGD with momentum 0.9, on the windows before ``split``.
    Divergence is expected near the end, so training runs with
    ``on_divergence="mark"``: the loss of a diverged epoch is recorded as NaN
    or infinite and the call returns normally.

    Args:
        series: a :class:`~seqcast.data.Series`, array or pandas Series.
        split: where the training windows end, as for
            :meth:`~seqcast.data.Series.split_index`; ``None`` uses the whole
            series.
        model: the architecture.
        optimizer: the optimizer; its ``learning_rate`` is replaced by the
            schedule.
        training: epochs, batches and loss. ``patience`` must be unset,
            because the sweep needs every epoch.
        schedule: the rates to sweep, evaluated for ``training.epochs``.
        seed: the seed of initialisation and shuffling.
        progress: called as ``progress(epochs_done, epochs)``.

    Returns:
        A :class:`SweepResult` with one loss and one rate per epoch.

    Raises:
        SeqcastError: ``training.patience`` is set, or the split leaves too
            little training data.

    Example:
        >>> from seqcast.data import synthetic_series
        >>> sweep = lr_sweep(synthetic_series(), training=TrainConfig(epochs=5))
        >>> sweep.losses.shape
        (5,)
    """
    if training.patience is not None:
        raise SeqcastError(
            f"a learning-rate sweep trains every epoch, but patience is "
            f"{training.patience}; leave patience unset"
        )
    windows = _split_windows(series, split, model)
    training = dataclasses.replace(training, on_divergence="mark")
    result = train_stack(
        model,
        windows.series.values,
        windows.train_starts,
        seeds=[seed],
        optimizer=optimizer,
        learning_rate=schedule,
        training=training,
        progress=progress,
    )
    steps_per_epoch = math.ceil(len(windows.train_starts) / training.batch_size)
    rates = np.asarray(schedule.rates(training.epochs, steps_per_epoch))[:, 0]
    losses = result.history["loss"][0].astype(np.float64)
    return SweepResult(
        learning_rates=rates.astype(np.float64),
        losses=losses,
        suggestion=suggest_learning_rate(rates, losses),
        diverged_epoch=int(result.diverged_epoch[0]),
        schedule=schedule,
        result=result,
    )


def _nan_mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and population std of each row's finite values, else NaN."""
    finite = np.where(np.isfinite(values), values, np.nan)
    with warnings.catch_warnings():
        # A row without a finite value, a rate whose executions all diverged,
        # gives NaN.
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(finite, axis=1), np.nanstd(finite, axis=1)


@dataclasses.dataclass
class ExactSweepResult:
    """Each fixed learning rate trained as several executions.

    Execution ``j`` of every rate starts from the same weights and shuffle
    order (seed ``seed + j``), so the rates differ only in the rate. Arrays
    have shape ``(K, X)`` for ``K`` rates and ``X`` executions. A diverged
    execution has NaN loss and MAE and is left out of means and stds.

    Attributes:
        rates: the learning rates in increasing order, shape ``(K,)``.
        seeds: the seed of each execution, ``(X,)``.
        train_loss: the training loss of the last epoch trained, or of the best
            epoch when ``patience`` is set.
        val_mae: the validation MAE of each execution's one-step forecasts.
        ensemble_val_mae: the validation MAE of the mean forecast of a rate's
            executions that did not diverge, shape ``(K,)``.
        diverged: which executions diverged.
        result: the trainer's output; model ``k * X + j`` is execution ``j``
            of rate ``k``.
    """

    rates: np.ndarray
    seeds: list[int]
    train_loss: np.ndarray
    val_mae: np.ndarray
    ensemble_val_mae: np.ndarray
    diverged: np.ndarray
    result: TrainResult

    @property
    def loss_mean(self) -> np.ndarray:
        return _nan_mean_std(self.train_loss)[0]

    @property
    def loss_std(self) -> np.ndarray:
        return _nan_mean_std(self.train_loss)[1]

    @property
    def val_mae_mean(self) -> np.ndarray:
        return _nan_mean_std(self.val_mae)[0]

    @property
    def val_mae_std(self) -> np.ndarray:
        return _nan_mean_std(self.val_mae)[1]

    @property
    def diverged_any(self) -> np.ndarray:
        """Which rates had at least one diverged execution, shape ``(K,)``."""
        return self.diverged.any(axis=1)

    @property
    def diverged_all(self) -> np.ndarray:
        """Which rates diverged in every execution, shape ``(K,)``."""
        return self.diverged.all(axis=1)

    @property
    def ranking(self) -> np.ndarray:
        """Rate indices from best to worst.

        Rates whose executions all finished rank first, by mean validation MAE.
        Then come rates where some executions diverged, by the mean over the
        rest, and last the rates where every execution diverged.
        """
        mae = np.where(np.isfinite(self.val_mae_mean), self.val_mae_mean, np.inf)
        return np.lexsort((mae, self.diverged_any, self.diverged_all))

    @property
    def best_rate(self) -> float | None:
        """The first rate of :attr:`ranking`, or ``None`` when no rate trained
        every execution without diverging.

        A rate that diverged in some executions is unstable, so it is never
        recommended even when the others survived.
        """
        best = int(self.ranking[0])
        if self.diverged_any[best]:
            return None
        return float(self.rates[best])

    def rows(self) -> list[dict]:
        """Return one JSON-ready dictionary per rate, NaN as ``None``."""
        rank = np.empty(len(self.rates), dtype=int)
        rank[self.ranking] = np.arange(1, len(self.rates) + 1)
        loss, loss_std = _nan_mean_std(self.train_loss)
        mae, mae_std = _nan_mean_std(self.val_mae)
        return [
            {
                "learning_rate": float(self.rates[k]),
                "loss": _json_float(loss[k]),
                "loss_std": _json_float(loss_std[k]),
                "val_mae": _json_float(mae[k]),
                "val_mae_std": _json_float(mae_std[k]),
                "ensemble_val_mae": _json_float(self.ensemble_val_mae[k]),
                "diverged": bool(self.diverged_any[k]),
                "diverged_executions": int(self.diverged[k].sum()),
                "rank": int(rank[k]),
            }
            for k in range(len(self.rates))
        ]

    def to_dict(self) -> dict:
        """Return the rows and the best rate as a JSON-ready dictionary."""
        return {"rates": self.rows(), "best_learning_rate": self.best_rate}

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Plot training loss and validation MAE per rate; write a PNG."""
        return plots.plot_exact_sweep(
            path,
            self.rates,
            self.train_loss,
            self.val_mae,
            best=self.best_rate,
            diverged=self.diverged,
        )


def _check_rates(rates) -> np.ndarray:
    if rates is None:
        return DEFAULT_EXACT_RATES.copy()
    array = _float_vector("rates", rates)
    if array.size == 0:
        raise SeqcastError("rates is empty; give at least one learning rate")
    _check_positive_rates(array)
    if len(np.unique(array)) != len(array):
        raise SeqcastError(
            f"rates contains duplicates: {array.tolist()}; give each rate once"
        )
    return np.sort(array)


def _final_losses(result: TrainResult, patience: int | None) -> np.ndarray:
    """Return each model's loss at its last epoch trained, or best with patience."""
    epoch = result.best_epoch if patience else result.stopped_epoch
    loss = result.history["loss"]
    index = np.clip(epoch - 1, 0, loss.shape[1] - 1)
    final = loss[np.arange(len(index)), index].astype(np.float64)
    return np.where((epoch > 0) & ~result.diverged, final, np.nan)


def exact_sweep(
    series,
    split=1000,
    *,
    rates=None,
    executions: int = 3,
    model: DenseConfig = DenseConfig(),
    optimizer: OptimizerConfig = OptimizerConfig(),
    training: TrainConfig = TrainConfig(),
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> ExactSweepResult:
    """Train each learning rate of a grid on its own and compare them.

    Every rate is trained as ``executions`` models for all of
    ``training.epochs``, and execution ``j`` of every rate uses seed
    ``seed + j``. All ``len(rates) * executions`` models train together in
    one call of :func:`~seqcast.training.train_stack` with
    ``on_divergence="mark"``, so a rate that diverges is recorded and the
    other rates finish.

    Args:
        series: a :class:`~seqcast.data.Series`, array or pandas Series.
        split: where validation begins, as for
            :meth:`~seqcast.data.Series.split_index`. Validation data is
            needed to rank the rates.
        rates: the learning rates, finite, positive and distinct; by default
            :data:`DEFAULT_EXACT_RATES`, 12 rates from 1e-8 to about 3.2e-3.
        executions: models per rate, at least 1.
        model: the architecture.
        optimizer: the optimizer; its ``learning_rate`` is replaced by each
            rate of the grid.
        training: epochs, batches, loss and early stopping.
        seed: the seed of the first execution.
        progress: called as ``progress(epochs_done, epochs)``.

    Returns:
        An :class:`ExactSweepResult`.

    Raises:
        SeqcastError: a rate is invalid, ``executions`` is below 1, or the
            split leaves no training or no validation data.

    Example:
        >>> from seqcast.data import synthetic_series
        >>> sweep = exact_sweep(
        ...     synthetic_series(), rates=[1e-6, 1e-5], executions=2,
        ...     training=TrainConfig(epochs=3),
        ... )
        >>> sweep.val_mae.shape
        (2, 2)
    """
    grid = _check_rates(rates)
    if isinstance(executions, bool) or not isinstance(executions, int | np.integer):
        raise SeqcastError(f"executions must be a whole number, got {executions!r}")
    if executions < 1:
        raise SeqcastError(f"executions must be at least 1, got {executions}")
    if split is None:
        raise SeqcastError(
            "an exact sweep ranks rates by validation MAE, so it needs a split; "
            "give split, such as 1000 or 0.8"
        )
    windows = _split_windows(series, split, model)
    seeds = [seed + j for j in range(executions)]
    result = train_stack(
        model,
        windows.series.values,
        windows.train_starts,
        seeds=seeds * len(grid),
        optimizer=optimizer,
        learning_rate=[float(rate) for rate in grid for _ in seeds],
        training=dataclasses.replace(training, on_divergence="mark"),
        val_starts=windows.val_starts,
        progress=progress,
    )
    shape = (len(grid), executions)
    diverged = result.diverged.reshape(shape)
    forecasts = predict_windows(
        model, result.params, windows.series.values, windows.val_starts, result.masks
    ).reshape(*shape, -1)
    actual = windows.series.values[windows.val_starts + model.span - 1]
    val_mae = np.array(
        [[metrics.mae(actual, f) for f in rate] for rate in forecasts]
    ).reshape(shape)
    val_mae[diverged] = np.nan
    ensemble = np.full(len(grid), np.nan)
    for k in range(len(grid)):
        kept = ~diverged[k]
        if kept.any():
            ensemble[k] = metrics.mae(actual, forecasts[k, kept].mean(axis=0))
    return ExactSweepResult(
        rates=grid,
        seeds=seeds,
        train_loss=_final_losses(result, training.patience).reshape(shape),
        val_mae=val_mae,
        ensemble_val_mae=ensemble,
        diverged=diverged,
        result=result,
    )
