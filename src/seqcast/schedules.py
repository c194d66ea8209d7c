"""Learning-rate schedules, evaluated on the host into one rate per step.

The trainer never evaluates a schedule inside compiled code. Each schedule
returns its rates for every epoch and step as a float64 NumPy array, which is
cast to float32 once and handed to the trainer as a table of shape
``(models, epochs, steps_per_epoch)``. So a formula such as
``1e-8 * 10 ** (epoch / 20)`` is exact to the last bit of float64 before the
cast, and every model of a stack may follow its own schedule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from seqcast.errors import SeqcastError


class Schedule(Protocol):
    """Anything that returns learning rates of shape ``(epochs, steps_per_epoch)``."""

    def rates(self, epochs: int, steps_per_epoch: int) -> np.ndarray: ...


def _check_positive(name: str, value: float) -> None:
    if not (np.isfinite(value) and value > 0):
        raise SeqcastError(f"{name} must be a positive number, got {value}")


def _epoch_grid(epochs: int, steps_per_epoch: int) -> np.ndarray:
    return np.repeat(np.arange(epochs, dtype=np.float64)[:, None], steps_per_epoch, 1)


def _step_grid(epochs: int, steps_per_epoch: int) -> np.ndarray:
    steps = np.arange(epochs * steps_per_epoch, dtype=np.float64)
    return steps.reshape(epochs, steps_per_epoch)


@dataclasses.dataclass(frozen=True)
class Constant:
    """The same rate at every step.

    Example:
        >>> Constant(1e-6).rates(2, 3).shape
        (2, 3)
    """

    rate: float

    def __post_init__(self):
        _check_positive("learning_rate", self.rate)

    def rates(self, epochs: int, steps_per_epoch: int) -> np.ndarray:
        return np.full((epochs, steps_per_epoch), self.rate, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class ExponentialSweep:
    """A rate of ``start * factor ** (epoch / every)``, fixed within each epoch.

    The defaults are the published sweep: 1e-8 at epoch 0, ten times larger every
    20 epochs, so 1e-7 at epoch 20 and 1e-3 at epoch 100.

    Example:
        >>> float(ExponentialSweep().rate_at(20))
        1e-07
    """

    start: float = 1e-8
    factor: float = 10.0
    every: float = 20.0

    def __post_init__(self):
        _check_positive("start", self.start)
        _check_positive("factor", self.factor)
        _check_positive("every", self.every)

    def rate_at(self, epoch) -> np.ndarray:
        """Return the rate of epoch ``epoch`` (counted from 0) in float64.

        The power is Python's, as in the published ``1e-8 * 10 ** (epoch / 20)``,
        so both agree to the last bit. NumPy's power differs from it in the last
        bit at epochs 15 and 50 of the published sweep (NumPy 2.4, x86-64).
        """
        epochs, inverse = np.unique(np.asarray(epoch, np.float64), return_inverse=True)
        rates = [self.start * self.factor ** (e / self.every) for e in epochs.tolist()]
        return np.asarray(rates, np.float64)[inverse].reshape(np.shape(epoch))

    def rates(self, epochs: int, steps_per_epoch: int) -> np.ndarray:
        return self.rate_at(_epoch_grid(epochs, steps_per_epoch))


@dataclasses.dataclass(frozen=True)
class ExponentialDecay:
    """A rate of ``initial * decay_rate ** (step / decay_steps)`` per step.

    This is Keras's ``ExponentialDecay``. With ``staircase`` the exponent is
    rounded down, so the rate drops once every ``decay_steps`` steps.
    """

    initial: float
    decay_rate: float
    decay_steps: int
    staircase: bool = False

    def __post_init__(self):
        _check_positive("initial", self.initial)
        _check_positive("decay_rate", self.decay_rate)
        _check_positive("decay_steps", self.decay_steps)

    def rates(self, epochs: int, steps_per_epoch: int) -> np.ndarray:
        exponent = _step_grid(epochs, steps_per_epoch) / self.decay_steps
        if self.staircase:
            exponent = np.floor(exponent)
        return self.initial * self.decay_rate**exponent


@dataclasses.dataclass(frozen=True)
class StepDecay:
    """A rate of ``initial * factor ** (epoch // every)``: a drop every few epochs."""

    initial: float
    factor: float = 0.5
    every: int = 10

    def __post_init__(self):
        _check_positive("initial", self.initial)
        _check_positive("factor", self.factor)
        _check_positive("every", self.every)

    def rates(self, epochs: int, steps_per_epoch: int) -> np.ndarray:
        epoch = _epoch_grid(epochs, steps_per_epoch)
        return self.initial * self.factor ** np.floor(epoch / self.every)


@dataclasses.dataclass(frozen=True)
class OptaxSchedule:
    """Any Optax schedule, or other function of the global step count.

    Example:
        >>> import optax
        >>> rates = OptaxSchedule(optax.linear_schedule(1e-3, 1e-4, 10)).rates(1, 10)
        >>> rates.shape
        (1, 10)
    """

    function: Callable

    def rates(self, epochs: int, steps_per_epoch: int) -> np.ndarray:
        steps = np.arange(epochs * steps_per_epoch)
        values = np.asarray(self.function(steps), dtype=np.float64)
        if values.shape != steps.shape:
            values = np.array([float(self.function(int(s))) for s in steps])
        return values.reshape(epochs, steps_per_epoch)


def as_schedule(value) -> Schedule:
    """Return ``value`` as a schedule: a number is a constant rate, a callable an
    Optax schedule of the step count, and a schedule is returned unchanged."""
    if hasattr(value, "rates"):
        return value
    if callable(value):
        return OptaxSchedule(value)
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise SeqcastError(
            f"learning_rate must be a number, a schedule or a function of the step, "
            f"got {value!r}"
        ) from None
    return Constant(rate)


def rate_table(
    schedules: Schedule | Sequence[Schedule],
    num_models: int,
    epochs: int,
    steps_per_epoch: int,
) -> np.ndarray:
    """Evaluate schedules into a float32 table of shape
    ``(num_models, epochs, steps_per_epoch)``.

    Args:
        schedules: one schedule shared by all models, or one per model. Numbers
            and callables are accepted as in :func:`as_schedule`.
        num_models: models in the stack.
        epochs: epochs of training.
        steps_per_epoch: batches per epoch.

    Raises:
        SeqcastError: a rate is not finite and positive, or the number of
            schedules is neither one nor ``num_models``.
    """
    if isinstance(schedules, (list, tuple)):
        items = [as_schedule(s) for s in schedules]
    else:
        items = [as_schedule(schedules)] * num_models
    if len(items) != num_models:
        raise SeqcastError(
            f"got {len(items)} learning-rate schedules for {num_models} models; "
            "give one shared schedule or one per model"
        )
    table = np.stack([s.rates(epochs, steps_per_epoch) for s in items])
    bad = ~(np.isfinite(table) & (table > 0))
    if bad.any():
        model, epoch, step = np.argwhere(bad)[0]
        rate = table[model, epoch, step]
        raise SeqcastError(
            f"the learning-rate schedule of model {model} gives {rate} at epoch "
            f"{epoch + 1}, step {step + 1}, but rates must be finite and positive"
        )
    return table.astype(np.float32)
