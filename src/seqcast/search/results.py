"""Trial records read back from a study, their ranking and the summary table.

Trial numbers count from 1, like Keras Tuner's trial ids; Optuna's own
``FrozenTrial.number`` counts from 0. Numbers can skip where a trial was
discarded as a duplicate or failed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from seqcast.search.study import DISCARDED, ERROR, INTERRUPTED

RESULT_ATTR = "result"


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One trial of a search.

    Attributes:
        number: the trial number, from 1.
        state: ``"complete"``, ``"running"``, ``"interrupted"`` (its process
            stopped, so it runs again), ``"failed"`` (training raised an
            error), ``"discarded"`` (a duplicate or past ``max_trials``) or
            ``"waiting"``.
        hyperparameters: every value of the trial, fixed ones included.
        score: the objective, NaN when the trial has none or diverged.
        score_std: the standard deviation of the execution scores.
        execution_scores: each execution's score.
        figures: the ensemble's validation figures (``val_mae``, ...).
        best_epochs: each execution's best epoch, from 1.
        model_dir: the folder of the saved executions, relative to the
            project folder, or None.
        note: why a trial has no score, or None.
    """

    number: int
    state: str
    hyperparameters: dict
    score: float = math.nan
    score_std: float = math.nan
    execution_scores: tuple[float, ...] = ()
    figures: dict = dataclasses.field(default_factory=dict)
    best_epochs: tuple[int, ...] = ()
    model_dir: str | None = None
    note: str | None = None


def _nan(value) -> float:
    return math.nan if value is None else float(value)


def _state(trial: FrozenTrial) -> str:
    if trial.state == TrialState.COMPLETE:
        return "complete"
    if trial.state == TrialState.RUNNING:
        return "running"
    if trial.state == TrialState.WAITING:
        return "waiting"
    if DISCARDED in trial.user_attrs:
        return "discarded"
    if trial.user_attrs.get(INTERRUPTED):
        return "interrupted"
    return "failed"


def record_from_trial(trial: FrozenTrial, fixed: dict) -> TrialRecord:
    """Read one Optuna trial back as a :class:`TrialRecord`."""
    result = trial.user_attrs.get(RESULT_ATTR, {})
    note = trial.user_attrs.get(DISCARDED) or trial.user_attrs.get(ERROR)
    return TrialRecord(
        number=trial.number + 1,
        state=_state(trial),
        hyperparameters=result.get("hyperparameters", {**fixed, **trial.params}),
        score=_nan(result.get("score")),
        score_std=_nan(result.get("score_std")),
        execution_scores=tuple(_nan(s) for s in result.get("execution_scores", [])),
        figures=dict(result.get("figures", {})),
        best_epochs=tuple(result.get("best_epochs", [])),
        model_dir=result.get("model_dir"),
        note=note,
    )


def rank(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Return the complete trials, best first; NaN scores rank last.

    Ties keep the earlier trial first.

    Example:
        >>> records = [TrialRecord(1, "complete", {}, 0.0554),
        ...            TrialRecord(2, "complete", {}, float("nan")),
        ...            TrialRecord(3, "complete", {}, 0.0543)]
        >>> [r.number for r in rank(records)]
        [3, 1, 2]
    """
    complete = [r for r in records if r.state == "complete"]
    return sorted(complete, key=lambda r: (math.isnan(r.score), r.score, r.number))


def best_so_far(scores: Sequence[float]) -> list[float]:
    """Return the lowest score up to each trial, ignoring NaN scores.

    Example:
        >>> best_so_far([float("nan"), 0.5, 0.7])
        [nan, 0.5, 0.5]
    """
    best = math.nan
    running = []
    for score in scores:
        if not math.isnan(score) and (math.isnan(best) or score < best):
            best = score
        running.append(best)
    return running


def _format(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def summary_table(
    ranked: Sequence[TrialRecord], names: Sequence[str], objective: str
) -> Table:
    """Build the Rich table of ranked trials: rank, trial, the searched
    hyperparameters ``names``, the score, its spread and the ensemble's
    validation MAE."""
    table = Table(title=f"Best trials by {objective} (lower is better)")
    table.add_column("rank", justify="right")
    table.add_column("trial", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column(objective, justify="right")
    table.add_column("std", justify="right")
    table.add_column("val_mae", justify="right")
    for position, record in enumerate(ranked, start=1):
        values = [_format(record.hyperparameters.get(name, "")) for name in names]
        table.add_row(
            str(position),
            str(record.number),
            *values,
            _format(record.score),
            _format(record.score_std),
            _format(_nan(record.figures.get("val_mae"))),
        )
    return table


def records_frame(records: Sequence[TrialRecord], names: Sequence[str]):
    """Return one row per trial: number, state, hyperparameters, score, spread,
    execution scores and the ensemble's validation figures."""
    rows = []
    for record in records:
        row = {"number": record.number, "state": record.state}
        row.update({name: record.hyperparameters.get(name) for name in names})
        row["score"] = record.score
        row["score_std"] = record.score_std
        row["execution_scores"] = list(record.execution_scores)
        row.update({k: _nan(v) for k, v in record.figures.items()})
        row["note"] = record.note
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["number", "state", *names, "score"])
    return frame.set_index("number")


def json_number(value: float) -> float | None:
    """Return ``value`` for JSON, with NaN and infinities as None."""
    value = float(value)
    return value if np.isfinite(value) else None
