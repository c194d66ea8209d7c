"""The Tuner: running, resuming and reading back searches."""

import dataclasses
import math
import socket

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

from seqcast.data import synthetic_series
from seqcast.errors import SeqcastError
from seqcast.forecasting import Forecaster
from seqcast.models import DenseConfig
from seqcast.search import (
    Choice,
    Fixed,
    Int,
    SearchSpace,
    TrialSettings,
    Tuner,
)
from seqcast.search.results import RESULT_ATTR
from seqcast.training import TrainConfig

SERIES = synthetic_series(length=120)
SPLIT = 90
BASE = TrialSettings(
    model=DenseConfig(window_size=5, hidden=(4, 4)),
    training=TrainConfig(epochs=2, batch_size=16),
)


def small_space(*extra, momenta=(0.9, 0.5)):
    return SearchSpace(
        [Choice("momentum", momenta), Fixed("learning_rate", 1e-5), *extra]
    )


# Most searches below train one or two models of one shape, so they reuse the
# compiled program of the previous test.
THREE_MOMENTA = (0.9, 0.7, 0.5)


def make_tuner(tmp_path, space, **options):
    options.setdefault("executions_per_trial", 1)
    return Tuner(space, directory=tmp_path, base=BASE, **options)


def new_study(directory):
    """Create the study that a Tuner in ``directory`` would open, with no trials."""
    (directory / "default").mkdir()
    storage = f"sqlite:///{directory / 'default' / 'study.db'}"
    return optuna.create_study(study_name="default", storage=storage)


def params_of(tuner):
    return [
        tuple(sorted(r.hyperparameters.items()))
        for r in tuner.trials
        if r.state == "complete"
    ]


def test_search_runs_every_combination_once(tmp_path):
    space = SearchSpace([
        Int("units", 2, 4), Choice("momentum", [0.9, 0.5, 0.3]),
        Choice("learning_rate", [1e-5, 1e-4]),
    ])  # fmt: skip
    tuner = make_tuner(tmp_path, space, max_trials=18).search(SERIES, SPLIT)
    ran = params_of(tuner)
    assert len(ran) == 18
    assert len(set(ran)) == 18
    assert [r.number for r in tuner.trials] == list(range(1, 19))


def test_one_combination_stops_after_one_trial(tmp_path):
    space = SearchSpace([Fixed("momentum", 0.5)])
    tuner = make_tuner(tmp_path, space, max_trials=100).search(SERIES, SPLIT)
    assert [(r.number, r.state) for r in tuner.trials] == [(1, "complete")]


def test_resume_runs_one_more_trial_numbered_3(tmp_path):
    space = small_space(momenta=THREE_MOMENTA)
    make_tuner(tmp_path, space, max_trials=2).search(SERIES, SPLIT)
    tuner = make_tuner(tmp_path, space, max_trials=3).search(SERIES, SPLIT)
    assert [r.number for r in tuner.trials] == [1, 2, 3]
    assert all(r.state == "complete" for r in tuner.trials)


def test_resume_at_max_trials_runs_none(tmp_path):
    space = small_space(momenta=THREE_MOMENTA)
    first = make_tuner(tmp_path, space, max_trials=2).search(SERIES, SPLIT)
    before = [(r.number, r.hyperparameters, r.score) for r in first.trials]
    again = make_tuner(tmp_path, space, max_trials=2).search(SERIES, SPLIT)
    after = [(r.number, r.hyperparameters, r.score) for r in again.trials]
    assert after == before


def test_resume_with_added_hyperparameter_fails(tmp_path):
    make_tuner(tmp_path, small_space(), max_trials=1).search(SERIES, SPLIT)
    changed = small_space(Choice("activation", ["relu", "tanh"]))
    with pytest.raises(SeqcastError, match="hyperparameter 'activation' was added"):
        make_tuner(tmp_path, changed, max_trials=2).search(SERIES, SPLIT)


