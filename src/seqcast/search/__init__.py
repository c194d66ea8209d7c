"""Hyperparameter search in the manner of Keras Tuner, on Optuna's samplers.

Define a :class:`SearchSpace` of :class:`Int`, :class:`Float`, :class:`Choice`,
:class:`Boolean` and :class:`Fixed` hyperparameters, then let a :class:`Tuner`
train batches of trials as vectorized model stacks::

    tuner = Tuner(SearchSpace.reference(), max_trials=44, executions_per_trial=3)
    tuner.search(synthetic_series(), split=1000)
    tuner.results_summary()
    best = tuner.get_best_models(1)[0]

Trial numbers count from 1, as Keras Tuner's trial ids do.
"""

from seqcast.search.results import TrialRecord, best_so_far, rank
from seqcast.search.settings import KNOWN_NAMES, TrialSettings, build_settings
from seqcast.search.space import (
    Boolean,
    Choice,
    Fixed,
    Float,
    Int,
    SearchSpace,
    load_space_file,
    parse_spec,
)
from seqcast.search.study import ALGORITHMS
from seqcast.search.trials import (
    OBJECTIVES,
    SearchData,
    TrialOutcome,
    aggregate_scores,
    plan_stacks,
    train_trials,
)
from seqcast.search.tuner import SearchProgress, Tuner

__all__ = [
    "ALGORITHMS",
    "Boolean",
    "Choice",
    "Fixed",
    "Float",
    "Int",
    "KNOWN_NAMES",
    "OBJECTIVES",
    "SearchData",
    "SearchProgress",
    "SearchSpace",
    "TrialOutcome",
    "TrialRecord",
    "TrialSettings",
    "Tuner",
    "aggregate_scores",
    "best_so_far",
    "build_settings",
    "load_space_file",
    "parse_spec",
    "plan_stacks",
    "rank",
    "train_trials",
]
