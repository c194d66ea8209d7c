"""The Optuna study behind a search: storage, resuming, and claiming trials.

A project keeps its study in ``<directory>/<project>/study.db`` (SQLite) unless
another Optuna storage URL is given; ``journal:PATH`` selects Optuna's journal
file storage. The study's user attributes store the search definition, so a
resumed search with another space or objective is rejected.

Several processes may share one study. Each claims trials with Optuna's
ask-and-tell interface, and a claimed trial whose values equal those of a
running or finished trial with a lower number is discarded, as is one past
``max_trials``. Trial numbers come from the storage, so every process agrees
on which of two equal trials is kept.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import optuna
import sqlalchemy
from optuna.distributions import (
    BaseDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from seqcast.errors import SeqcastError
from seqcast.search.space import SearchSpace, Value, params_key

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "grid", "tpe")
DEFINITION_ATTR = "seqcast_search"
# Trial user attributes that record why a trial ended without a score.
INTERRUPTED = "interrupted"
DISCARDED = "discarded"
ERROR = "error"
OWNER = "owner"
HEARTBEAT = "heartbeat"
# A claim waits this long for an earlier trial of another process to get its
# values. After that it discards its own trial, so no values can run twice.
_SETTLE_SECONDS = 10.0
# SQLite waits this long for another process's write lock before failing.
_SQLITE_TIMEOUT_SECONDS = 60


def open_storage(storage: str | None, project_dir: Path) -> BaseStorage:
    """Open the storage of a project: a URL, ``journal:PATH`` or the default
    SQLite file ``project_dir / "study.db"``."""
    if storage is None:
        project_dir.mkdir(parents=True, exist_ok=True)
        path = (project_dir / "study.db").resolve()
        return _open_rdb(
            f"sqlite:///{path}",
            {"creator": functools.partial(_connect_sqlite, path)},
        )
    if storage.startswith("journal:"):
        path = Path(storage.removeprefix("journal:")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    engine = {}
    if storage.startswith("sqlite"):
        engine = {"connect_args": {"timeout": _SQLITE_TIMEOUT_SECONDS}}
    try:
        return _open_rdb(storage, engine)
    except (
        ImportError, ValueError, optuna.exceptions.StorageInternalError,
        sqlalchemy.exc.SQLAlchemyError,
    ) as e:  # fmt: skip
        raise SeqcastError(
            f"failed to open the storage {storage!r}: {e}; give an SQLAlchemy "
            "URL such as sqlite:///study.db or journal:PATH"
        ) from None


def _open_rdb(url: str, engine_kwargs: dict) -> RDBStorage:
    # Processes that open a new database at once race to create its tables.
    # The losers fail on a table or row that now exists, so a retry opens it.
    for _ in range(4):
        try:
            return RDBStorage(url, engine_kwargs=engine_kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            time.sleep(0.2)
    return RDBStorage(url, engine_kwargs=engine_kwargs)


def _connect_sqlite(path: Path) -> sqlite3.Connection:
    # Write-ahead logging with synchronous=NORMAL commits without an fsync
    # each time (15 ms on this project's test machine, 0.02 ms without). A
    # killed process loses nothing committed; a power cut may lose the last
    # commits but leaves the file consistent.
    connection = sqlite3.connect(path, timeout=_SQLITE_TIMEOUT_SECONDS)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def open_study(
    storage: BaseStorage,
    name: str,
    definition: Mapping,
    sampler: BaseSampler,
    *,
    overwrite: bool = False,
) -> optuna.Study:
    """Create the study ``name`` or resume it when its definition matches.

    Raises:
        SeqcastError: the stored search differs from ``definition``; the
            message names the difference.
    """
    if overwrite:
        try:
            optuna.delete_study(study_name=name, storage=storage)
        except KeyError:
            pass
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=sampler, load_if_exists=True,
        direction="minimize",
    )  # fmt: skip
    stored = study.user_attrs.get(DEFINITION_ATTR)
    if stored is None:
        study.set_user_attr(DEFINITION_ATTR, dict(definition))
        return study
    differences = describe_differences(stored, definition)
    if differences:
        raise SeqcastError(
            f"the study {name!r} contains a different search: "
            f"{'; '.join(differences)}; "
            "pass overwrite=True (--overwrite) to start again, or use another "
            "project name"
        )
    return study


def describe_differences(stored: Mapping, current: Mapping) -> list[str]:
    """Describe how ``current`` differs from the ``stored`` search definition."""
    found = SearchSpace.from_dict(stored["space"]).differences(
        SearchSpace.from_dict(current["space"])
    )
    for key in current:
        if key != "space":
            found.extend(_changed_entries(key, stored.get(key), current[key]))
    return found


def _changed_entries(path: str, old, new) -> list[str]:
    """Name each changed leaf of two nested settings, such as
    ``training.epochs changed from 5 to 7``."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        changes = []
        for key in dict.fromkeys([*old, *new]):
            changes.extend(
                _changed_entries(f"{path}.{key}", old.get(key), new.get(key))
            )
        return changes
    if old == new:
        return []
    return [f"{path} changed from {old!r} to {new!r}"]


