"""The vectorized trainer: a stack of models trained together in one program.

``train_stack`` trains every model of a stack with ``jax.vmap`` over the model
axis and ``jax.lax.scan`` over batches and epochs. The models share the series
and the architecture. Seeds, shuffle orders, learning-rate schedules and
optimizer settings may differ per model, so a single model is a stack of one and
a learning-rate sweep or a search batch is one call.

Each batch is gathered inside the compiled program from the window start
indices, so memory grows with the series length, not with length times window.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from seqcast import optimizers, schedules
from seqcast.errors import SeqcastError, TrainingDivergedError
from seqcast.models import DenseConfig, init_stack
from seqcast.optimizers import OptimizerConfig
from seqcast.windows import shuffle_order

logger = logging.getLogger(__name__)

LOSS_NAMES = ("mse", "mae", "huber")
DIVERGENCE_POLICIES = ("raise", "mark")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a stack is trained. The defaults are the reference workflow's.

    Attributes:
        epochs: passes over the training windows.
        batch_size: windows per gradient step; the last batch of an epoch may
            be smaller.
        shuffle_buffer: size of the ``tf.data``-style shuffle buffer; 1 keeps
            the windows in time order.
        loss: ``"mse"``, ``"mae"`` or ``"huber"``.
        huber_delta: where the Huber loss turns from quadratic to linear.
        patience: stop a model after this many epochs without improvement of
            the validation loss, or of the training loss when there is no
            validation data, and restore its best weights. ``None`` trains
            every epoch.
        min_delta: the smallest decrease that counts as an improvement.
        on_divergence: ``"raise"`` raises :class:`TrainingDivergedError` when a
            loss turns NaN or infinite; ``"mark"`` freezes that model, records
            the epoch and lets the others finish.
    """

    epochs: int = 100
    batch_size: int = 32
    shuffle_buffer: int = 1000
    loss: str = "mse"
    huber_delta: float = 1.0
    patience: int | None = None
    min_delta: float = 0.0
    on_divergence: str = "raise"

    def __post_init__(self):
        for name in ("epochs", "batch_size", "shuffle_buffer"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise SeqcastError(
                    f"{name} must be a whole number of at least 1, got {value!r}"
                )
        if self.loss not in LOSS_NAMES:
            raise SeqcastError(
                f"unknown loss {self.loss!r}, so use one of {', '.join(LOSS_NAMES)}"
            )
        if self.huber_delta <= 0:
            raise SeqcastError(f"huber_delta must be positive, got {self.huber_delta}")
        if self.patience is not None and self.patience < 1:
            raise SeqcastError(
                f"patience must be at least 1 epoch, got {self.patience}; "
                "leave it unset to train every epoch"
            )
        if self.on_divergence not in DIVERGENCE_POLICIES:
            raise SeqcastError(
                f"on_divergence must be 'raise' or 'mark', got {self.on_divergence!r}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TrainResult:
    """The outcome of training a stack of ``M`` models for ``E`` epochs.

    Attributes:
        params: the stacked parameters; the best epoch's when ``patience`` is set.
        opt_state: the stacked optimizer states after the last epoch trained.
        masks: width masks of the stack, or ``None``.
        history: ``"loss"`` and, with validation data, ``"val_loss"`` and
            ``"val_mae"``, each of shape ``(M, E)``; NaN after a model stopped
            or diverged.
        learning_rates: the rate of each model's first step of each epoch,
            shape ``(M, E)``.
        best_epoch: per model, the epoch (from 1) with the lowest monitored
            loss; 0 when no epoch had a finite loss.
        stopped_epoch: per model, the last epoch trained.
        diverged_epoch: per model, the first epoch whose loss was not finite,
            or 0.
    """

    params: object
    opt_state: object
    masks: object
    history: dict[str, np.ndarray]
    learning_rates: np.ndarray
    best_epoch: np.ndarray
    stopped_epoch: np.ndarray
    diverged_epoch: np.ndarray

    @property
    def diverged(self) -> np.ndarray:
        """Boolean array of shape ``(M,)``: which models diverged."""
        return self.diverged_epoch > 0

    def best(self, metric: str = "loss") -> np.ndarray:
        """Return each model's lowest value of ``metric`` over its epochs.

        This is Keras Tuner's score of an execution. A model whose values are
        all NaN scores NaN.
        """
        if metric not in self.history:
            raise SeqcastError(
                f"no history for {metric!r}, only for {', '.join(self.history)}"
            )
        values = self.history[metric]
        finite = np.where(np.isfinite(values), values, np.inf)
        best = finite.min(axis=1)
        return np.where(np.isfinite(best), best, np.nan)

    def at_best_epoch(self, metric: str) -> np.ndarray:
        """Return each model's ``metric`` at its best epoch (NaN where none)."""
        values = self.history[metric]
        index = np.clip(self.best_epoch - 1, 0, values.shape[1] - 1)
        picked = values[np.arange(len(index)), index]
        return np.where(self.best_epoch > 0, picked, np.nan)


class _State(NamedTuple):
    params: object
    opt_state: object
    best_params: object
    best_score: jax.Array
    best_epoch: jax.Array
    wait: jax.Array
    active: jax.Array
    diverged_epoch: jax.Array
    stopped_epoch: jax.Array


def _pointwise_loss(name: str, delta: float):
    if name == "mse":
        return lambda pred, target: jnp.square(pred - target)
    if name == "mae":
        return lambda pred, target: jnp.abs(pred - target)
    return lambda pred, target: optax.huber_loss(pred, target, delta=delta)


def _select(condition, new, old):
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


@functools.partial(
    jax.jit,
    static_argnames=(
        "config",
        "optimizer",
        "nesterov",
        "loss",
        "huber_delta",
        "patience",
        "min_delta",
        "has_validation",
    ),
)
def _train_chunk(
    state,
    values,
    orders,
    weights,
    rates,
    epoch_ids,
    epoch_valid,
    val_starts,
    val_weights,
    masks,
    *,
    config,
    optimizer,
    nesterov,
    loss,
    huber_delta,
    patience,
    min_delta,
    has_validation,
):
    """Train every model of the stack for one chunk of epochs.

    Shapes: ``orders`` (M, K, B, batch) window starts, ``weights`` (B, batch)
    with 0 on padding, ``rates`` (M, K, B), ``epoch_ids`` and ``epoch_valid``
    (K,), ``val_starts`` and ``val_weights`` (chunks, windows per chunk). Epochs
    whose ``epoch_valid`` is false change nothing. They pad the last
    chunk so that every chunk has one shape and the program compiles once.
    """
    module = config.module()
    transform = optimizers.make_optimizer(optimizer, nesterov)
    pointwise = _pointwise_loss(loss, huber_delta)
    offsets = jnp.arange(config.window_size + 1) * config.stride
    batch_counts = weights.sum(axis=1)

    def validate(params, masks):
        """Return the validation loss and MAE, gathering one chunk at a time."""

        def add_chunk(totals, chunk):
            starts, chunk_weights = chunk
            windows = values[starts[:, None] + offsets]
            pred = module.apply(params, windows[:, :-1], masks)
            errors = pointwise(pred, windows[:, -1])
            absolute = jnp.abs(pred - windows[:, -1])
            return (
                totals[0] + jnp.sum(errors * chunk_weights),
                totals[1] + jnp.sum(absolute * chunk_weights),
            ), None

        zero = jnp.float32(0.0)
        if val_starts.shape[0] == 1:
            # One chunk needs no loop, and a loop here doubles compile time.
            (loss_sum, abs_sum), _ = add_chunk(
                (zero, zero), (val_starts[0], val_weights[0])
            )
        else:
            (loss_sum, abs_sum), _ = jax.lax.scan(
                add_chunk, (zero, zero), (val_starts, val_weights)
            )
        count = jnp.sum(val_weights)
        return loss_sum / count, abs_sum / count

    def train_model(state, orders, rates, masks):
        def run_epoch(state, inputs):
            order, epoch_rates, epoch, valid = inputs

            def step(carry, batch):
                params, opt_state = carry
                starts, batch_weights, rate = batch
                windows = values[starts[:, None] + offsets]
                x, y = windows[:, :-1], windows[:, -1]

                def objective(p):
                    errors = pointwise(module.apply(p, x, masks), y)
                    return jnp.sum(errors * batch_weights) / jnp.sum(batch_weights)

                batch_loss, grads = jax.value_and_grad(objective)(params)
                opt_state = optimizers.with_learning_rate(opt_state, rate)
                updates, opt_state = transform(
                    learning_rate=rate, **_settings(opt_state)
                ).update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), batch_loss

            (params, opt_state), batch_losses = jax.lax.scan(
                step, (state.params, state.opt_state), (order, weights, epoch_rates)
            )
            epoch_loss = jnp.sum(batch_losses * batch_counts) / jnp.sum(batch_counts)
            if has_validation:
                val_loss, val_mae = validate(params, masks)
                monitored = val_loss
            else:
                val_loss = val_mae = jnp.float32(jnp.nan)
                monitored = epoch_loss

            running = state.active & valid
            finite = jnp.isfinite(epoch_loss)
            diverging = running & ~finite
            accept = running & finite
            params = _select(accept, params, state.params)
            opt_state = _select(accept, opt_state, state.opt_state)
            improved = accept & (monitored < state.best_score - min_delta)
            wait = jnp.where(improved, 0, state.wait + running.astype(jnp.int32))
            if patience:
                stop = running & (wait >= patience)
            else:
                stop = jnp.zeros_like(running)
            new_state = _State(
                params=params,
                opt_state=opt_state,
                best_params=_select(improved, params, state.best_params),
                best_score=jnp.where(improved, monitored, state.best_score),
                best_epoch=jnp.where(improved, epoch + 1, state.best_epoch),
                wait=wait,
                active=state.active & ~diverging & ~stop,
                diverged_epoch=jnp.where(diverging, epoch + 1, state.diverged_epoch),
                stopped_epoch=jnp.where(running, epoch + 1, state.stopped_epoch),
            )
            nan = jnp.float32(jnp.nan)
            record = (
                jnp.where(running, epoch_loss, nan),
                jnp.where(running, val_loss, nan),
                jnp.where(running, val_mae, nan),
            )
            return new_state, record

        return jax.lax.scan(run_epoch, state, (orders, rates, epoch_ids, epoch_valid))

    mask_axis = None if masks is None else 0
    return jax.vmap(train_model, in_axes=(0, 0, 0, mask_axis))(
        state, orders, rates, masks
    )


def _settings(opt_state) -> dict:
    return {k: v for k, v in opt_state.hyperparams.items() if k != "learning_rate"}


def epoch_orders(
    starts: np.ndarray, shuffle_buffer: int, seeds: Sequence[int], epochs: int
) -> np.ndarray:
    """Draw the order in which each model visits the windows in each epoch.

    Args:
        starts: window start indices, shape ``(N,)``.
        shuffle_buffer: ``tf.data`` shuffle-buffer size.
        seeds: one seed per model; the same seed gives the same orders.
        epochs: number of epochs.

    Returns:
        int32 array of shape ``(len(seeds), epochs, N)``.
    """
    return _OrderStream(starts, shuffle_buffer, seeds).next_epochs(epochs)


# The largest number of window indices drawn for one compiled call: 2**25
# int32 values take 128 MiB.
_MAX_ORDER_ENTRIES = 2**25

# Validation windows gathered at once per model.
_VALIDATION_CHUNK = 4096


class _OrderStream:
    """Each model's shuffled window orders, drawn epoch after epoch."""

    def __init__(self, starts, shuffle_buffer: int, seeds: Sequence[int]):
        self.starts = np.asarray(starts, dtype=np.int64)
        self.shuffle_buffer = shuffle_buffer
        # Shuffling draws from its own stream so that it does not depend on how
        # the weights were initialised.
        self.rngs = [np.random.default_rng([int(s), 0x5E9CA57]) for s in seeds]

    def next_epochs(self, epochs: int) -> np.ndarray:
        """Return the orders of the next ``epochs`` epochs, (models, epochs, N)."""
        n = len(self.starts)
        orders = np.empty((len(self.rngs), epochs, n), dtype=np.int32)
        for model, rng in enumerate(self.rngs):
            for epoch in range(epochs):
                order = shuffle_order(n, self.shuffle_buffer, rng)
                orders[model, epoch] = self.starts[order]
        return orders


def _validation_layout(val_starts):
    """Split validation starts into equal chunks, padding with zero weight."""
    if val_starts is None:
        return np.zeros((1, 1), np.int32), np.zeros((1, 1), np.float32)
    count = len(val_starts)
    size = min(count, _VALIDATION_CHUNK)
    chunks = math.ceil(count / size)
    starts = np.full(chunks * size, val_starts[0], dtype=np.int32)
    starts[:count] = val_starts
    weights = np.zeros(chunks * size, dtype=np.float32)
    weights[:count] = 1.0
    return starts.reshape(chunks, size), weights.reshape(chunks, size)


def _batch_layout(orders: np.ndarray, batch_size: int, epochs: int | None = None):
    """Pad the window orders to whole batches and return them with the weights.

    With ``epochs`` larger than the orders have, the extra epochs repeat the
    last one. They pad a chunk whose extra epochs the trainer skips.
    """
    models, drawn, windows = orders.shape
    epochs = drawn if epochs is None else epochs
    batches = math.ceil(windows / batch_size)
    padded = np.zeros((models, epochs, batches * batch_size), dtype=np.int32)
    padded[:, :drawn, :windows] = orders
    padded[:, drawn:, :windows] = orders[:, -1:]
    padded[..., windows:] = orders[..., :1]
    weights = np.zeros(batches * batch_size, dtype=np.float32)
    weights[:windows] = 1.0
    return (
        padded.reshape(models, epochs, batches, batch_size),
        weights.reshape(batches, batch_size),
    )


def train_stack(
    config: DenseConfig,
    values,
    train_starts,
    *,
    seeds: Sequence[int],
    optimizer: OptimizerConfig | Sequence[OptimizerConfig] = OptimizerConfig(),
    learning_rate=None,
    training: TrainConfig = TrainConfig(),
    val_starts=None,
    widths: Sequence[Sequence[int]] | None = None,
    params=None,
    masks=None,
    progress: Callable[[int, int], None] | None = None,
    epochs_per_call: int | None = None,
) -> TrainResult:
    """Train one model per seed, all in one compiled program.

    Args:
        config: the architecture shared by the stack.
        values: the series, float32 of shape ``(n,)``.
        train_starts: start indices of the training windows; window ``s`` has
            features ``values[s : s + window_size * stride : stride]`` and the
            label ``values[s + window_size * stride]``.
        seeds: one seed per model, for initialisation and shuffling.
        optimizer: one configuration for all models, or one per model.
        learning_rate: a number, a schedule from :mod:`seqcast.schedules`, an
            Optax schedule, or a list of these with one per model. Defaults to
            each optimizer's ``learning_rate``.
        training: epochs, batches, loss, early stopping and divergence policy.
        val_starts: start indices of the validation windows, or ``None``.
        widths: true hidden widths per model when the stack mixes widths.
        params, masks: a stack to continue training instead of initialising.
        progress: called as ``progress(epochs_done, epochs)`` between chunks.
        epochs_per_call: epochs per compiled call; by default all of them, or
            about 4% of them when ``progress`` is given.

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingDivergedError: a loss turned NaN or infinite and
            ``training.on_divergence`` is ``"raise"``.
    """
    values = jax.device_put(np.asarray(values, dtype=np.float32))
    train_starts = np.asarray(train_starts, dtype=np.int64)
    seeds = [int(s) for s in seeds]
    num_models = len(seeds)
    if len(train_starts) == 0:
        raise SeqcastError(
            "there are no training windows, so use a longer training split or a "
            "smaller window_size"
        )
    _check_starts("training", train_starts, config, len(values))
    has_validation = val_starts is not None and len(val_starts) > 0
    if has_validation:
        val_starts = np.asarray(val_starts, dtype=np.int64)
        _check_starts("validation", val_starts, config, len(values))

    configs = (
        [optimizer] * num_models
        if isinstance(optimizer, OptimizerConfig)
        else list(optimizer)
    )
    settings = optimizers.stack_hyperparameters(configs, num_models)
    if learning_rate is None:
        learning_rate = [c.learning_rate for c in configs]

    epochs = training.epochs
    orders = _OrderStream(train_starts, training.shuffle_buffer, seeds)
    steps_per_epoch = math.ceil(len(train_starts) / training.batch_size)
    rates = schedules.rate_table(learning_rate, num_models, epochs, steps_per_epoch)

    if params is None:
        params, masks = init_stack(config, seeds, widths)
    state = _initial_state(params, settings, configs[0].name, configs[0].nesterov)

    chunk = epochs_per_call or (max(1, math.ceil(epochs / 25)) if progress else epochs)
    # Window orders for a chunk take models * epochs * windows integers, so a
    # long series trains in chunks of fewer epochs.
    per_epoch = num_models * steps_per_epoch * training.batch_size
    chunk = max(1, min(chunk, epochs, _MAX_ORDER_ENTRIES // per_epoch))
    records = []
    static = dict(
        config=config,
        optimizer=configs[0].name,
        nesterov=configs[0].nesterov,
        loss=training.loss,
        huber_delta=float(training.huber_delta),
        patience=training.patience,
        min_delta=float(training.min_delta),
        has_validation=has_validation,
    )
    val_layout = _validation_layout(val_starts if has_validation else None)
    val_device = tuple(jax.device_put(part) for part in val_layout)
    for first in range(0, epochs, chunk):
        epoch_ids = np.arange(first, first + chunk, dtype=np.int32)
        valid = epoch_ids < epochs
        clipped = np.minimum(epoch_ids, epochs - 1)
        chunk_orders, weights = _batch_layout(
            orders.next_epochs(int(valid.sum())), training.batch_size, chunk
        )
        state, record = _train_chunk(
            state,
            values,
            jax.device_put(chunk_orders),
            jax.device_put(weights),
            jax.device_put(rates[:, clipped]),
            jax.device_put(epoch_ids),
            jax.device_put(valid),
            *val_device,
            masks,
            **static,
        )
        records.append(jax.tree.map(lambda r, v=valid: np.asarray(r)[:, v], record))
        if progress is not None:
            progress(min(first + chunk, epochs), epochs)
            if not bool(np.asarray(state.active).any()):
                break

    result = _result(state, records, rates, masks, training, has_validation, epochs)
    if training.on_divergence == "raise" and result.diverged.any():
        model = int(np.argmax(result.diverged))
        epoch = int(result.diverged_epoch[model])
        raise TrainingDivergedError(
            epoch, float(result.learning_rates[model, epoch - 1]), model
        )
    return result


def _check_starts(kind: str, starts: np.ndarray, config: DenseConfig, n: int) -> None:
    if starts.min() < 0 or starts.max() + config.span > n:
        raise SeqcastError(
            f"{kind} window starts must lie in [0, {n - config.span}] for a series "
            f"of {n} values and window_size {config.window_size}"
        )


@functools.partial(jax.jit, static_argnames=("optimizer", "nesterov"))
def _initial_state(params, settings, optimizer: str, nesterov: bool) -> _State:
    num_models = jax.tree.leaves(params)[0].shape[0]
    return _State(
        params=params,
        opt_state=optimizers.init_state_stack(optimizer, params, settings, nesterov),
        best_params=params,
        best_score=jnp.full((num_models,), jnp.inf, jnp.float32),
        best_epoch=jnp.zeros((num_models,), jnp.int32),
        wait=jnp.zeros((num_models,), jnp.int32),
        active=jnp.ones((num_models,), bool),
        diverged_epoch=jnp.zeros((num_models,), jnp.int32),
        stopped_epoch=jnp.zeros((num_models,), jnp.int32),
    )


def _result(state, records, rates, masks, training, has_validation, epochs):
    columns = zip(*records, strict=True)
    loss, val_loss, val_mae = (np.concatenate(parts, axis=1) for parts in columns)
    missing = epochs - loss.shape[1]
    if missing:
        pad = np.full((loss.shape[0], missing), np.nan, np.float32)
        loss, val_loss, val_mae = (
            np.concatenate([a, pad], 1) for a in (loss, val_loss, val_mae)
        )
    history = {"loss": loss}
    if has_validation:
        history["val_loss"] = val_loss
        history["val_mae"] = val_mae
    params = state.params
    if training.patience:
        found = state.best_epoch > 0
        params = jax.tree.map(
            lambda best, last: jnp.where(
                found.reshape((-1,) + (1,) * (best.ndim - 1)), best, last
            ),
            state.best_params,
            state.params,
        )
    return TrainResult(
        params=params,
        opt_state=state.opt_state,
        masks=masks,
        history=history,
        learning_rates=rates[:, :, 0],
        best_epoch=np.asarray(state.best_epoch),
        stopped_epoch=np.asarray(state.stopped_epoch),
        diverged_epoch=np.asarray(state.diverged_epoch),
    )
