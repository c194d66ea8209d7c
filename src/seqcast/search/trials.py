"""Train a batch of trials as few model stacks, and score each trial.

Trials whose settings share a :func:`~seqcast.search.settings.stack_key` train
in one :func:`~seqcast.training.train_stack` call: every trial contributes one
model per execution, narrower trials are padded to the widest and masked, and
seeds, learning rates and momenta differ per model. Execution ``j`` of every
trial uses the seed ``seed + j``, so trials differ only in their settings.

An execution scores the best value of the objective over its epochs, as in
Keras Tuner, and a trial scores the mean over its executions. Objectives that
are forecast figures (``val_rmse``, ``val_mase``, ...) score the ensemble
forecast, the mean of the executions' forecasts.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqcast import metrics
from seqcast.data import Series, as_series
from seqcast.errors import SeqcastError
from seqcast.forecasting import predict_windows
from seqcast.models import DenseConfig
from seqcast.optimizers import OptimizerConfig
from seqcast.search.settings import TrialSettings, stack_key
from seqcast.training import TrainConfig, TrainResult, train_stack
from seqcast.windows import label_window_starts

HISTORY_OBJECTIVES = ("loss", "val_loss", "val_mae")
FIGURE_NAMES = ("mae", "mse", "rmse", "mape", "smape", "mase")
OBJECTIVES = (*HISTORY_OBJECTIVES, *(f"val_{name}" for name in FIGURE_NAMES[1:]))


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise SeqcastError(
            f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}"
        )
    return objective


@dataclasses.dataclass(frozen=True, eq=False)
class SearchData:
    """The series and its splits: training labels before ``split``, validation
    labels in ``[split, end)`` and, when ``end < len(values)``, test labels
    from ``end`` on.

    Attributes:
        values: the series, float32 of shape ``(n,)``.
        split: the first validation step.
        end: one past the last validation step; the test split, or ``n``.
        season: the seasonal lag that scales MASE.
    """

    values: np.ndarray
    split: int
    end: int
    season: int = 1

    @classmethod
    def from_series(
        cls, series, split, test_split=None, season: int | None = None
    ) -> SearchData:
        """Resolve the splits of ``series`` as :meth:`Series.split_index` does."""
        series: Series = as_series(series)
        split_at = series.split_index(split)
        end = len(series) if test_split is None else series.split_index(test_split)
        if end <= split_at:
            raise SeqcastError(
                f"the test split (step {end}) must come after the split (step "
                f"{split_at}) so that validation data lies between them"
            )
        return cls(series.values, split_at, end, int(season or 1))

    @property
    def has_test(self) -> bool:
        return self.end < len(self.values)

    def check_model(self, model: DenseConfig) -> None:
        offset = model.window_size * model.stride
        if self.split <= offset:
            raise SeqcastError(
                f"window_size {model.window_size} needs more than {offset} "
                f"training values, but the split is at step {self.split}; use a "
                "later split or a smaller window_size"
            )

    def starts(self, model: DenseConfig, part: str) -> np.ndarray:
        """Return the window starts of the ``"train"``, ``"val"`` or ``"test"``
        labels for windows of ``model``."""
        offset = model.window_size * model.stride
        label_from, label_to = {
            "train": (offset, self.split),
            "val": (self.split, self.end),
            "test": (self.end, len(self.values)),
        }[part]
        return label_window_starts(
            model.window_size, label_from, label_to, model.stride
        )

    def fingerprint(self) -> dict:
        """Return what identifies the data, to detect a changed series on resume."""
        digest = hashlib.sha256(np.ascontiguousarray(self.values).tobytes())
        return {
            "length": len(self.values),
            "split": self.split,
            "end": self.end,
            "sha256": digest.hexdigest(),
        }


@dataclasses.dataclass
class StackPlan:
    """One ``train_stack`` call: trials ``trials`` of the batch, each with
    ``executions`` consecutive models."""

    model: DenseConfig
    training: TrainConfig
    trials: list[int]
    settings: list[TrialSettings]
    executions: int
    seeds: list[int]
    optimizers: list[OptimizerConfig]
    widths: list[tuple[int, ...]] | None


# Working memory that one stack may take while it trains. A larger group of
# trials is split into several stacks, trained one after the other.
STACK_MEMORY_BYTES = 2 * 2**30

# Validation windows the trainer gathers at once per model.
_VALIDATION_WINDOWS = 4096


def model_memory_bytes(model: DenseConfig, training: TrainConfig) -> int:
    """Estimate the working memory of one model of a stack, in bytes.

    It counts five copies of the parameters (weights, best weights, optimizer
    moments and gradients), and the windows and activations of one batch and
    of one validation chunk, all float32. The estimate omits XLA's temporary
    buffers, so treat it as a lower bound.
    """
    widths = (model.window_size, *model.hidden, 1)
    parameters = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    per_window = model.span + 3 * sum(model.hidden)
    rows = training.batch_size + _VALIDATION_WINDOWS
    return 4 * (5 * parameters + rows * per_window)


def plan_stacks(
    settings: Sequence[TrialSettings],
    executions: int,
    seed: int = 0,
    memory_bytes: int = STACK_MEMORY_BYTES,
) -> list[StackPlan]:
    """Group trials into model stacks, one per :func:`stack_key`.

    Model ``i * executions + j`` of a stack is execution ``j`` of the stack's
    ``i``-th trial, with seed ``seed + j``. A group whose models would need more
    than ``memory_bytes`` by :func:`model_memory_bytes` is split into several
    stacks, each of as many trials as fit.
    """
    groups: dict[tuple, list[int]] = {}
    for index, trial in enumerate(settings):
        groups.setdefault(stack_key(trial), []).append(index)
    plans = []
    for indices in _split_for_memory(
        groups.values(), settings, executions, memory_bytes
    ):
        members = [settings[i] for i in indices]
        hidden = [m.model.hidden for m in members]
        padded = tuple(max(layer) for layer in zip(*hidden, strict=True))
        widths = [h for h in hidden for _ in range(executions)]
        plans.append(
            StackPlan(
                model=dataclasses.replace(members[0].model, hidden=padded),
                training=members[0].training,
                trials=indices,
                settings=members,
                executions=executions,
                seeds=[seed + j for _ in members for j in range(executions)],
                optimizers=[m.optimizer for m in members for _ in range(executions)],
                widths=None if all(w == padded for w in widths) else widths,
            )
        )
    return plans


def _split_for_memory(groups, settings, executions: int, memory_bytes: int):
    for indices in groups:
        widest = max(indices, key=lambda i: sum(settings[i].model.hidden))
        per_trial = executions * model_memory_bytes(
            settings[widest].model, settings[widest].training
        )
        size = max(1, memory_bytes // per_trial)
        for first in range(0, len(indices), size):
            yield indices[first : first + size]


def train_plan(
    plan: StackPlan,
    data: SearchData,
    *,
    validate: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train one stack and keep each model's weights from its best epoch.

    The best epoch is that of the lowest validation loss, or of the lowest
    training loss when ``validate`` is false. A loss that turns NaN marks its
    model as diverged instead of stopping the stack.
    """
    data.check_model(plan.model)
    # Patience of the whole run never stops early but keeps the best weights.
    training = dataclasses.replace(
        plan.training,
        patience=plan.training.patience or plan.training.epochs,
        on_divergence="mark",
    )
    return train_stack(
        plan.model,
        data.values,
        data.starts(plan.model, "train"),
        seeds=plan.seeds,
        optimizer=plan.optimizers,
        training=training,
        val_starts=data.starts(plan.model, "val") if validate else None,
        widths=plan.widths,
        progress=progress,
    )


