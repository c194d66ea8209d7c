"""Tests of learning-rate sweeps, and of the trainer features they rely on:
early stopping, per-model rates in the optimizer state, and the published
sweep schedule."""

import json
import math

import jax
import numpy as np
import pytest

from seqcast import metrics
from seqcast.data import synthetic_series
from seqcast.errors import SeqcastError
from seqcast.forecasting import predict_windows
from seqcast.learning_rates import (
    DEFAULT_EXACT_RATES,
    SUGGESTION_RULE,
    ExactSweepResult,
    Suggestion,
    exact_sweep,
    lr_sweep,
    suggest_learning_rate,
)
from seqcast.models import DenseConfig, init_stack
from seqcast.optimizers import OptimizerConfig
from seqcast.schedules import ExponentialSweep
from seqcast.training import TrainConfig, train_stack
from seqcast.windows import label_window_starts

# Training windows with window_size 20 before step 1000: 980 windows, so 31
# batches of 32 in an epoch.
TRAIN_STARTS = label_window_starts(20, 20, 1000)
VAL_STARTS = label_window_starts(20, 1000, 1461)
STEPS_PER_EPOCH = 31


def assert_trees_close(actual, expected, tolerance=1e-6):
    for a, b in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), rtol=tolerance, atol=tolerance
        )


def model_params(params, index):
    return jax.tree.map(lambda leaf: leaf[index : index + 1], params)


# Early stopping on a series built so that the best epoch is known in closed
# form. Training labels are 10 and validation labels 3. From all-zero weights
# only the output bias b gets a gradient, because ReLU's derivative at 0 is 0,
# so every forecast is b. SGD without momentum takes 31 steps of
# b -= rate * 2 * (b - 10) an epoch, so after k epochs
# b = 10 * (1 - (1 - 2 * rate) ** (31 * k)). The validation loss (b - 3) ** 2
# falls until b passes 3 and rises after.
def step_series() -> np.ndarray:
    return np.concatenate([np.full(1000, 10.0), np.full(461, 3.0)]).astype(np.float32)


def zero_params(num_models: int):
    params, _ = init_stack(DenseConfig(), list(range(num_models)))
    return jax.tree.map(np.zeros_like, params)


def closed_form_best_epoch(rate: float, epochs: int) -> int:
    k = np.arange(1, epochs + 1)
    bias = 10.0 * (1.0 - (1.0 - 2.0 * rate) ** (STEPS_PER_EPOCH * k))
    return int(np.argmin(np.abs(bias - 3.0))) + 1


def train_step_series(rates, epochs, patience=None):
    return train_stack(
        DenseConfig(),
        step_series(),
        TRAIN_STARTS,
        seeds=[0] * len(rates),
        optimizer=OptimizerConfig("sgd", momentum=0.0),
        learning_rate=list(rates),
        training=TrainConfig(epochs=epochs, patience=patience),
        val_starts=VAL_STARTS,
        params=zero_params(len(rates)),
    )


def test_early_stopping_restores_best_epoch_weights():
    rate, patience = 1e-3, 3
    result = train_step_series([rate], epochs=40, patience=patience)
    best = int(result.best_epoch[0])
    assert best == closed_form_best_epoch(rate, 40) == 6
    assert int(result.stopped_epoch[0]) == best + patience
    val_loss = result.history["val_loss"][0]
    assert val_loss[best] > val_loss[best - 1], "validation loss must rise after"

    exact = train_step_series([rate], epochs=best)
    assert_trees_close(result.params, exact.params, 1e-6)

    last = train_step_series([rate], epochs=best + patience)
    bias = np.asarray(result.params["params"]["output"]["bias"])
    last_bias = np.asarray(last.params["params"]["output"]["bias"])
    assert abs(bias[0] - last_bias[0]) > 0.1, "the last epoch's weights were kept"


