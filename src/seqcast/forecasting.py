"""Forecasts from trained stacks, and the ``Forecaster`` that fits them.

A forecast for step ``t`` is made from the window that ends just before ``t``.
One-step forecasts for any number of windows come from one batched call per
chunk of windows, and recursive forecasts feed each forecast back as the newest
input. With several executions (seeds), the ensemble forecast is the mean of
the members' forecasts.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from seqcast.data import Series, as_series
from seqcast.errors import SeqcastError
from seqcast.models import DenseConfig, apply_stack
from seqcast.optimizers import OptimizerConfig
from seqcast.scaling import SCALE_METHODS, Scaler
from seqcast.training import TrainConfig, TrainResult, train_stack
from seqcast.windows import label_window_starts

# Windows gathered per call when forecasting many steps; bounds the memory of
# the gathered window matrix to this many rows.
_WINDOWS_PER_CALL = 65_536


@dataclasses.dataclass
class Forecast:
    """Forecasts of ``M`` ensemble members for ``N`` steps.

    Attributes:
        steps: integer positions of the forecast steps in the series, ``(N,)``;
            positions past the end continue the count.
        time: the time of each step when the series has a time index, else
            ``steps``.
        members: each member's forecasts, shape ``(M, N)``.
    """

    steps: np.ndarray
    time: object
    members: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """The ensemble forecast: the members' mean, shape ``(N,)``."""
        return self.members.mean(axis=0)

    def to_frame(self) -> pd.DataFrame:
        """Return the ensemble and each member as columns indexed by time."""
        columns = {"forecast": self.mean}
        if len(self.members) > 1:
            for i, member in enumerate(self.members):
                columns[f"execution_{i}"] = member
        return pd.DataFrame(columns, index=pd.Index(self.time, name="time"))


@functools.partial(jax.jit, static_argnames=("config",))
def _forecast_starts(config: DenseConfig, params, masks, values, starts):
    offsets = jnp.arange(config.window_size) * config.stride
    windows = values[starts[:, None] + offsets]
    return apply_stack(config, params, windows, masks)


def predict_windows(config: DenseConfig, params, values, starts, masks=None):
    """Forecast the label of every window given by its start index.

    Args:
        config: the architecture.
        params: stacked parameters with ``M`` models.
        values: the series, shape ``(n,)``.
        starts: window start indices, shape ``(N,)``.
        masks: width masks of the stack, if any.

    Returns:
        float32 array of shape ``(M, N)``: model ``m``'s forecast of
        ``values[starts + window_size * stride]``.
    """
    values = jax.device_put(np.asarray(values, np.float32))
    starts = np.asarray(starts, np.int32)
    parts = []
    for first in range(0, len(starts), _WINDOWS_PER_CALL):
        chunk = starts[first : first + _WINDOWS_PER_CALL]
        parts.append(np.asarray(_forecast_starts(config, params, masks, values, chunk)))
    if not parts:
        return np.zeros((_stack_size(params), 0), np.float32)
    return np.concatenate(parts, axis=1)


def recursive_forecast(
    predict: Callable, history, steps: int, window_size: int, stride: int = 1
) -> np.ndarray:
    """Forecast ``steps`` values past the end of ``history``, one at a time.

    Each forecast is appended to the history and becomes the newest value of the
    next window.

    Args:
        predict: a JAX-traceable function mapping windows of shape
            ``(M, window_size)``, one per member, to forecasts of shape ``(M,)``.
        history: the series so far, shape ``(n,)`` shared by every member or
            ``(M, n)``, with ``n >= (window_size - 1) * stride + 1``.
        steps: how many steps ahead to forecast.
        window_size: values per window.
        stride: step between the values of a window.

    Returns:
        float32 array of shape ``(M, steps)``.

    Example:
        >>> recursive_forecast(lambda w: w[:, -1] + 1, np.arange(1.0, 11), 3, 3)
        array([[11., 12., 13.]], dtype=float32)
    """
    if steps < 1:
        raise SeqcastError(f"steps must be at least 1, got {steps}")
    history = jnp.atleast_2d(jnp.asarray(history, jnp.float32))
    span = (window_size - 1) * stride + 1
    if history.shape[1] < span:
        raise SeqcastError(
            f"the series has {history.shape[1]} values but window_size "
            f"{window_size} needs at least {span} to forecast from"
        )
    return np.asarray(
        _recursive(predict, history[:, -span:], steps, window_size, stride)
    )


@functools.partial(jax.jit, static_argnames=("config", "steps"))
def _recursive_stack(config: DenseConfig, params, masks, recent, steps: int):
    """Recursive forecasts of every model of a stack from one shared history."""
    module = config.module()

    def predict_one(model_params, window, model_masks):
        return module.apply(model_params, window[None], model_masks)[0]

    def predict_members(windows):
        if masks is None:
            return jax.vmap(lambda p, w: predict_one(p, w, None))(params, windows)
        return jax.vmap(predict_one)(params, windows, masks)

    models = jax.tree.leaves(params)[0].shape[0]
    history = jnp.broadcast_to(recent, (models, recent.shape[0]))
    return _recursive(
        predict_members, history, steps, config.window_size, config.stride
    )


@functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
def _recursive(predict, recent, steps, window_size, stride):
    def step(recent, _):
        forecast = predict(recent[:, ::stride][:, :window_size])
        recent = jnp.concatenate([recent[:, 1:], forecast[:, None]], axis=1)
        return recent, forecast

    _, forecasts = jax.lax.scan(step, recent, None, length=steps)
    return forecasts.T


def _stack_size(params) -> int:
    return int(jax.tree.leaves(params)[0].shape[0])


class Forecaster:
    """A dense network forecaster trained as a stack of executions.

    Every setting defaults to the reference workflow: windows of 20, dense
    layers of 10 and 10 units, SGD with learning rate 1e-6 and momentum 0.9,
    batches of 32 from a shuffle buffer of 1000, 100 epochs of MSE.

    Args:
        model: the architecture.
        optimizer: the optimizer and its settings.
        training: epochs, batches, loss and early stopping.
        executions: models trained from different seeds; forecasts are their
            mean.
        seed: the first execution's seed; execution ``i`` uses ``seed + i``.
        learning_rate: an optional schedule that overrides
            ``optimizer.learning_rate``.
        scale: ``"none"``, ``"standard"`` or ``"minmax"``: scaling learned from
            the training split. The network trains on scaled values, so the
            loss history is in scaled units, while forecasts are returned in
            the series' own units.

    Example:
        >>> from seqcast.data import synthetic_series
        >>> series = synthetic_series()
        >>> forecaster = Forecaster().fit(series, split=1000)
        >>> forecaster.predict(3).mean.shape
        (3,)
    """

    def __init__(
        self,
        model: DenseConfig = DenseConfig(),
        optimizer: OptimizerConfig = OptimizerConfig(),
        training: TrainConfig = TrainConfig(),
        *,
        executions: int = 1,
        seed: int = 0,
        learning_rate=None,
        scale: str = "none",
    ):
        if scale not in SCALE_METHODS:
            raise SeqcastError(
                f"unknown scaling {scale!r}, so use one of {', '.join(SCALE_METHODS)}"
            )
        if executions < 1:
            raise SeqcastError(f"executions must be at least 1, got {executions}")
        self.model = model
        self.optimizer = optimizer
        self.training = training
        self.executions = int(executions)
        self.seed = int(seed)
        self.learning_rate = learning_rate
        self.scale = scale
        self.scaler_ = Scaler()
        self.params_ = None
        self.masks_ = None
        self.result_: TrainResult | None = None
        self.series_: Series | None = None

    @property
    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.executions)]

    def fit(
        self,
        series,
        split=None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> Forecaster:
        """Train every execution on the windows whose labels precede ``split``.

        Args:
            series: a :class:`~seqcast.data.Series`, array or pandas Series.
            split: where validation begins, as for
                :meth:`~seqcast.data.Series.split_index`; ``None`` trains on
                the whole series with no validation.
            progress: called as ``progress(epochs_done, epochs)``.

        Returns:
            ``self``, with ``params_`` and ``result_`` set.
        """
        series = as_series(series)
        n = len(series)
        split_at = n if split is None else series.split_index(split)
        span = self.model.span
        if split_at < span:
            raise SeqcastError(
                f"the training part has {split_at} values but window_size "
                f"{self.model.window_size} needs at least {span}, so use a longer "
                "series, a later split or a smaller --window-size"
            )
        offset = self.model.window_size * self.model.stride
        train_starts = label_window_starts(
            self.model.window_size, offset, split_at, self.model.stride
        )
        val_starts = label_window_starts(
            self.model.window_size, split_at, n, self.model.stride
        )
        self.scaler_ = Scaler.fit(series.values[:split_at], self.scale)
        self.result_ = train_stack(
            self.model,
            self.scaler_.transform(series.values),
            train_starts,
            seeds=self.seeds,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            training=self.training,
            val_starts=val_starts if len(val_starts) else None,
            progress=progress,
        )
        self.params_ = self.result_.params
        self.masks_ = self.result_.masks
        self.series_ = series
        return self

    def _require_fit(self) -> None:
        if self.params_ is None:
            raise SeqcastError("the forecaster is not trained yet, so call fit() first")

    def _series_or(self, series) -> Series:
        if series is not None:
            return as_series(series)
        if self.series_ is None:
            raise SeqcastError(
                "this forecaster has no series to forecast from, because it was "
                "loaded from a folder saved without one; pass series="
            )
        return self.series_

    def predict_steps(
        self, series=None, start: int | None = None, end=None
    ) -> Forecast:
        """Forecast each step in ``[start, end)`` from the window just before it.

        Args:
            series: the series to read windows from; defaults to the fitted one.
            start: the first step to forecast; defaults to the earliest step
                with a full window before it.
            end: one past the last step; defaults to the series length.

        Returns:
            A :class:`Forecast` aligned to the forecast steps.
        """
        self._require_fit()
        series = self._series_or(series)
        n = len(series)
        offset = self.model.window_size * self.model.stride
        start = offset if start is None else int(start)
        end = n if end is None else int(end)
        if not offset <= start < end <= n:
            raise SeqcastError(
                f"forecast steps [{start}, {end}) must lie within [{offset}, {n}] "
                f"for a series of {n} values and window_size {self.model.window_size}"
            )
        starts = label_window_starts(
            self.model.window_size, start, end, self.model.stride
        )
        members = predict_windows(
            self.model,
            self.params_,
            self.scaler_.transform(series.values),
            starts,
            self.masks_,
        )
        members = self.scaler_.inverse_transform(members)
        steps = np.arange(start, end)
        time = series.time[start:end] if series.time is not None else steps
        return Forecast(steps=steps, time=time, members=members)

    def predict(self, steps: int, series=None) -> Forecast:
        """Forecast ``steps`` values past the end of the series, recursively.

        Args:
            steps: how many future steps.
            series: the history to continue; defaults to the fitted series.

        Returns:
            A :class:`Forecast` whose times continue the series' time index at
            its frequency when one can be inferred.
        """
        self._require_fit()
        series = self._series_or(series)
        if steps < 1:
            raise SeqcastError(f"steps must be at least 1, got {steps}")
        span = (self.model.window_size - 1) * self.model.stride + 1
        if len(series) < span:
            raise SeqcastError(
                f"the series has {len(series)} values but window_size "
                f"{self.model.window_size} needs at least {span} to forecast from"
            )
        recent = self.scaler_.transform(series.values[-span:])
        members = _recursive_stack(
            self.model, self.params_, self.masks_, jax.device_put(recent), int(steps)
        )
        members = self.scaler_.inverse_transform(members)
        n = len(series)
        positions = np.arange(n, n + steps)
        return Forecast(
            steps=positions, time=_future_time(series, steps), members=members
        )

    def save(self, directory) -> None:
        """Save weights, configuration and history to ``directory``."""
        from seqcast.files import save_model

        self._require_fit()
        save_model(
            directory,
            jax.tree.map(np.asarray, self.params_),
            self.config_dict(),
            series=_series_arrays(self.series_),
            history={k: v.tolist() for k, v in self.result_.history.items()}
            if self.result_ is not None
            else None,
        )

    def config_dict(self) -> dict:
        """Return the settings as a JSON-ready dictionary."""
        schedule = self.learning_rate
        return {
            "series_name": None if self.series_ is None else self.series_.name,
            "kind": "dense",
            "model": self.model.to_dict(),
            "optimizer": self.optimizer.to_dict(),
            "training": self.training.to_dict(),
            "executions": self.executions,
            "seed": self.seed,
            "scale": self.scale,
            "scaler": self.scaler_.to_dict(),
            "learning_rate": float(schedule)
            if isinstance(schedule, (int, float))
            else None,
        }

    @classmethod
    def load(cls, directory) -> Forecaster:
        """Load a forecaster saved with :meth:`save`, ready to predict."""
        from seqcast.files import load_model, load_series_arrays

        params, config = load_model(directory)
        if config.get("kind") != "dense":
            raise SeqcastError(
                f"{directory} contains a model of kind {config.get('kind')!r}, which "
                "this version of seqcast cannot load"
            )
        forecaster = cls(
            DenseConfig.from_dict(config["model"]),
            OptimizerConfig(**config["optimizer"]),
            TrainConfig(**config["training"]),
            executions=config["executions"],
            seed=config["seed"],
            learning_rate=config.get("learning_rate"),
        )
        scaler = Scaler(**config.get("scaler", {}))
        forecaster.scale = scaler.method
        forecaster.scaler_ = scaler
        forecaster.params_ = jax.tree.map(jnp.asarray, params)
        arrays = load_series_arrays(directory)
        if arrays is not None:
            forecaster.series_ = _series_from_arrays(arrays, config.get("series_name"))
        return forecaster


def _series_arrays(series: Series | None) -> dict | None:
    """Return a series as arrays for saving: values, and its time in ns."""
    if series is None:
        return None
    arrays = {"values": np.asarray(series.values, np.float32)}
    if isinstance(series.time, pd.DatetimeIndex):
        arrays["time_ns"] = series.time.as_unit("ns").asi8
    elif series.time is not None:
        arrays["time_steps"] = np.asarray(series.time, np.int64)
    return arrays


def _series_from_arrays(arrays: dict, name: str | None) -> Series:
    time = None
    if "time_ns" in arrays:
        time = pd.DatetimeIndex(arrays["time_ns"].astype("datetime64[ns]"))
    elif "time_steps" in arrays:
        time = pd.Index(arrays["time_steps"])
    return Series(arrays["values"], time, name or "value")


def _future_time(series: Series, steps: int):
    n = len(series)
    if series.time is None:
        return np.arange(n, n + steps)
    time = series.time
    if isinstance(time, pd.DatetimeIndex) and len(time) >= 3:
        with warnings.catch_warnings():
            # pandas warns about the spelling of some inferred frequency codes.
            warnings.simplefilter("ignore")
            frequency = pd.infer_freq(time[-3:]) or (time[-1] - time[-2])
        return pd.date_range(time[-1], periods=steps + 1, freq=frequency)[1:]
    return np.arange(n, n + steps)
