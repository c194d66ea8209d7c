"""seqcast: forecast univariate time series with small neural networks.

Many models of one architecture train together in one compiled JAX program, and
every report shows statistical baselines beside the network.

The names below are the public API. They load on first use, so `import seqcast`
does not import JAX until a name that needs it is used.

Example:
    >>> import seqcast
    >>> series = seqcast.synthetic_series()
    >>> forecaster = seqcast.Forecaster().fit(series, split=1000)
    >>> forecaster.predict_steps(start=1000).mean.shape
    (461,)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "SeqcastError": "seqcast.errors",
    "TrainingDivergedError": "seqcast.errors",
    "Series": "seqcast.data",
    "as_series": "seqcast.data",
    "load_csv": "seqcast.data",
    "synthetic_series": "seqcast.data",
    "windowed_dataset": "seqcast.windows",
    "DenseConfig": "seqcast.models",
    "OptimizerConfig": "seqcast.optimizers",
    "TrainConfig": "seqcast.training",
    "train_stack": "seqcast.training",
    "Forecast": "seqcast.forecasting",
    "Forecaster": "seqcast.forecasting",
    "recursive_forecast": "seqcast.forecasting",
    "baseline_forecasts": "seqcast.baselines",
    "evaluate": "seqcast.metrics",
    "DataConfig": "seqcast.workflow",
    "RunConfig": "seqcast.workflow",
    "RunReport": "seqcast.workflow",
    "run": "seqcast.workflow",
    "write_outputs": "seqcast.workflow",
}

# Kept literal, and equal to the keys of _EXPORTS, so linters see the names.
__all__ = [
    "__version__",
    "SeqcastError",
    "TrainingDivergedError",
    "Series",
    "as_series",
    "load_csv",
    "synthetic_series",
    "windowed_dataset",
    "DenseConfig",
    "OptimizerConfig",
    "TrainConfig",
    "train_stack",
    "Forecast",
    "Forecaster",
    "recursive_forecast",
    "baseline_forecasts",
    "evaluate",
    "DataConfig",
    "RunConfig",
    "RunReport",
    "run",
    "write_outputs",
]

if TYPE_CHECKING:
    from seqcast.baselines import baseline_forecasts
    from seqcast.data import Series, as_series, load_csv, synthetic_series
    from seqcast.errors import SeqcastError, TrainingDivergedError
    from seqcast.forecasting import Forecast, Forecaster, recursive_forecast
    from seqcast.metrics import evaluate
    from seqcast.models import DenseConfig
    from seqcast.optimizers import OptimizerConfig
    from seqcast.training import TrainConfig, train_stack
    from seqcast.windows import windowed_dataset
    from seqcast.workflow import (
        DataConfig,
        RunConfig,
        RunReport,
        run,
        write_outputs,
    )


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seqcast' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