def test_overwrite_starts_clean(tmp_path):
    make_tuner(tmp_path, small_space(), max_trials=2).search(SERIES, SPLIT)
    changed = small_space(Choice("activation", ["relu", "tanh"]))
    tuner = make_tuner(tmp_path, changed, max_trials=1, overwrite=True)
    tuner.search(SERIES, SPLIT)
    assert [r.number for r in tuner.trials] == [1]
    assert "activation" in tuner.trials[0].hyperparameters


def test_resume_with_changed_epochs_names_the_setting(tmp_path):
    make_tuner(tmp_path, small_space(), max_trials=1).search(SERIES, SPLIT)
    longer = dataclasses.replace(
        BASE,
        training=dataclasses.replace(BASE.training, epochs=BASE.training.epochs + 1),
    )
    with pytest.raises(SeqcastError) as error:
        Tuner(
            small_space(), directory=tmp_path, base=longer, max_trials=2,
            executions_per_trial=1,
        ).search(SERIES, SPLIT)  # fmt: skip
    message = str(error.value)
    assert f"training.epochs changed from {BASE.training.epochs} to" in message
    assert "window_size" not in message


def test_resume_with_changed_objective_fails(tmp_path):
    make_tuner(tmp_path, small_space(), max_trials=1).search(SERIES, SPLIT)
    with pytest.raises(SeqcastError, match="objective changed from 'loss'"):
        make_tuner(tmp_path, small_space(), max_trials=2, objective="val_loss").search(
            SERIES, SPLIT
        )


def test_execution_scores_are_stored(tmp_path):
    tuner = make_tuner(
        tmp_path, SearchSpace([Fixed("momentum", 0.5)]), max_trials=1,
        executions_per_trial=3,
    ).search(SERIES, SPLIT)  # fmt: skip
    record = tuner.trials[0]
    assert len(record.execution_scores) == 3
    assert record.score == pytest.approx(np.mean(record.execution_scores), rel=1e-9)
    study = optuna.load_study(
        study_name="default", storage=f"sqlite:///{tmp_path / 'default' / 'study.db'}"
    )
    stored = study.trials[0].user_attrs[RESULT_ATTR]["execution_scores"]
    assert stored == pytest.approx(list(record.execution_scores), rel=1e-12)


MOMENTUM = Choice("momentum", [0.9, 0.5, 0.3]).distribution()


def _add_scored_trial(study, momentum, score):
    study.add_trial(
        create_trial(
            params={"momentum": momentum},
            distributions={"momentum": MOMENTUM},
            value=score if math.isfinite(score) else math.inf,
            user_attrs={
                RESULT_ATTR: {
                    "hyperparameters": {"momentum": momentum},
                    "score": score if math.isfinite(score) else None,
                }
            },
        )  # fmt: skip
    )


def test_nan_score_ranks_last(tmp_path):
    space = SearchSpace([Choice("momentum", [0.9, 0.5, 0.3])])
    tuner = make_tuner(tmp_path, space, max_trials=3)
    study = new_study(tmp_path)
    for momentum, score in ((0.9, 0.0554), (0.5, float("nan")), (0.3, 0.0543)):
        _add_scored_trial(study, momentum, score)
    ranked = tuner.ranked_trials()
    assert [r.score for r in ranked[:2]] == [0.0543, 0.0554]
    assert math.isnan(ranked[2].score)
    assert tuner.get_best_hyperparameters(1) == [{"momentum": 0.3}]


def test_nan_first_trial_is_not_best(tmp_path):
    space = SearchSpace([Choice("momentum", [0.9, 0.5])])
    tuner = make_tuner(tmp_path, space, max_trials=2)
    study = new_study(tmp_path)
    _add_scored_trial(study, 0.9, float("nan"))
    _add_scored_trial(study, 0.5, 0.5)
    assert tuner.ranked_trials(1)[0].score == 0.5


def test_diverged_trial_completes_with_nan(tmp_path):
    space = SearchSpace([Fixed("learning_rate", 1e3), Fixed("momentum", 0.9)])
    tuner = make_tuner(tmp_path, space, max_trials=1).search(SERIES, SPLIT)
    record = tuner.trials[0]
    assert record.state == "complete"
    assert math.isnan(record.score)