def test_early_stopping_per_model_in_stack():
    rates, patience, epochs = [1e-3, 3e-4], 2, 60
    result = train_step_series(rates, epochs=epochs, patience=patience)
    expected_best = [closed_form_best_epoch(rate, epochs) for rate in rates]
    assert result.best_epoch.tolist() == expected_best == [6, 19]
    assert result.stopped_epoch.tolist() == [6 + patience, 19 + patience]
    loss = result.history["loss"]
    assert np.isfinite(loss[0, : 6 + patience]).all()
    assert np.isnan(loss[0, 6 + patience :]).all(), "model 0 trained after it stopped"
    assert np.isfinite(loss[1, : 19 + patience]).all()

    for index, rate in enumerate(rates):
        alone = train_step_series([rate], epochs=expected_best[index])
        assert_trees_close(model_params(result.params, index), alone.params, 1e-6)


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("sgd", {"momentum": 0.5}),
        ("adam", {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
        ("adamw", {"beta_1": 0.8, "weight_decay": 0.01}),
    ],
)
def test_optimizer_state_contains_requested_rate(name, settings):
    rates = [3e-4, 2e-5]
    optimizer = OptimizerConfig(name, learning_rate=1.0, **settings)
    result = train_stack(
        DenseConfig(),
        synthetic_series().values,
        TRAIN_STARTS,
        seeds=[0, 1],
        optimizer=optimizer,
        learning_rate=rates,
        training=TrainConfig(epochs=2),
    )
    stored = np.asarray(result.opt_state.hyperparams["learning_rate"])
    assert stored.tolist() == np.float32(rates).tolist()
    for setting, value in settings.items():
        stored_setting = np.asarray(result.opt_state.hyperparams[setting])
        assert stored_setting.tolist() == [np.float32(value)] * 2, setting


def test_optimizer_state_default_rate():
    optimizer = OptimizerConfig("adam", learning_rate=7e-4)
    result = train_stack(
        DenseConfig(),
        synthetic_series().values,
        TRAIN_STARTS,
        seeds=[0],
        optimizer=optimizer,
        training=TrainConfig(epochs=1),
    )
    stored = np.asarray(result.opt_state.hyperparams["learning_rate"])
    assert stored.tolist() == [np.float32(7e-4)]


def test_published_schedule_exact_values():
    schedule = ExponentialSweep()
    assert float(schedule.rate_at(0)) == 1e-8
    assert float(schedule.rate_at(20)) == 1e-7
    assert float(schedule.rate_at(100)) == 1e-3
    rates = schedule.rate_at(np.arange(101))
    assert rates.dtype == np.float64
    for epoch in range(101):
        assert rates[epoch] == 1e-8 * 10 ** (epoch / 20), f"epoch {epoch}"


def test_published_schedule_fixed_within_epoch():
    table = ExponentialSweep().rates(3, STEPS_PER_EPOCH)
    assert table.shape == (3, STEPS_PER_EPOCH)
    assert (table == table[:, :1]).all()
    assert table[1, 0] == 1e-8 * 10 ** (1 / 20)


# The suggestion rule.
RISING_RATES = [1e-8 * 10 ** (k / 20) for k in range(7)]


def test_suggestion_ignores_trailing_nan():
    losses = [0.90, 0.89, 0.87, 0.86, 0.85, 0.84]
    clean = suggest_learning_rate(RISING_RATES[:6], losses)
    with_nan = suggest_learning_rate(RISING_RATES, losses + [math.nan])
    assert clean == with_nan
    assert clean.rate == RISING_RATES[5]
    assert clean.reason is None
    assert clean.rule == SUGGESTION_RULE


def test_suggestion_all_nan_returns_reason():
    suggestion = suggest_learning_rate(RISING_RATES, [math.nan] * 7)
    assert suggestion.rate is None
    assert "NaN" in suggestion.reason


def test_suggestion_too_few_points_returns_reason():
    losses = [5.0, 4.0, 3.0, 2.0, math.inf, 1.0, 1.0]
    suggestion = suggest_learning_rate(RISING_RATES, losses)
    assert suggestion.rate is None
    assert "only 4 epochs" in suggestion.reason