@dataclasses.dataclass
class TrialOutcome:
    """The results of a trial's executions.

    Attributes:
        settings: the trial's settings.
        execution_scores: each execution's score, NaN where it diverged.
        score: the trial's score: the mean of ``execution_scores``, or the
            ensemble's figure for a forecast-figure objective.
        score_std: the population standard deviation of ``execution_scores``.
        figures: the ensemble forecast's validation figures, keyed
            ``val_mae``, ``val_mse``, ...; None where undefined.
        best_epochs: each execution's best epoch (from 1).
        params: the executions' weights at their own widths, leading axis
            ``executions``.
        history: ``loss`` (and ``val_loss``, ``val_mae``), ``(executions, E)``.
    """

    settings: TrialSettings
    execution_scores: list[float]
    score: float
    score_std: float
    figures: dict[str, float | None]
    best_epochs: list[int]
    params: object
    history: dict[str, np.ndarray]


def aggregate_scores(execution_scores: Sequence[float]) -> tuple[float, float]:
    """Return the mean and population standard deviation of execution scores.

    Any NaN execution makes both NaN, so a trial that diverged for one seed
    ranks last.

    Example:
        >>> aggregate_scores([1.0, 2.0, 3.0])[0]
        2.0
    """
    scores = np.asarray(execution_scores, dtype=np.float64)
    if scores.size == 0 or not np.isfinite(scores).all():
        return float("nan"), float("nan")
    return float(scores.mean()), float(scores.std())