def _process_start(pid: int) -> str:
    """Return the start time of process ``pid`` in clock ticks, or "" without
    /proc. Together with the pid it distinguishes a live process from a later
    one that reused the pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # The command name may contain spaces, so count fields after ")".
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_token() -> str:
    """Return ``host:pid:start`` for this process."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def _owner_alive(token: str, heartbeat: float | None, stale_after: float) -> bool:
    host, _, rest = token.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        # Another machine: trust the heartbeat that it updates per stack.
        return heartbeat is not None and time.time() - heartbeat < stale_after
    pid = int(pid_text)
    if start:
        return _process_start(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_stale_trials(
    study: optuna.Study, storage: BaseStorage, stale_after: float
) -> list[int]:
    """Fail the running trials whose process is gone, so they run again.

    A trial's owner on this machine is gone when its process no longer runs;
    on another machine, when its heartbeat is older than ``stale_after``
    seconds. Returns the numbers (from 0) of the failed trials.
    """
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        token = trial.user_attrs.get(OWNER)
        if token is None or _owner_alive(
            token, trial.user_attrs.get(HEARTBEAT), stale_after
        ):
            continue
        set_trial_attr(storage, study, trial.number, INTERRUPTED, True)
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        failed.append(trial.number)
    if failed:
        logger.info("failed trials %s of a process that stopped", failed)
    return failed


def set_trial_attr(
    storage: BaseStorage, study: optuna.Study, number: int, key: str, value
) -> None:
    """Set a user attribute of a running trial, whichever process owns it."""
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    try:
        storage.set_trial_user_attr(trial_id, key, value)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass


def seen_keys(trials: list[FrozenTrial], exclude: int | None = None) -> set:
    """Return the keys of values that must not run again: those of running and
    finished trials and of trials that failed with an error."""
    keys = set()
    for trial in trials:
        if trial.number == exclude:
            continue
        excluded = trial.state in (TrialState.RUNNING, TrialState.COMPLETE) or (
            trial.state == TrialState.FAIL and ERROR in trial.user_attrs
        )
        if excluded and DISCARDED not in trial.user_attrs:
            keys.add(params_key(trial.params))
    return keys


class ProposalSampler(BaseSampler):
    """Propose each trial's values, then let Optuna record them.

    Before a trial samples, :meth:`before_trial` picks its values. The values
    of an interrupted trial that has not run again come first. In a finite
    space, grid search then takes the next unseen combination, and random
    search a random unseen one, as TPE does after repeated duplicates.
    Otherwise ``fallback``, Optuna's random or TPE sampler, samples the trial.
    """

    def __init__(
        self, space: SearchSpace, algorithm: str, seed: int, fallback: BaseSampler
    ):
        self.space = space
        self.algorithm = algorithm
        self.seed = seed
        self.fallback = fallback
        self.force_unseen = False
        self.exhausted = False
        self._proposal: dict[str, Value] | None = None

    def before_trial(self, study, trial: FrozenTrial) -> None:
        self._proposal = self._propose(study, trial.number)
        self.fallback.before_trial(study, trial)

    def _propose(self, study, number: int) -> dict[str, Value] | None:
        trials = study.get_trials(deepcopy=False)
        seen = seen_keys(trials, exclude=number)
        for trial in trials:
            if (
                trial.state == TrialState.FAIL
                and trial.user_attrs.get(INTERRUPTED)
                and params_key(trial.params) not in seen
                and trial.params.keys() == self.space.distributions().keys()
            ):
                return dict(trial.params)
        size = self.space.size
        if size is None:
            return None
        if self.algorithm == "tpe" and not self.force_unseen:
            return None
        index = unseen_index(self.space, seen, self.algorithm, self.seed, number)
        if index is None:
            self.exhausted = True
            return self.space.combination(0)
        return self.space.combination(index)

    def infer_relative_search_space(self, study, trial):
        if self._proposal is not None:
            return {}
        return self.fallback.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        if self._proposal is not None:
            return {}
        return self.fallback.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        if self._proposal is not None:
            return self._proposal[param_name]
        return self.fallback.sample_independent(
            study, trial, param_name, param_distribution
        )

    def after_trial(self, study, trial, state, values) -> None:
        self.fallback.after_trial(study, trial, state, values)


def unseen_index(
    space: SearchSpace, seen: set, algorithm: str, seed: int, number: int
) -> int | None:
    """Pick a combination index whose values are not in ``seen``.

    Grid search takes the first in order. Otherwise the pick is uniform over
    the unseen combinations, drawn from a generator seeded with ``seed`` and
    the trial ``number``, so concurrent processes rarely pick alike.
    Returns None when every combination is seen.
    """
    size = space.size
    if algorithm == "grid":
        for index in range(size):
            if params_key(space.combination(index)) not in seen:
                return index
        return None
    rng = np.random.default_rng([seed, number])
    if len(seen) < size // 2:
        while True:
            index = int(rng.integers(size))
            if params_key(space.combination(index)) not in seen:
                return index
    unseen = [
        index for index in range(size)
        if params_key(space.combination(index)) not in seen
    ]  # fmt: skip
    return int(rng.choice(unseen)) if unseen else None


def make_sampler(
    space: SearchSpace, algorithm: str, seed: int, trials_so_far: int
) -> ProposalSampler:
    """Return the sampler of ``algorithm``; Optuna's own samplers are seeded
    with ``seed + trials_so_far`` so a resumed search draws anew."""
    if algorithm not in ALGORITHMS:
        raise SeqcastError(
            f"unknown algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}"
        )
    if algorithm == "grid" and space.size is None:
        names = [h.name for h in space.searched if h.values() is None]
        raise SeqcastError(
            f"grid search needs finitely many values, but {', '.join(names)} "
            "is a Float without a step; give it a step or use a Choice"
        )
    fallback_seed = seed + trials_so_far
    if algorithm == "tpe":
        fallback = TPESampler(seed=fallback_seed, multivariate=True, constant_liar=True)
    else:
        fallback = RandomSampler(seed=fallback_seed)
    return ProposalSampler(space, algorithm, seed, fallback)


def ask_owned_trial(
    study: optuna.Study,
    storage: BaseStorage,
    distributions: Mapping[str, BaseDistribution],
    owner: str,
) -> optuna.Trial:
    """Create a running trial that records its owner, then sample its values.

    This is ``study.ask(distributions)`` except that the trial is created with
    its ``owner`` and ``heartbeat`` attributes in the same storage write. So a
    process killed at any moment leaves no running trial without an owner, and
    a later search can detect that the owner is gone.
    """
    template = FrozenTrial(
        number=0, state=TrialState.RUNNING, value=None,
        datetime_start=datetime.datetime.now(), datetime_complete=None,
        params={}, distributions={},
        user_attrs={OWNER: owner, HEARTBEAT: time.time()}, system_attrs={},
        intermediate_values={}, trial_id=0,
    )  # fmt: skip
    study_id = storage.get_study_id_from_name(study.study_name)
    trial = optuna.Trial(study, storage.create_new_trial(study_id, template))
    for name, distribution in distributions.items():
        _suggest(trial, name, distribution)
    return trial


def _suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution):
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, step=distribution.step,
            log=distribution.log,
        )  # fmt: skip
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            name, distribution.low, distribution.high, step=distribution.step,
            log=distribution.log,
        )  # fmt: skip
    return trial.suggest_categorical(name, distribution.choices)


