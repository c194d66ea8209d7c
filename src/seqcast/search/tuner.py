"""The :class:`Tuner`: a hyperparameter search that trains trials in batches.

It reads like Keras Tuner: a search space, ``max_trials``,
``executions_per_trial``, an objective, a project folder that a later run
resumes, ``results_summary`` and the best hyperparameters and models. Each
batch of trials trains as a few vectorized model stacks instead of one model
at a time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from seqcast.errors import SeqcastError
from seqcast.files import save_model
from seqcast.forecasting import Forecaster
from seqcast.plots import plot_search
from seqcast.search import study as studies
from seqcast.search.results import (
    RESULT_ATTR,
    TrialRecord,
    best_so_far,
    rank,
    record_from_trial,
    records_frame,
    summary_table,
)
from seqcast.search.settings import TrialSettings, build_settings, check_space
from seqcast.search.space import SearchSpace
from seqcast.search.trials import (
    SearchData,
    TrialOutcome,
    check_objective,
    ensemble_figures,
    plan_stacks,
    score_stack,
    train_plan,
)

logger = logging.getLogger(__name__)

# Trials trained together when batch_trials is not given. TPE learns only
# between batches, so its batches are smaller.
DEFAULT_BATCH_TRIALS = {"random": 64, "grid": 64, "tpe": 8}


@dataclasses.dataclass(frozen=True)
class SearchProgress:
    """The state of a search, passed to the ``progress`` callback.

    Attributes:
        trials_done: complete trials in the study, from any process.
        max_trials: the search's ``max_trials``.
        running: numbers (from 1) of the trials this process trains now.
        epochs_done, epochs_total: progress of the running batch.
        best_score: the best score so far, NaN before the first finite one.
    """

    trials_done: int
    max_trials: int
    running: tuple[int, ...]
    epochs_done: int
    epochs_total: int
    best_score: float


class Tuner:
    """Search hyperparameters of the dense forecaster, many trials at once.

    Args:
        space: the :class:`SearchSpace`; defaults to the textbook search, see
            :meth:`SearchSpace.reference`.
        algorithm: ``"random"`` (without repeats), ``"grid"`` (every
            combination in order) or ``"tpe"`` (Optuna's TPE sampler).
        objective: ``"loss"``, ``"val_loss"``, ``"val_mae"`` or a validation
            figure of the ensemble forecast such as ``"val_rmse"``.
        max_trials: complete trials to reach, counting those of earlier runs.
        executions_per_trial: models per trial, seeds ``seed + 0, 1, ...``.
        directory, project_name: the project folder
            ``directory / project_name``, which contains the study and the
            trials' saved models.
        overwrite: delete the project's study and models before searching.
        storage: an Optuna storage URL, or ``journal:PATH`` for a journal file;
            by default the SQLite file ``study.db`` in the project folder.
        seed: the first execution's seed and the samplers' seed.
        batch_trials: trials trained together; 64 by default, 8 for TPE.
        base: the settings that the space's values replace; by default the
            reference workflow's.
        stale_after: seconds after which a running trial whose process runs on
            another machine and stopped reporting is run again.

    Example:
        >>> from seqcast.data import synthetic_series
        >>> from seqcast.search import Choice, Fixed, SearchSpace
        >>> import tempfile
        >>> space = SearchSpace([Choice("units", [8, 16]), Fixed("epochs", 2)])
        >>> tuner = Tuner(space, max_trials=2, executions_per_trial=1,
        ...               directory=tempfile.mkdtemp())
        >>> tuner.search(synthetic_series(length=200), split=150).trials_done
        2
    """

    def __init__(
        self,
        space: SearchSpace | None = None,
        *,
        algorithm: str = "random",
        objective: str = "loss",
        max_trials: int = 44,
        executions_per_trial: int = 3,
        directory: str | Path = "seqcast-tune",
        project_name: str = "default",
        overwrite: bool = False,
        storage: str | None = None,
        seed: int = 0,
        batch_trials: int | None = None,
        base: TrialSettings | None = None,
        stale_after: float = 3600.0,
    ):
        self.space = SearchSpace.reference() if space is None else space
        base = TrialSettings() if base is None else base

        if algorithm not in studies.ALGORITHMS:
            raise SeqcastError(
                f"unknown algorithm {algorithm!r}; use one of "
                f"{', '.join(studies.ALGORITHMS)}"
            )
        for name, value in (
            ("max_trials", max_trials),
            ("executions_per_trial", executions_per_trial),
            ("batch_trials", 1 if batch_trials is None else batch_trials),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SeqcastError(
                    f"{name} must be a whole number of at least 1, got {value!r}"
                )
        if not project_name or "/" in project_name:
            raise SeqcastError(
                f"invalid project name {project_name!r}; use a folder name"
            )
        check_space(self.space, base)

        self.algorithm = algorithm
        self.objective = check_objective(objective)
        self.max_trials = max_trials
        self.executions_per_trial = executions_per_trial
        self.directory = Path(directory)
        self.project_name = project_name
        self.overwrite = overwrite
        self.storage_url = storage
        self.seed = int(seed)
        self.batch_trials = batch_trials or DEFAULT_BATCH_TRIALS[algorithm]
        self.base = base
        self.stale_after = float(stale_after)
        self.data: SearchData | None = None
        self._storage = None

    @property
    def project_dir(self) -> Path:
        return self.directory / self.project_name

    @property
    def uses_validation(self) -> bool:
        """Whether the objective is measured on the validation split, which
        makes the best scores optimistic."""
        return self.objective != "loss"

    def _open_storage(self):
        if self._storage is None:
            self._storage = studies.open_storage(self.storage_url, self.project_dir)
        return self._storage

    def _definition(self, data: SearchData) -> dict:
        definition = {
            "space": self.space.to_dict(),
            "objective": self.objective,
            "executions_per_trial": self.executions_per_trial,
            "seed": self.seed,
            "base": self.base.to_dict(),
            "data": data.fingerprint(),
        }
        # Compare in the form the storage returns: JSON, lists for tuples.
        return json.loads(json.dumps(definition))

    def search(
        self,
        series,
        split=1000,
        *,
        test_split=None,
        season: int | None = None,
        progress: Callable[[SearchProgress], None] | None = None,
    ) -> Tuner:
        """Run trials until ``max_trials`` are complete or the space runs out.

        Args:
            series: a :class:`~seqcast.data.Series`, array or pandas Series.
            split: where validation begins, as for
                :meth:`~seqcast.data.Series.split_index`.
            test_split: where a held-out test part begins, after ``split``;
                validation then ends there, and :meth:`evaluate_best` scores
                the best trial on the test part.
            season: the seasonal lag that scales MASE; 1 by default.
            progress: called with a :class:`SearchProgress` as trials train.

        Returns:
            ``self``.

        Raises:
            SeqcastError: the stored study contains a different search
                (unless ``overwrite``), or every trial of a batch failed.
        """
        data = SearchData.from_series(series, split, test_split, season)
        self._check_windows(data)
        self.data = data
        storage = self._open_storage()
        if self.overwrite:
            shutil.rmtree(self.project_dir / "trials", ignore_errors=True)
        trials_so_far = self._count_existing(storage)
        sampler = studies.make_sampler(
            self.space, self.algorithm, self.seed, trials_so_far
        )
        study = studies.open_study(
            storage, self.project_name, self._definition(data), sampler,
            overwrite=self.overwrite,
        )  # fmt: skip
        self.overwrite = False  # a second search() in this process resumes
        owner = studies.owner_token()
        while True:
            studies.fail_stale_trials(study, storage, self.stale_after)
            room = self._room(study)
            if room <= 0:
                break
            batch = studies.claim_trials(
                study, storage, sampler, min(room, self.batch_trials),
                self.max_trials, owner, self.stale_after,
            )  # fmt: skip
            if not batch:
                break
            self._run_batch(study, storage, batch, data, progress)
        return self

    def _check_windows(self, data: SearchData) -> None:
        sizes = {self.base.model.window_size}
        if "window_size" in self.space:
            sizes.update(self.space["window_size"].values() or ())
        for size in sizes:
            data.check_model(dataclasses.replace(self.base.model, window_size=size))

    def _count_existing(self, storage) -> int:
        if self.overwrite:
            return 0
        try:
            study = optuna.load_study(study_name=self.project_name, storage=storage)
        except KeyError:
            return 0
        return len(study.get_trials(deepcopy=False))

    def _room(self, study: optuna.Study) -> int:
        trials = study.get_trials(deepcopy=False)
        busy = sum(
            t.state in (TrialState.COMPLETE, TrialState.RUNNING)
            and studies.DISCARDED not in t.user_attrs
            for t in trials
        )
        room = self.max_trials - busy
        size = self.space.size
        if size is not None:
            room = min(room, size - len(studies.seen_keys(trials)))
        return room

    def _run_batch(self, study, storage, batch, data, progress) -> None:
        numbers = tuple(trial.number + 1 for trial in batch)
        hyperparameters = [self.space.with_fixed(trial.params) for trial in batch]
        logger.info("training trials %s", list(numbers))
        pending = {trial.number: trial for trial in batch}
        errors = []
        try:
            settings = [build_settings(h, self.base) for h in hyperparameters]
            plans = plan_stacks(settings, self.executions_per_trial, self.seed)
            total = sum(plan.training.epochs for plan in plans)
            done = 0
            for plan in plans:
                report = self._epoch_reporter(study, numbers, progress, done, total)
                trials = [batch[i] for i in plan.trials]
                try:
                    result = train_plan(
                        plan, data, validate=self.uses_validation, progress=report
                    )
                    outcomes = score_stack(plan, result, data, self.objective)
                except SeqcastError as error:
                    errors.append(error)
                    for trial in trials:
                        trial.set_user_attr(studies.ERROR, str(error))
                        study.tell(trial, state=TrialState.FAIL)
                        del pending[trial.number]
                    continue
                for i, trial, outcome in zip(
                    plan.trials, trials, outcomes, strict=True
                ):
                    self._finish(study, trial, hyperparameters[i], outcome)
                    del pending[trial.number]
                done += plan.training.epochs
                for trial in pending.values():
                    trial.set_user_attr(studies.HEARTBEAT, time.time())
        except BaseException:
            # Interrupted (Ctrl-C) or failed: these trials run again on resume.
            for trial in pending.values():
                trial.set_user_attr(studies.INTERRUPTED, True)
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        if errors and len(errors) == len(plans):
            raise errors[0]
        if progress is not None:
            progress(self._progress(study, (), 0, 0))

    def _epoch_reporter(self, study, numbers, progress, done, total):
        if progress is None:
            return None
        state = self._progress(study, numbers, done, total)

        def report(epochs_done: int, _epochs: int) -> None:
            progress(dataclasses.replace(state, epochs_done=done + epochs_done))

        return report

    def _progress(self, study, numbers, done, total) -> SearchProgress:
        records = self._records(study)
        scores = [r.score for r in records if r.state == "complete"]
        best = best_so_far(scores)[-1] if scores else math.nan
        return SearchProgress(
            trials_done=len(scores),
            max_trials=self.max_trials,
            running=numbers,
            epochs_done=done,
            epochs_total=total,
            best_score=best,
        )

    def _finish(self, study, trial, hyperparameters, outcome: TrialOutcome) -> None:
        model_dir = Path("trials") / f"trial_{trial.number + 1:04d}"
        self._save_model(self.project_dir / model_dir, outcome)
        result = {
            "hyperparameters": hyperparameters,
            "score": _finite_or_none(outcome.score),
            "score_std": _finite_or_none(outcome.score_std),
            "execution_scores": [_finite_or_none(s) for s in outcome.execution_scores],
            "figures": {
                k: _finite_or_none(v) for k, v in outcome.figures.items()
            },
            "best_epochs": outcome.best_epochs,
            "model_dir": str(model_dir),
        }
        trial.set_user_attr(RESULT_ATTR, result)
        # Optuna rejects NaN values, so a diverged trial reports +inf. Its
        # record keeps the NaN score, which ranks last.
        value = outcome.score if math.isfinite(outcome.score) else math.inf
        study.tell(trial, value)

    def _save_model(self, folder: Path, outcome: TrialOutcome) -> None:
        settings = outcome.settings
        forecaster = Forecaster(
            settings.model, settings.optimizer, settings.training,
            executions=self.executions_per_trial, seed=self.seed,
        )  # fmt: skip
        save_model(
            folder,
            outcome.params,
            forecaster.config_dict(),
            history={k: v.tolist() for k, v in outcome.history.items()},
        )

    # Results.

    def _load_study(self) -> optuna.Study:
        storage = self._open_storage()
        try:
            return optuna.load_study(study_name=self.project_name, storage=storage)
        except KeyError:
            raise SeqcastError(
                f"no search named {self.project_name!r} in {self.project_dir}; "
                "run search() first"
            ) from None

    def _records(self, study: optuna.Study | None = None) -> list[TrialRecord]:
        study = study or self._load_study()
        fixed = self.space.fixed
        return [
            record_from_trial(trial, fixed)
            for trial in study.get_trials(deepcopy=False)
        ]

    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial of the study, in number order."""
        return self._records()

    @property
    def trials_done(self) -> int:
        """The number of complete trials."""
        return sum(r.state == "complete" for r in self._records())

    def ranked_trials(self, n: int | None = None) -> list[TrialRecord]:
        """Return the ``n`` best complete trials (all when None), best first."""
        ranked = rank(self._records())
        return ranked if n is None else ranked[:n]

    def summary_table(self, n: int = 10):
        """Return the Rich table that :meth:`results_summary` prints."""
        names = [h.name for h in self.space.searched] or self.space.names
        table = summary_table(self.ranked_trials(n), names, self.objective)
        notes = [
            f"{self.trials_done} complete trials, {self.executions_per_trial} "
            f"executions each; std is over executions"
        ]
        if self.uses_validation:
            notes.append(
                f"{self.objective} was measured on the validation split that "
                "chose the best trial, so these figures are optimistic; hold out "
                "a later part with test_split (--test-split) for an honest one"
            )
        table.caption = ". ".join(notes) + "."
        return table

    def results_summary(self, n: int = 10, console=None) -> None:
        """Print the ``n`` best trials: rank, values, score and spread."""
        from rich.console import Console

        (console or Console()).print(self.summary_table(n))

    def get_best_hyperparameters(self, n: int = 1) -> list[dict]:
        """Return the hyperparameters of the ``n`` best trials, best first."""
        return [dict(r.hyperparameters) for r in self.ranked_trials(n)]

    def get_best_settings(self, n: int = 1) -> list[TrialSettings]:
        """Return the model, optimizer and training settings of the ``n`` best
        trials, ready for a :class:`~seqcast.forecasting.Forecaster`."""
        return [
            build_settings(h, self.base) for h in self.get_best_hyperparameters(n)
        ]

    def get_best_models(self, n: int = 1) -> list[Forecaster]:
        """Load the trained executions of the ``n`` best trials, best first.

        Each is a :class:`~seqcast.forecasting.Forecaster` whose forecasts are
        the mean of the trial's executions, with each execution's weights from
        its best epoch.
        """
        models = []
        for record in self.ranked_trials(n):
            if record.model_dir is None:
                raise SeqcastError(f"trial {record.number} has no saved model")
            models.append(Forecaster.load(self.project_dir / record.model_dir))
        return models

    def trials_frame(self):
        """Return a pandas DataFrame of every trial, indexed by trial number."""
        return records_frame(self._records(), self.space.names)

    def plot(self, path) -> Path:
        """Plot each complete trial's score against each searched value."""
        complete = [r for r in self._records() if r.state == "complete"]
        names = [h.name for h in self.space.searched]
        if not complete or not names:
            raise SeqcastError(
                "nothing to plot: the search needs complete trials and at least "
                "one searched hyperparameter"
            )
        values = {
            name: [r.hyperparameters.get(name) for r in complete] for name in names
        }
        scores = [r.score for r in complete]
        return plot_search(path, values, scores, objective=self.objective)

    def evaluate_best(self) -> dict[str, float | None]:
        """Score the best trial's ensemble on the test part held out by
        ``test_split``: figures keyed ``test_mae``, ``test_rmse``, ...

        Raises:
            SeqcastError: the last :meth:`search` had no ``test_split``.
        """
        if self.data is None or not self.data.has_test:
            raise SeqcastError(
                "there is no test part; pass test_split to search() to hold one out"
            )
        forecaster = self.get_best_models(1)[0]
        figures, _ = ensemble_figures(
            forecaster.model, forecaster.params_, self.data, "test"
        )
        return figures


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None