def _figures(actual, predicted, data: SearchData, prefix: str) -> dict:
    if not np.isfinite(predicted).all():
        return {f"{prefix}{name}": None for name in FIGURE_NAMES}
    figures = metrics.evaluate(
        actual, predicted, training=data.values[: data.split], season=data.season
    )
    return {f"{prefix}{name}": figures[name] for name in FIGURE_NAMES}


def narrow_params(stack_params, model: DenseConfig, indices: Sequence[int]):
    """Return the models ``indices`` of a padded stack, cut to ``model``'s widths.

    Padded units have zero weights, so the cut models compute the same
    forecasts without masks.
    """
    sample = jax.ShapeDtypeStruct((1, model.window_size), jnp.float32)
    shapes = jax.eval_shape(model.module().init, jax.random.PRNGKey(0), sample)
    rows = np.asarray(indices)

    def cut(leaf, shape):
        return np.asarray(leaf)[(rows, *(slice(0, n) for n in shape.shape))]

    return jax.tree.map(cut, stack_params, shapes)


def ensemble_figures(
    model: DenseConfig, params, data: SearchData, part: str = "val", masks=None
) -> tuple[dict, np.ndarray]:
    """Return the ensemble's figures on the ``"val"`` or ``"test"`` labels, and
    each member's forecasts of shape ``(members, labels)``."""
    starts = data.starts(model, part)
    if len(starts) == 0:
        raise SeqcastError(f"there are no {part} windows to evaluate")
    members = predict_windows(model, params, data.values, starts, masks)
    actual = data.values[starts + model.window_size * model.stride]
    return _figures(actual, members.mean(axis=0), data, f"{part}_"), members


def score_stack(
    plan: StackPlan, result: TrainResult, data: SearchData, objective: str
) -> list[TrialOutcome]:
    """Score every trial of a trained stack, in the order of ``plan.trials``."""
    executions = plan.executions
    starts = data.starts(plan.model, "val")
    members = predict_windows(
        plan.model, result.params, data.values, starts, result.masks
    )
    actual = data.values[starts + plan.model.window_size * plan.model.stride]
    outcomes = []
    for i, settings in enumerate(plan.settings):
        rows = list(range(i * executions, (i + 1) * executions))
        forecasts = members[rows]
        figures = _figures(actual, forecasts.mean(axis=0), data, "val_")
        if objective in HISTORY_OBJECTIVES:
            scores = [float(s) for s in result.best(objective)[rows]]
            score, std = aggregate_scores(scores)
        else:
            name = objective.removeprefix("val_")
            scores = [
                _none_to_nan(_figures(actual, f, data, "val_")[objective])
                for f in forecasts
            ]
            score = _none_to_nan(figures[f"val_{name}"])
            std = aggregate_scores(scores)[1]
        outcomes.append(
            TrialOutcome(
                settings=settings,
                execution_scores=scores,
                score=score,
                score_std=std,
                figures=figures,
                best_epochs=[int(e) for e in result.best_epoch[rows]],
                params=narrow_params(result.params, settings.model, rows),
                history={k: v[rows] for k, v in result.history.items()},
            )
        )
    return outcomes


def _none_to_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def train_trials(
    settings: Sequence[TrialSettings],
    data: SearchData,
    *,
    executions: int = 1,
    seed: int = 0,
    objective: str = "loss",
    progress: Callable[[int, int], None] | None = None,
) -> list[TrialOutcome]:
    """Train and score a batch of trials, one ``train_stack`` call per stack.

    Args:
        settings: one :class:`TrialSettings` per trial.
        data: the series and its splits.
        executions: models per trial; execution ``j`` uses seed ``seed + j``.
        seed: the first execution's seed.
        objective: what each execution scores, see :data:`OBJECTIVES`.
        progress: called as ``progress(epochs_done, epochs_total)`` summed over
            the stacks.

    Returns:
        One :class:`TrialOutcome` per trial, in the order of ``settings``.

    Example:
        >>> from seqcast.data import synthetic_series
        >>> data = SearchData.from_series(synthetic_series(length=200), 150)
        >>> quick = TrialSettings(training=TrainConfig(epochs=2))
        >>> [o.score > 0 for o in train_trials([quick], data)]
        [True]
    """
    check_objective(objective)
    plans = plan_stacks(settings, executions, seed)
    total = sum(plan.training.epochs for plan in plans)
    done = 0
    outcomes: list[TrialOutcome | None] = [None] * len(settings)
    for plan in plans:
        report = None
        if progress is not None:

            def report(epochs_done, _epochs, before=done):
                progress(before + epochs_done, total)

        result = train_plan(plan, data, validate=objective != "loss", progress=report)
        for index, outcome in zip(
            plan.trials, score_stack(plan, result, data, objective), strict=True
        ):
            outcomes[index] = outcome
        done += plan.training.epochs
    return outcomes