def test_suggestion_five_points_suffice():
    suggestion = suggest_learning_rate(RISING_RATES[:5], [5.0, 4.0, 3.0, 2.5, 2.6])
    assert suggestion.rate == RISING_RATES[3]


def test_suggestion_cuts_loss_blowup():
    # The loss at index 6 exceeds 4 times the lowest loss so far; the dip
    # after it must not count.
    rates = [1e-8 * 10 ** (k / 20) for k in range(10)]
    losses = [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 17.0, 0.5, 0.5, 0.5]
    assert suggest_learning_rate(rates, losses).rate == rates[5]


def test_suggestion_smooths_single_low_epoch():
    # A valley centred on epoch 29, symmetric in log(loss), with one lucky
    # epoch at 10 that is lower than the valley's floor.
    epochs = np.arange(50)
    rates = [1e-8 * 10 ** (k / 20) for k in epochs]
    losses = 5.0 * np.exp(0.002 * (epochs - 29.0) ** 2)
    losses[10] = 3.0
    assert int(np.argmin(losses)) == 10
    assert suggest_learning_rate(rates, losses).rate == rates[29]


@pytest.mark.parametrize(
    ("rates", "losses", "message"),
    [
        ([1e-8, 1e-7], [1.0], "got 2 learning rates but 1 losses"),
        ([1e-8, -1.0], [1.0, 1.0], "finite and positive"),
        ([[1e-8]], [[1.0]], "must be 1-D"),
        ("abc", [1.0], "sequence of numbers"),
    ],
)
def test_suggestion_rejects_bad_input(rates, losses, message):
    with pytest.raises(SeqcastError, match=message):
        suggest_learning_rate(rates, losses)


# The published sweep on the reference series, run once for several tests.
@pytest.fixture(scope="module")
def default_sweep():
    return lr_sweep(synthetic_series())


def test_sweep_records_exact_published_rates(default_sweep):
    rates = default_sweep.learning_rates
    assert rates.shape == (100,)
    assert rates.dtype == np.float64
    assert rates.tolist() == [1e-8 * 10 ** (e / 20) for e in range(100)]
    assert default_sweep.losses.shape == (100,)


def test_sweep_curve_falls_then_rises(default_sweep):
    losses = default_sweep.losses
    assert losses[0] > 1000.0, f"first loss {losses[0]}"
    assert np.nanmin(losses) < 50.0, f"lowest loss {np.nanmin(losses)}"
    rates = default_sweep.learning_rates
    late = losses[rates > 1e-4]
    assert not np.all(late < 4 * np.nanmin(losses)), "no rise past 1e-4"


def test_sweep_suggestion_in_published_range(default_sweep):
    suggestion = default_sweep.suggestion
    assert suggestion.reason is None
    assert 1e-6 <= suggestion.rate <= 1e-4, f"suggested {suggestion.rate}"


def test_sweep_optimizer_state_last_rate(default_sweep):
    stored = np.asarray(default_sweep.result.opt_state.hyperparams["learning_rate"])
    assert stored.tolist() == [np.float32(1e-8 * 10 ** (99 / 20))]


def test_sweep_plot_limits_match_reference(default_sweep):
    xlim, ylim = default_sweep.plot_limits()
    assert xlim == (1e-8, 1e-3)
    assert ylim == (0.0, 300.0)