def claim_trials(
    study: optuna.Study,
    storage: BaseStorage,
    sampler: ProposalSampler,
    count: int,
    max_trials: int,
    owner: str,
    stale_after: float,
) -> list[optuna.Trial]:
    """Ask up to ``count`` new trials that no other trial duplicates.

    A trial is kept when no running or finished trial with a lower number has
    the same values, and fewer than ``max_trials`` trials are finished or run
    with lower numbers. Otherwise it is finished as failed, with the reason in
    the user attribute ``discarded``.
    """
    distributions = sampler.space.distributions()
    claimed: list[optuna.Trial] = []
    duplicates_in_a_row = 0
    while len(claimed) < count and not sampler.exhausted:
        trial = ask_owned_trial(study, storage, distributions, owner)
        reason = _discard_reason(study, trial.number, max_trials, stale_after)
        if sampler.exhausted:
            reason = reason or "every combination has run"
        if reason is None:
            duplicates_in_a_row = 0
            sampler.force_unseen = False
            claimed.append(trial)
            continue
        trial.set_user_attr(DISCARDED, reason)
        study.tell(trial, state=TrialState.FAIL)
        if reason.startswith("max_trials"):
            break
        duplicates_in_a_row += 1
        if duplicates_in_a_row >= 3:
            # TPE keeps proposing seen values; draw unseen ones for a while.
            sampler.force_unseen = True
        if duplicates_in_a_row >= 100:
            logger.warning("stopped after 100 duplicate proposals in a row")
            break
    return claimed


