"""Tests for the trainer, the optimizers, the schedules and model stacks.

Reference values come from closed-form formulas written out beside each test:
Keras's SGD rule `v = momentum * v - learning_rate * g; w = w + v`, and the
losses as Keras defines them (Huber: 0.5 e^2 inside delta, delta (|e| - delta / 2)
outside).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from seqcast import optimizers, training
from seqcast.data import synthetic_series
from seqcast.errors import TrainingDivergedError
from seqcast.models import DenseConfig, init_stack
from seqcast.optimizers import OptimizerConfig
from seqcast.schedules import OptaxSchedule
from seqcast.training import TrainConfig, train_stack
from seqcast.windows import label_window_starts

# Learning rates that change at every step, to separate Keras's momentum rule
# (the rate scales each new gradient) from Optax's (the rate scales the trace).
STEP_RATES = (0.1, 0.05, 0.2)


def training_starts(config: DenseConfig, split: int) -> np.ndarray:
    return label_window_starts(config.window_size, config.span - 1, split)


def numpy_forward(params, windows: np.ndarray) -> np.ndarray:
    """Apply one dense ReLU network given as Flax parameters, in float64."""
    layers = params["params"]
    x = windows.astype(np.float64)
    hidden = sorted(name for name in layers if name.startswith("hidden_"))
    for name in hidden:
        x = np.maximum(
            x @ np.asarray(layers[name]["kernel"], np.float64)
            + np.asarray(layers[name]["bias"], np.float64),
            0.0,
        )
    output = layers["output"]
    kernel = np.asarray(output["kernel"], np.float64)
    return (x @ kernel + np.asarray(output["bias"], np.float64))[:, 0]


def first_model(params):
    return jax.tree.map(lambda leaf: np.asarray(leaf[0]), params)


# --- optimizers ---------------------------------------------------------------


def test_keras_sgd_matches_hand_computed_steps():
    # f(w) = (w - 3)^2, g = 2 (w - 3), w0 = 0, momentum 0.9, rates 0.1, 0.05, 0.2:
    # step 1: g = -6,    v = 0.6,                   w = 0.6
    # step 2: g = -4.8,  v = 0.54 + 0.24 = 0.78,    w = 1.38
    # step 3: g = -3.24, v = 0.702 + 0.648 = 1.35,  w = 2.73
    expected_velocity = [0.6, 0.78, 1.35]
    expected_weight = [0.6, 1.38, 2.73]
    factory = optimizers.make_optimizer("sgd")
    weight = jnp.float32(0.0)
    state = factory(learning_rate=jnp.float32(0.0), momentum=0.9).init(weight)
    for step, rate in enumerate(STEP_RATES):
        gradient = 2.0 * (weight - 3.0)
        state = optimizers.with_learning_rate(state, rate)
        transform = factory(learning_rate=rate, momentum=0.9)
        updates, state = transform.update(gradient, state, weight)
        weight = optax.apply_updates(weight, updates)
        velocity = float(state.inner_state)
        assert velocity == pytest.approx(expected_velocity[step], abs=1e-6)
        assert float(weight) == pytest.approx(expected_weight[step], abs=1e-6)


def test_trainer_follows_keras_sgd_with_step_schedule():
    # A linear model (no hidden layer) on 6 windows in one batch, so each epoch
    # is one step whose gradient NumPy computes exactly.
    config = DenseConfig(window_size=2, hidden=())
    values = np.array([1.0, 2.0, 0.5, 1.5, 3.0, 2.5, 1.0, 2.0], np.float32)
    starts = training_starts(config, len(values))
    schedule = OptaxSchedule(lambda step: np.asarray(STEP_RATES)[step])
    result = train_stack(
        config,
        values,
        starts,
        seeds=[3],
        optimizer=OptimizerConfig("sgd", momentum=0.9),
        learning_rate=schedule,
        training=TrainConfig(epochs=3, batch_size=32, shuffle_buffer=1),
    )

    initial, _ = init_stack(config, [3])
    kernel = np.asarray(initial["params"]["output"]["kernel"][0], np.float64)
    bias = np.asarray(initial["params"]["output"]["bias"][0], np.float64)
    x = np.stack([values[s : s + 2] for s in starts]).astype(np.float64)
    y = values[starts + 2].astype(np.float64)
    velocity_kernel = np.zeros_like(kernel)
    velocity_bias = np.zeros_like(bias)
    for rate in STEP_RATES:
        error = (x @ kernel)[:, 0] + bias[0] - y
        grad_kernel = 2.0 * x.T @ error[:, None] / len(y)
        grad_bias = np.array([2.0 * error.mean()])
        velocity_kernel = 0.9 * velocity_kernel - rate * grad_kernel
        velocity_bias = 0.9 * velocity_bias - rate * grad_bias
        kernel = kernel + velocity_kernel
        bias = bias + velocity_bias

    trained = first_model(result.params)["params"]["output"]
    np.testing.assert_allclose(trained["kernel"], kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(trained["bias"], bias, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimizer_state_keeps_requested_rate(name):
    config = DenseConfig(window_size=5, hidden=(4,))
    values = synthetic_series(length=60).values
    requested = [OptimizerConfig(name, learning_rate=rate) for rate in (2e-3, 7e-4)]
    result = train_stack(
        config,
        values,
        training_starts(config, 60),
        seeds=[0, 1],
        optimizer=requested,
        training=TrainConfig(epochs=2, batch_size=16),
    )
    stored = np.asarray(result.opt_state.hyperparams["learning_rate"])
    np.testing.assert_allclose(stored, [2e-3, 7e-4], rtol=1e-6)
    for setting, value in OptimizerConfig(name).hyperparameters().items():
        stored_setting = np.asarray(result.opt_state.hyperparams[setting])
        np.testing.assert_allclose(stored_setting, [value, value], rtol=1e-6)


# --- losses -------------------------------------------------------------------

PREDICTED = np.array([0.0, 0.5, 2.0, -3.0, 1.0], np.float32)
TARGET = np.array([0.2, 0.5, -1.0, 1.0, 1.9], np.float32)


def test_mse_loss_matches_numpy():
    loss = training._pointwise_loss("mse", 1.0)(PREDICTED, TARGET)
    expected = (PREDICTED - TARGET) ** 2
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_mae_loss_matches_numpy():
    loss = training._pointwise_loss("mae", 1.0)(PREDICTED, TARGET)
    expected = np.abs(PREDICTED - TARGET)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


@pytest.mark.parametrize("delta", [1.0, 0.5, 2.5])
def test_huber_loss_matches_numpy(delta):
    loss = training._pointwise_loss("huber", delta)(PREDICTED, TARGET)
    error = np.abs(PREDICTED - TARGET).astype(np.float64)
    expected = np.where(
        error <= delta, 0.5 * error**2, delta * (error - 0.5 * delta)
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_first_epoch_loss_is_mean_over_windows(loss):
    # With a learning rate of 1e-30 the weights do not move, so the first
    # epoch's loss is the loss of the initial network over every window.
    config = DenseConfig(window_size=3, hidden=(4,))
    values = synthetic_series(length=40).values / 100
    starts = training_starts(config, 40)
    result = train_stack(
        config,
        values,
        starts,
        seeds=[5],
        optimizer=OptimizerConfig("sgd", learning_rate=1e-30),
        training=TrainConfig(epochs=1, batch_size=8, loss=loss),
    )
    params, _ = init_stack(config, [5])
    x = np.stack([values[s : s + 3] for s in starts])
    error = numpy_forward(first_model(params), x) - values[starts + 3]
    pointwise = {
        "mse": error**2,
        "mae": np.abs(error),
        "huber": np.where(
            np.abs(error) <= 1.0, 0.5 * error**2, np.abs(error) - 0.5
        ),
    }[loss]
    assert result.history["loss"][0, 0] == pytest.approx(pointwise.mean(), rel=1e-5)


# --- batches ------------------------------------------------------------------


def test_seven_windows_form_one_batch_of_seven():
    orders = training.epoch_orders(np.arange(7), 1000, seeds=[0], epochs=3)
    padded, weights = training._batch_layout(orders, 32)
    assert padded.shape == (1, 3, 1, 32)
    assert weights.shape == (1, 32)
    assert weights.sum() == 7
    assert sorted(padded[0, 0, 0, :7].tolist()) == list(range(7))


def test_seven_windows_train_to_finite_loss():
    config = DenseConfig(window_size=3, hidden=(4,))
    values = np.arange(10, dtype=np.float32) / 10
    starts = training_starts(config, 10)
    assert len(starts) == 7
    result = train_stack(
        config,
        values,
        starts,
        seeds=[0],
        training=TrainConfig(epochs=4, batch_size=32),
    )
    assert result.history["loss"].shape == (1, 4)
    assert np.isfinite(result.history["loss"]).all()


def test_padding_carries_no_weight():
    # Seven windows padded to a batch of 32 give the mean over the seven only.
    config = DenseConfig(window_size=3, hidden=(4,))
    values = np.arange(10, dtype=np.float32) / 10
    starts = training_starts(config, 10)
    result = train_stack(
        config,
        values,
        starts,
        seeds=[2],
        optimizer=OptimizerConfig("sgd", learning_rate=1e-30),
        training=TrainConfig(epochs=1, batch_size=32),
    )
    params, _ = init_stack(config, [2])
    x = np.stack([values[s : s + 3] for s in starts])
    error = numpy_forward(first_model(params), x) - values[starts + 3]
    expected = np.mean(error**2)
    assert result.history["loss"][0, 0] == pytest.approx(expected, rel=1e-5)


# --- stacks -------------------------------------------------------------------

STACK_CONFIG = DenseConfig(window_size=10, hidden=(6, 6))
STACK_TRAINING = TrainConfig(epochs=5, batch_size=16)


def stack_data():
    series = synthetic_series(length=200)
    split = 160
    config = STACK_CONFIG
    starts = training_starts(config, split)
    val_starts = label_window_starts(config.window_size, split, 200)
    return series.values, starts, val_starts


def test_stack_equals_single_model_runs():
    values, starts, val_starts = stack_data()
    optimizer = OptimizerConfig("sgd", learning_rate=1e-5)
    stacked = train_stack(
        STACK_CONFIG,
        values,
        starts,
        seeds=[0, 1, 2],
        optimizer=optimizer,
        training=STACK_TRAINING,
        val_starts=val_starts,
    )
    for index, seed in enumerate([0, 1, 2]):
        alone = train_stack(
            STACK_CONFIG,
            values,
            starts,
            seeds=[seed],
            optimizer=optimizer,
            training=STACK_TRAINING,
            val_starts=val_starts,
        )
        np.testing.assert_allclose(
            stacked.history["loss"][index],
            alone.history["loss"][0],
            rtol=1e-5,
            err_msg=f"seed {seed}",
        )
        model = jax.tree.map(lambda leaf, i=index: leaf[i], stacked.params)
        pairs = zip(
            jax.tree.leaves(model), jax.tree.leaves(alone.params), strict=True
        )
        for stacked_leaf, alone_leaf in pairs:
            np.testing.assert_allclose(
                stacked_leaf, alone_leaf[0], atol=1e-5, err_msg=f"seed {seed}"
            )


def test_training_compiles_once():
    values, starts, val_starts = stack_data()
    arguments = dict(
        seeds=[0, 1],
        training=STACK_TRAINING,
        val_starts=val_starts,
    )
    train_stack(STACK_CONFIG, values, starts, **arguments)
    compiled = training._train_chunk._cache_size()
    train_stack(STACK_CONFIG, values, starts, **arguments)
    train_stack(STACK_CONFIG, values, starts, **{**arguments, "seeds": [7, 8]})
    assert training._train_chunk._cache_size() == compiled


def test_masked_stack_trains_like_narrow_model():
    values, starts, val_starts = stack_data()
    narrow = DenseConfig(window_size=10, hidden=(3, 5))
    optimizer = OptimizerConfig("sgd", learning_rate=1e-5)
    masked = train_stack(
        STACK_CONFIG,
        values,
        starts,
        seeds=[4, 4],
        widths=[(3, 5), (6, 6)],
        optimizer=optimizer,
        training=STACK_TRAINING,
        val_starts=val_starts,
    )
    alone = train_stack(
        narrow,
        values,
        starts,
        seeds=[4],
        optimizer=optimizer,
        training=STACK_TRAINING,
        val_starts=val_starts,
    )
    for metric in ("loss", "val_loss"):
        np.testing.assert_allclose(
            masked.history[metric][0], alone.history[metric][0], rtol=1e-5
        )
    padded = first_model(masked.params)["params"]
    small = first_model(alone.params)["params"]
    for layer, weights in small.items():
        for name, expected in weights.items():
            region = tuple(slice(0, size) for size in expected.shape)
            np.testing.assert_allclose(
                padded[layer][name][region], expected, atol=1e-5, err_msg=layer
            )


# --- divergence ---------------------------------------------------------------


def test_nan_loss_raises_with_epoch_and_rate():
    values, starts, _ = stack_data()
    with pytest.raises(TrainingDivergedError) as caught:
        train_stack(
            STACK_CONFIG,
            values,
            starts,
            seeds=[0],
            optimizer=OptimizerConfig("sgd", learning_rate=10.0),
            training=STACK_TRAINING,
        )
    error = caught.value
    assert 1 <= error.epoch <= STACK_TRAINING.epochs
    assert error.learning_rate == pytest.approx(10.0, rel=1e-6)
    assert f"epoch {error.epoch}" in str(error)
    assert "learning rate 10" in str(error)


def test_marked_divergence_lets_others_finish():
    values, starts, _ = stack_data()
    result = train_stack(
        STACK_CONFIG,
        values,
        starts,
        seeds=[0, 1],
        optimizer=[
            OptimizerConfig("sgd", learning_rate=10.0),
            OptimizerConfig("sgd", learning_rate=1e-6),
        ],
        training=dataclasses.replace(STACK_TRAINING, on_divergence="mark"),
    )
    assert result.diverged.tolist() == [True, False]
    assert result.diverged_epoch[0] >= 1
    assert np.isfinite(result.history["loss"][1]).all()
    assert result.stopped_epoch[1] == STACK_TRAINING.epochs