def test_sweep_plot_writes_png(default_sweep, tmp_path):
    path = default_sweep.plot(tmp_path / "sweep.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_to_dict_is_json(default_sweep):
    report = default_sweep.to_dict()
    assert set(report) == {
        "suggested_learning_rate", "reason", "rule", "losses", "learning_rates",
    }  # fmt: skip
    assert report["suggested_learning_rate"] == default_sweep.suggestion.rate
    assert len(report["losses"]) == 100
    json.dumps(report, allow_nan=False)


def test_sweep_marks_divergence_without_raising():
    schedule = ExponentialSweep(start=1e-3, factor=100.0, every=1.0)
    sweep = lr_sweep(
        synthetic_series(), schedule=schedule, training=TrainConfig(epochs=6)
    )
    assert sweep.diverged_epoch > 0
    assert not np.isfinite(sweep.losses[sweep.diverged_epoch - 1])
    assert isinstance(sweep.suggestion, Suggestion)
    report = sweep.to_dict()
    assert report["losses"][sweep.diverged_epoch - 1] is None
    json.dumps(report, allow_nan=False)


def test_sweep_rejects_patience():
    with pytest.raises(SeqcastError, match="leave patience unset"):
        lr_sweep(synthetic_series(), training=TrainConfig(epochs=2, patience=1))


def test_sweep_without_split_uses_whole_series():
    sweep = lr_sweep(synthetic_series(length=200), split=None,
                     training=TrainConfig(epochs=2))  # fmt: skip
    assert sweep.losses.shape == (2,)
    assert np.isfinite(sweep.losses).all()


# The exact sweep.
def test_default_exact_grid():
    assert len(DEFAULT_EXACT_RATES) == 12
    assert DEFAULT_EXACT_RATES[0] == 1e-8
    assert 1e-6 in DEFAULT_EXACT_RATES.tolist()
    assert 1e-5 in DEFAULT_EXACT_RATES.tolist()
    assert DEFAULT_EXACT_RATES[-1] == pytest.approx(10**-2.5, rel=1e-15)
    np.testing.assert_allclose(np.diff(np.log10(DEFAULT_EXACT_RATES)), 0.5, rtol=1e-12)


def test_exact_sweep_matches_separate_runs():
    rates, executions, epochs, seed = [1e-5, 1e-6], 2, 3, 4
    series = synthetic_series()
    sweep = exact_sweep(
        series, rates=rates, executions=executions, seed=seed,
        training=TrainConfig(epochs=epochs),
    )  # fmt: skip
    assert sweep.rates.tolist() == [1e-6, 1e-5]
    assert sweep.seeds == [4, 5]
    assert sweep.val_mae.shape == (2, 2)
    actual = series.values[VAL_STARTS + 20]
    for k, rate in enumerate(sweep.rates):
        members = []
        for j in range(executions):
            alone = train_stack(
                DenseConfig(), series.values, TRAIN_STARTS, seeds=[seed + j],
                learning_rate=float(rate), training=TrainConfig(epochs=epochs),
            )  # fmt: skip
            model = k * executions + j
            assert_trees_close(model_params(sweep.result.params, model), alone.params)
            forecast = predict_windows(
                DenseConfig(), alone.params, series.values, VAL_STARTS
            )[0]
            members.append(forecast)
            expected_mae = metrics.mae(actual, forecast)
            assert sweep.val_mae[k, j] == pytest.approx(expected_mae, rel=1e-5)
            expected_loss = alone.history["loss"][0, -1]
            assert sweep.train_loss[k, j] == pytest.approx(expected_loss, rel=1e-5)
        ensemble = metrics.mae(actual, np.mean(members, axis=0))
        assert sweep.ensemble_val_mae[k] == pytest.approx(ensemble, rel=1e-5)


def test_exact_sweep_same_init_per_rate():
    # Rates this small move no weight by more than about 1e-6 in one epoch, so
    # the trained weights show where each model started.
    sweep = exact_sweep(
        synthetic_series(), rates=[1e-13, 1e-12], executions=2, seed=7,
        training=TrainConfig(epochs=1),
    )  # fmt: skip
    assert sweep.seeds == [7, 8]
    initial, _ = init_stack(DenseConfig(), [7, 8])
    for k in range(2):
        for j in range(2):
            trained = model_params(sweep.result.params, 2 * k + j)
            assert_trees_close(trained, model_params(initial, j), 1e-5)


def test_exact_sweep_survives_divergence():
    sweep = exact_sweep(
        synthetic_series(), rates=[1e-6, 100.0], executions=3,
        training=TrainConfig(epochs=3),
    )  # fmt: skip
    assert sweep.diverged[0].tolist() == [False, False, False]
    assert sweep.diverged[1].tolist() == [True, True, True]
    assert sweep.diverged_all.tolist() == [False, True]
    assert np.isnan(sweep.val_mae[1]).all()
    assert np.isnan(sweep.train_loss[1]).all()
    assert math.isnan(sweep.ensemble_val_mae[1])
    assert np.isfinite(sweep.val_mae[0]).all()
    assert sweep.ranking.tolist() == [0, 1]
    assert sweep.best_rate == 1e-6
    rows = sweep.rows()
    assert rows[1]["val_mae"] is None
    assert rows[1]["diverged"] is True
    assert rows[1]["diverged_executions"] == 3
    json.dumps(sweep.to_dict(), allow_nan=False)


def constructed_result() -> ExactSweepResult:
    nan = math.nan
    diverged = np.array(
        [[True, True, True], [False, True, False], [False] * 3, [False] * 3]
    )
    val_mae = np.array(
        [[nan, nan, nan], [4.0, nan, 4.2], [5.0, 5.0, 5.3], [4.5, 4.6, 4.7]]
    )
    return ExactSweepResult(
        rates=np.array([1e-6, 1e-5, 1e-4, 1e-3]),
        seeds=[0, 1, 2],
        train_loss=np.where(diverged, nan, 30.0),
        val_mae=val_mae,
        ensemble_val_mae=np.array([nan, 4.05, 5.05, 4.55]),
        diverged=diverged,
        result=None,
    )


def test_exact_ranking_order():
    sweep = constructed_result()
    # Clean rates by MAE, then the partly diverged rate, then the rate whose
    # executions all diverged, even though its rate is the smallest.
    assert sweep.ranking.tolist() == [3, 2, 1, 0]
    assert sweep.best_rate == 1e-3
    assert [row["rank"] for row in sweep.rows()] == [4, 3, 2, 1]


def test_exact_statistics_exclude_diverged():
    sweep = constructed_result()
    assert sweep.val_mae_mean[1] == pytest.approx(4.1, abs=1e-12)
    assert sweep.val_mae_std[1] == pytest.approx(0.1, abs=1e-12)
    assert math.isnan(sweep.val_mae_mean[0])
    assert sweep.diverged_any.tolist() == [True, True, False, False]
    assert sweep.diverged_all.tolist() == [True, False, False, False]
    assert sweep.rows()[0]["loss"] is None
    assert sweep.rows()[0]["diverged"] is True


def test_exact_best_rate_none_when_best_partly_diverged():
    sweep = constructed_result()
    # Only rate 1e-5 (two of three executions diverged) and 1e-6 (all of
    # them) remain, so no rate trained cleanly in every execution.
    sweep.diverged[2:] = True
    sweep.diverged[1] = [False, True, False]
    assert sweep.ranking[0] == 1
    assert sweep.best_rate is None


def test_exact_best_rate_none_when_all_diverge():
    sweep = constructed_result()
    sweep.diverged[:] = True
    assert sweep.best_rate is None


def test_exact_plot_writes_png(tmp_path):
    path = constructed_result().plot(tmp_path / "exact.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ([], "rates is empty"),
        ([1e-6, -1e-5], "finite and positive, got -1e-05"),
        ([1e-6, math.nan], "finite and positive, got nan"),
        ([1e-6, 1e-6], "duplicates"),
        (["abc"], "sequence of numbers"),
    ],
)
def test_exact_sweep_rejects_bad_rates(rates, message):
    with pytest.raises(SeqcastError, match=message):
        exact_sweep(synthetic_series(), rates=rates, training=TrainConfig(epochs=1))


@pytest.mark.parametrize(
    ("executions", "message"), [(0, "at least 1, got 0"), (1.5, "whole number")]
)
def test_exact_sweep_rejects_bad_executions(executions, message):
    with pytest.raises(SeqcastError, match=message):
        exact_sweep(synthetic_series(), executions=executions)


def test_exact_sweep_requires_split():
    with pytest.raises(SeqcastError, match="needs a split"):
        exact_sweep(synthetic_series(), split=None)