def _discard_reason(
    study: optuna.Study, number: int, max_trials: int, stale_after: float
) -> str | None:
    trials = _settled_trials(study, number, stale_after)
    if trials is None:
        return "an earlier trial did not finish sampling in time"
    mine = next(t for t in trials if t.number == number)
    key = params_key(mine.params)
    complete = 0
    running_before = 0
    for trial in trials:
        if trial.number == number or DISCARDED in trial.user_attrs:
            continue
        if trial.state == TrialState.COMPLETE:
            complete += 1
        elif trial.state == TrialState.RUNNING and trial.number < number:
            running_before += 1
        elif not (trial.state == TrialState.FAIL and ERROR in trial.user_attrs):
            continue
        if trial.number < number and params_key(trial.params) == key:
            return f"duplicate of trial {trial.number + 1}"
    if complete + running_before >= max_trials:
        return "max_trials reached"
    return None


def _settled_trials(
    study: optuna.Study, number: int, stale_after: float
) -> list[FrozenTrial] | None:
    """Return the trials once every running trial numbered below ``number``
    has all its values, or None after ``_SETTLE_SECONDS``.

    Another process may have created a lower-numbered trial and not yet
    written its values. Comparing before they are written would let both
    trials keep equal values, because each compares only with lower numbers.
    """
    deadline = time.monotonic() + _SETTLE_SECONDS
    while True:
        trials = study.get_trials(deepcopy=False)
        names = next(t for t in trials if t.number == number).params.keys()
        unsettled = [
            t for t in trials
            if t.number < number
            and t.state == TrialState.RUNNING
            and t.params.keys() != names
            and DISCARDED not in t.user_attrs
            and OWNER in t.user_attrs
            and _owner_alive(
                t.user_attrs[OWNER], t.user_attrs.get(HEARTBEAT), stale_after
            )
        ]  # fmt: skip
        if not unsettled:
            return trials
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)
