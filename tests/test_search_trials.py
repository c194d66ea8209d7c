"""Building trial settings, training batches of trials, and scoring them."""

import math

import numpy as np
import pytest

from seqcast.data import synthetic_series
from seqcast.errors import SeqcastError
from seqcast.models import DenseConfig
from seqcast.search import (
    Choice,
    Fixed,
    Int,
    SearchData,
    SearchSpace,
    TrialRecord,
    TrialSettings,
    aggregate_scores,
    best_so_far,
    build_settings,
    plan_stacks,
    rank,
    train_trials,
)
from seqcast.search.settings import check_space
from seqcast.search.trials import model_memory_bytes, train_plan
from seqcast.training import TrainConfig

TINY = TrialSettings(
    model=DenseConfig(window_size=5, hidden=(4, 4)),
    training=TrainConfig(epochs=3, batch_size=16),
)


@pytest.fixture(scope="module")
def data():
    return SearchData.from_series(synthetic_series(length=120), 90)


def test_build_maps_each_value_by_keyword():
    settings = build_settings(
        {
            "units": 28, "momentum": 0.5, "learning_rate": 1e-5, "epochs": 7,
            "batch_size": 8, "shuffle_buffer": 4, "loss": "huber",
            "activation": "tanh", "window_size": 12, "nesterov": True,
        }
    )  # fmt: skip
    assert settings.model.hidden == (28, 10)
    assert settings.model.activation == "tanh"
    assert settings.model.window_size == 12
    assert settings.optimizer.momentum == 0.5
    assert settings.optimizer.learning_rate == 1e-5
    assert settings.optimizer.nesterov is True
    assert settings.training.epochs == 7
    assert settings.training.batch_size == 8
    assert settings.training.shuffle_buffer == 4
    assert settings.training.loss == "huber"


def test_build_layers_and_their_widths():
    settings = build_settings({"layers": 3, "units": 20, "units_2": 6})
    assert settings.model.hidden == (20, 10, 6)


def test_build_ignores_width_of_missing_layer():
    assert build_settings({"layers": 1, "units_1": 6}).model.hidden == (10,)


def test_build_adam_settings():
    settings = build_settings({"optimizer": "adamw", "beta_1": 0.8, "weight_decay": 0})
    assert settings.optimizer.name == "adamw"
    assert settings.optimizer.beta_1 == 0.8
    assert settings.optimizer.weight_decay == 0.0


def test_unknown_name_lists_known_ones():
    with pytest.raises(SeqcastError, match="unknown hyperparameter 'lr'.*momentum"):
        build_settings({"lr": 1e-5})


def test_check_space_rejects_invalid_value():
    space = SearchSpace([Choice("momentum", [0.9, 1.0])])
    with pytest.raises(SeqcastError, match="'momentum' = 1.0 is invalid"):
        check_space(space, TrialSettings())


def test_plan_groups_widths_into_one_stack():
    settings = [build_settings({"units": u}, TINY) for u in (2, 4, 3)]
    plans = plan_stacks(settings, executions=2, seed=5)
    assert len(plans) == 1
    assert plans[0].model.hidden == (4, 4)
    assert plans[0].seeds == [5, 6, 5, 6, 5, 6]
    assert plans[0].widths == [(2, 4), (2, 4), (4, 4), (4, 4), (3, 4), (3, 4)]


def test_plan_splits_group_to_fit_memory():
    settings = [build_settings({"units": u}, TINY) for u in (2, 4, 3, 4, 2)]
    per_trial = 2 * model_memory_bytes(settings[1].model, settings[1].training)
    plans = plan_stacks(settings, executions=2, memory_bytes=2 * per_trial)
    assert [plan.trials for plan in plans] == [[0, 1], [2, 3], [4]]
    assert all(len(plan.seeds) <= 4 for plan in plans)


def test_model_memory_counts_parameters_and_windows():
    model = DenseConfig(window_size=20, hidden=(10, 10))
    training = TrainConfig(batch_size=32)
    parameters = 20 * 10 + 10 + 10 * 10 + 10 + 10 * 1 + 1
    windows = (32 + 4096) * (21 + 3 * 20)
    assert model_memory_bytes(model, training) == 4 * (5 * parameters + windows)


def test_plan_splits_by_activation():
    settings = [build_settings({"activation": a}, TINY) for a in ("relu", "tanh")]
    assert [plan.trials for plan in plan_stacks(settings, 1)] == [[0], [1]]


def test_searched_momentum_reaches_optimizer_state(data):
    space = SearchSpace(
        [Int("units", 2, 4), Choice("momentum", [0.9, 0.3]), Fixed("epochs", 2)]
    )
    combos = [space.with_fixed(c) for c in space.combinations()]
    settings = [build_settings(c, TINY) for c in combos]
    plan = plan_stacks(settings, executions=2)[0]
    result = train_plan(plan, data)
    stored = np.asarray(result.opt_state.hyperparams["momentum"])
    for i, combo in enumerate(combos):
        for j in range(2):
            np.testing.assert_allclose(
                stored[2 * i + j], combo["momentum"], rtol=1e-7,
                err_msg=f"trial {combo}, execution {j}",
            )  # fmt: skip


def test_masked_model_trains_like_narrow_model(data):
    narrow = build_settings({"units": 2, "units_1": 3}, TINY)
    wide = build_settings({"units": 4}, TINY)
    alone = train_trials([narrow], data, executions=2, seed=3)[0]
    mixed = train_trials([wide, narrow], data, executions=2, seed=3)[1]
    # Padded units carry exact zeros, so only float summation order differs.
    np.testing.assert_allclose(mixed.history["loss"], alone.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(
        mixed.execution_scores, alone.execution_scores, rtol=1e-4
    )


def test_forecast_objective_scores_ensemble(data):
    settings = build_settings({}, TINY)
    outcome = train_trials([settings], data, executions=2, objective="val_rmse")[0]
    assert outcome.score == pytest.approx(outcome.figures["val_rmse"], rel=1e-12)
    assert len(outcome.execution_scores) == 2


def test_unknown_objective_rejected(data):
    with pytest.raises(SeqcastError, match="unknown objective 'mae'"):
        train_trials([TINY], data, objective="mae")


def test_aggregate_three_executions():
    mean, std = aggregate_scores([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0, abs=1e-12)
    # Population standard deviation: sqrt(2 / 3).
    assert std == pytest.approx(math.sqrt(2 / 3), abs=1e-12)


def test_aggregate_nan_execution_gives_nan():
    mean, std = aggregate_scores([1.0, float("nan"), 3.0])
    assert math.isnan(mean)
    assert math.isnan(std)


def test_rank_puts_nan_last():
    records = [
        TrialRecord(1, "complete", {}, 0.0554),
        TrialRecord(2, "complete", {}, float("nan")),
        TrialRecord(3, "complete", {}, 0.0543),
    ]
    assert [r.number for r in rank(records)] == [3, 1, 2]


def test_rank_leaves_out_unfinished_trials():
    records = [TrialRecord(1, "running", {}), TrialRecord(2, "complete", {}, 1.0)]
    assert [r.number for r in rank(records)] == [2]


def test_best_so_far_skips_nan_first_trial():
    running = best_so_far([float("nan"), 0.5])
    assert math.isnan(running[0])
    assert running[1] == 0.5


def test_best_so_far_keeps_lowest():
    assert best_so_far([0.7, 0.5, 0.6]) == [0.7, 0.5, 0.5]


def test_test_split_must_follow_split():
    with pytest.raises(SeqcastError, match="must come after the split"):
        SearchData.from_series(synthetic_series(length=120), 90, test_split=80)