def test_grid_runs_combinations_in_order(tmp_path):
    space = SearchSpace(
        [Choice("momentum", [0.9, 0.5]), Choice("learning_rate", [1e-5, 1e-4])]
    )
    tuner = make_tuner(tmp_path, space, algorithm="grid", max_trials=4)
    tuner.search(SERIES, SPLIT)
    searched = [r.hyperparameters for r in tuner.trials]
    assert searched == list(space.combinations())


def test_tpe_never_repeats_in_finite_space(tmp_path):
    space = SearchSpace(
        [Choice("momentum", [0.9, 0.5, 0.3]), Choice("learning_rate", [1e-5, 1e-4])]
    )
    tuner = make_tuner(tmp_path, space, algorithm="tpe", max_trials=6, batch_trials=2)
    ran = params_of(tuner.search(SERIES, SPLIT))
    assert len(ran) == 6
    assert len(set(ran)) == 6


def test_journal_storage(tmp_path):
    storage = f"journal:{tmp_path / 'journal.log'}"
    make_tuner(tmp_path, small_space(), max_trials=1, storage=storage).search(
        SERIES, SPLIT
    )
    tuner = make_tuner(tmp_path, small_space(), max_trials=2, storage=storage)
    assert [r.number for r in tuner.search(SERIES, SPLIT).trials] == [1, 2]


def test_best_models_load_as_forecasters(tmp_path):
    tuner = make_tuner(tmp_path, small_space(), max_trials=2).search(SERIES, SPLIT)
    models = tuner.get_best_models(2)
    assert all(isinstance(m, Forecaster) for m in models)
    best = tuner.ranked_trials(1)[0]
    assert models[0].optimizer.momentum == best.hyperparameters["momentum"]
    forecast = models[0].predict_steps(SERIES, start=SPLIT)
    np.testing.assert_allclose(
        np.abs(forecast.mean - SERIES.values[SPLIT:]).mean(),
        best.figures["val_mae"], rtol=1e-4,
    )  # fmt: skip


def test_trials_frame_has_a_row_per_trial(tmp_path):
    tuner = make_tuner(tmp_path, small_space(), max_trials=2).search(SERIES, SPLIT)
    frame = tuner.trials_frame()
    assert list(frame.index) == [1, 2]
    assert {"state", "momentum", "learning_rate", "score", "val_mae"} <= set(
        frame.columns
    )


def test_plot_writes_png(tmp_path):
    tuner = make_tuner(tmp_path, small_space(), max_trials=2).search(SERIES, SPLIT)
    path = tuner.plot(tmp_path / "search.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_warns_validation_objective_is_optimistic(tmp_path):
    tuner = make_tuner(tmp_path, small_space(), max_trials=2, objective="val_mae")
    tuner.search(SERIES, SPLIT, test_split=105)
    assert "optimistic" in tuner.summary_table().caption


def test_evaluate_best_on_test_part(tmp_path):
    tuner = make_tuner(tmp_path, small_space(), max_trials=2, objective="val_mae")
    tuner.search(SERIES, SPLIT, test_split=105)
    figures = tuner.evaluate_best()
    assert figures["test_mae"] > 0


def test_grid_rejects_continuous_float(tmp_path):
    from seqcast.search import Float

    space = SearchSpace([Float("momentum", 0.1, 0.9)])
    tuner = make_tuner(tmp_path, space, algorithm="grid", max_trials=2)
    with pytest.raises(SeqcastError, match="grid search needs finitely many"):
        tuner.search(SERIES, SPLIT)


def test_failed_stale_trial_runs_again(tmp_path):
    space = small_space()
    tuner = make_tuner(tmp_path, space, max_trials=2)
    study = new_study(tmp_path)
    trial = study.ask(space.distributions())
    # An owner on this host whose process does not exist.
    trial.set_user_attr("owner", f"{socket.gethostname()}:999999999:1")
    tuner.search(SERIES, SPLIT)
    states = [r.state for r in tuner.trials]
    assert states == ["interrupted", "complete", "complete"]
    assert tuner.trials[1].hyperparameters == {
        "momentum": trial.params["momentum"], "learning_rate": 1e-5,
    }  # fmt: skip
    assert study.trials[0].state == TrialState.FAIL
