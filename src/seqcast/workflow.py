"""The end-to-end job behind `seqcast run`: data, split, training, forecasts, report.

`run` loads or generates a series, splits it, trains a `Forecaster`, makes a
one-step forecast for every validation step, computes the statistical
baselines over the same steps and scores them all with the same metrics.
`write_outputs` saves the figures, the metrics and the model.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from seqcast.baselines import baseline_forecasts
from seqcast.data import Series, load_csv, synthetic_series
from seqcast.errors import SeqcastError
from seqcast.files import write_json
from seqcast.forecasting import Forecaster
from seqcast.learning_rates import exact_sweep
from seqcast.metrics import evaluate
from seqcast.models import DenseConfig
from seqcast.optimizers import OptimizerConfig
from seqcast.plots import plot_forecast, plot_history
from seqcast.scaling import SCALE_METHODS, Scaler
from seqcast.training import TrainConfig

__all__ = [
    "DataConfig",
    "RunConfig",
    "RunReport",
    "load_data",
    "run",
    "season_of",
    "write_outputs",
]

# The reference workflow trains on the first 1000 steps of the synthetic series.
SYNTHETIC_SPLIT = 1000
# The synthetic series repeats its pattern every 365 steps.
SYNTHETIC_SEASON = 365
# A CSV file without a split trains on its first 80% of values.
CSV_SPLIT = 0.8


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The source of the series and the end of its training data.

    Attributes:
        csv: a CSV file, or None for the synthetic series of the reference
            workflow (1461 steps of trend, yearly pattern and noise).
        column: the CSV column of values; None selects the only numeric one.
        time_column: the CSV column of times; None looks for a column named
            like date or time.
        fill: "interpolate" or "drop" for missing values; None rejects them.
        split: the first validation step as a step index, a fraction of the
            values or a date. None means step 1000 for the synthetic series and
            0.8 (the first 80% of values train) for a CSV file.
        season: steps in one seasonal cycle for the seasonal baselines and
            MASE. None infers it from the time index (365 for the synthetic
            series), and without one the seasonal baselines are skipped.
    """

    csv: Path | None = None
    column: str | None = None
    time_column: str | None = None
    fill: str | None = None
    split: int | float | str | None = None
    season: int | None = None

    def __post_init__(self) -> None:
        if self.csv is None:
            for name in ("column", "time_column", "fill"):
                value = getattr(self, name)
                if value is not None:
                    option = "--" + name.replace("_", "-")
                    raise SeqcastError(
                        f"{option} {value!r} applies to a CSV file but no file "
                        "was given; pass --csv FILE or drop the option"
                    )
        if self.season is not None and self.season < 2:
            raise SeqcastError(
                f"season must be at least 2 steps, got {self.season}; "
                "leave it unset to infer it from the dates"
            )


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every setting of `run`. The defaults reproduce the reference workflow.

    Attributes:
        data: the series and its split; by default the synthetic series split
            at step 1000.
        model: the architecture; by default windows of 20 values and hidden
            layers of 10 and 10 ReLU units.
        optimizer: by default SGD with learning rate 1e-6 and momentum 0.9.
        training: by default 100 epochs of MSE in batches of 32 drawn from a
            shuffle buffer of 1000.
        executions: trainings from seeds seed, seed + 1, ...; the network's
            forecast is their mean.
        seed: the seed of the first execution.
        auto_learning_rate: replace `optimizer.learning_rate` with the best
            rate of `seqcast.learning_rates.exact_sweep` on the same data and
            split. The sweep ranks rates by validation MAE, so the network's
            validation figures are then optimistic.
        out_dir: the folder that `write_outputs` fills.
        scale: scaling of the series learned from the training split:
            `"none"` (the reference), `"standard"` or `"minmax"`. Forecasts and
            metrics are in the series' own units either way.
    """

    data: DataConfig = DataConfig()
    model: DenseConfig = DenseConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    training: TrainConfig = TrainConfig()
    executions: int = 1
    seed: int = 0
    auto_learning_rate: bool = False
    out_dir: Path = Path("seqcast-out")
    scale: str = "none"

    def __post_init__(self) -> None:
        if self.scale not in SCALE_METHODS:
            raise SeqcastError(
                f"unknown scaling {self.scale!r}; use one of "
                f"{', '.join(SCALE_METHODS)}"
            )
        if self.executions < 1:
            raise SeqcastError(
                f"executions must be at least 1, got {self.executions}"
            )
        if self.seed < 0:
            raise SeqcastError(f"seed must be 0 or more, got {self.seed}")


@dataclasses.dataclass
class RunReport:
    """The outcome of `run`: forecasts over the validation split and their scores.

    Attributes:
        config: the settings of the run.
        series: the whole series.
        series_label: "synthetic series", or the CSV file name and the column.
        split: the index of the first validation value.
        season: the seasonal period used by the seasonal baselines and MASE,
            or None.
        time: the time of each validation step, shape (N,) with
            N = len(series) - split: dates when the series has them, else
            step numbers.
        forecasts: one-step forecasts of shape (N,) by row name: "network"
            (the mean of the executions) first, then each baseline.
        labels: a display label by row name, such as "moving average (30)".
        metrics: the figures of `seqcast.metrics.evaluate` by row name, in the
            order of `forecasts`.
        members: each execution's forecasts, shape (executions, N).
        execution_metrics: the figures of each execution, in seed order.
        skipped_baselines: why a baseline was left out, by name.
        learning_rate: the learning rate the network trained with.
        learning_rate_source: "given", or "exact sweep over K rates".
        history: the training history of each execution, such as "loss" and
            "val_loss", each of shape (executions, epochs).
        forecaster: the trained forecaster.
        seconds: wall-clock time of the run, data loading included.
        files: the files `write_outputs` wrote, by kind.
    """

    config: RunConfig
    series: Series
    series_label: str
    split: int
    season: int | None
    time: object
    forecasts: dict[str, np.ndarray]
    labels: dict[str, str]
    metrics: dict[str, dict[str, float | None]]
    members: np.ndarray
    execution_metrics: list[dict[str, float | None]]
    skipped_baselines: dict[str, str]
    learning_rate: float
    learning_rate_source: str
    history: dict[str, np.ndarray]
    forecaster: Forecaster
    seconds: float
    files: dict[str, Path] = dataclasses.field(default_factory=dict)

    @property
    def best_baseline(self) -> str:
        """Return the name of the baseline with the lowest MAE."""
        baselines = [name for name in self.metrics if name != NETWORK]
        return min(baselines, key=lambda name: self.metrics[name]["mae"])

    def to_dict(self) -> dict:
        """Return the settings, figures and files as JSON-ready values."""
        split_time = None
        if self.series.time is not None:
            split_time = format_time(self.series.time[self.split])
        return {
            "series": self.series_label,
            "values": len(self.series),
            "split": self.split,
            "split_time": split_time,
            "season": self.season,
            "window_size": self.config.model.window_size,
            "hidden": list(self.config.model.hidden),
            "optimizer": self.config.optimizer.name,
            "learning_rate": self.learning_rate,
            "learning_rate_source": self.learning_rate_source,
            "epochs": self.config.training.epochs,
            "executions": self.config.executions,
            "seed": self.config.seed,
            "seconds": round(self.seconds, 3),
            "metrics": {
                name: _finite_figures(figures) for name, figures in self.metrics.items()
            },
            "labels": self.labels,
            "execution_metrics": [
                _finite_figures(figures) for figures in self.execution_metrics
            ],
            "skipped_baselines": self.skipped_baselines,
            "files": {kind: str(path) for kind, path in self.files.items()},
        }


def _finite_figures(figures: dict[str, float | None]) -> dict[str, float | None]:
    """Replace NaN and infinite figures with None, which strict JSON allows."""
    return {
        name: value if value is not None and math.isfinite(value) else None
        for name, value in figures.items()
    }


# The row name of the network in `RunReport.metrics` and `RunReport.forecasts`.
NETWORK = "network"
FORECAST_FILE = "forecast.png"
LOSS_FILE = "loss.png"
METRICS_FILE = "metrics.json"
MODEL_DIR = "model"


def load_series(data: DataConfig) -> Series:
    """Read the CSV file of `data`, or generate the synthetic series."""
    if data.csv is None:
        return synthetic_series()
    return load_csv(data.csv, data.column, data.time_column, data.fill)


def split_index(data: DataConfig, series: Series) -> int:
    """Return the index of the first validation value of `series`.

    Raises:
        SeqcastError: if the split leaves no training or no validation data.
    """
    if data.split is not None:
        return series.split_index(data.split)
    if data.csv is None:
        return series.split_index(SYNTHETIC_SPLIT)
    return series.split_index(CSV_SPLIT)


def load_data(data: DataConfig) -> tuple[Series, int]:
    """Load or generate the series and find its split.

    Returns:
        (series, split): the series and the index of its first validation
        value, with 0 < split < len(series).

    Raises:
        SeqcastError: if the file cannot be read as a series or the split
            leaves no training or no validation data.
    """
    series = load_series(data)
    return series, split_index(data, series)


def season_of(data: DataConfig, series: Series) -> int | None:
    """Return the seasonal period: the given one, the inferred one, or None."""
    if data.season is not None:
        return data.season
    if data.csv is None:
        return SYNTHETIC_SEASON
    return series.infer_season()


def format_time(value: object) -> str:
    """Format a time of a series: a date alone when it is midnight."""
    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return value.date().isoformat()
    return str(value)


def run(
    config: RunConfig = RunConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> RunReport:
    """Train the network and score it beside the baselines on the validation split.

    Every forecast is one step ahead: the forecast of step t is made from the
    actual values before t. MASE scales by the seasonal naive forecast of the
    training values, with lag `season`, or lag 1 when there is no season.

    Args:
        config: the settings; the defaults reproduce the reference workflow.
        progress: called as `progress(epochs_done, epochs)` during training.

    Returns:
        A `RunReport`. No file is written; `write_outputs` does that.

    Raises:
        SeqcastError: if the data cannot be read, the series is too short for
            the window, a setting is invalid, or training diverged.

    Example:
        >>> report = run(RunConfig(training=TrainConfig(epochs=2)))
        >>> list(report.metrics)[0], report.split
        ('network', 1000)
    """
    started = time.perf_counter()
    series = load_series(config.data)
    _check_length(series, config.model)
    split = split_index(config.data, series)
    season = season_of(config.data, series)
    optimizer, source = _choose_learning_rate(config, series, split, progress)

    forecaster = Forecaster(
        config.model,
        optimizer,
        config.training,
        executions=config.executions,
        seed=config.seed,
        scale=config.scale,
    )
    forecaster.fit(series, split, progress=progress)
    network = forecaster.predict_steps(series, start=split)
    baselines = baseline_forecasts(series.values, split, season=season)

    forecasts = {NETWORK: network.mean, **baselines.forecasts}
    labels = {NETWORK: _network_label(config)}
    labels.update({name: baselines.labels[name] for name in baselines.forecasts})
    actual = series.values[split:]
    training_values = series.values[:split]
    mase_season = season or 1

    def score(forecast: np.ndarray) -> dict[str, float | None]:
        return evaluate(actual, forecast, training=training_values, season=mase_season)

    history = forecaster.result_.history
    return RunReport(
        config=config,
        series=series,
        series_label=series_label(config.data, series),
        split=split,
        season=season,
        time=network.time,
        forecasts=forecasts,
        labels=labels,
        metrics={name: score(forecast) for name, forecast in forecasts.items()},
        members=network.members,
        execution_metrics=[score(member) for member in network.members],
        skipped_baselines=dict(baselines.skipped),
        learning_rate=float(optimizer.learning_rate),
        learning_rate_source=source,
        history={name: np.asarray(values) for name, values in history.items()},
        forecaster=forecaster,
        seconds=time.perf_counter() - started,
    )


# A network whose MAE is this many times the naive forecast's has barely
# trained, rather than lost to a hard series.
_FAR_BEHIND = 3.0


def network_hint(report: RunReport) -> str | None:
    """Return advice when the network is far behind the naive forecast, else None."""
    network = report.metrics.get(NETWORK, {}).get("mae")
    naive = report.metrics.get("naive", {}).get("mae")
    if network is None or naive is None or not naive > 0:
        return None
    if math.isfinite(network) and network < _FAR_BEHIND * naive:
        return None
    ratio = f"{network / naive:.0f} times" if math.isfinite(network) else "far above"
    advice = "try --lr auto"
    if report.config.scale == "none":
        advice = "try --scale standard, with --lr auto to pick a rate for it"
    return (
        f"the network's validation MAE is {ratio} the naive forecast's, so it "
        f"has barely trained on these values; {advice}"
    )


def _check_length(series: Series, model: DenseConfig) -> None:
    if len(series) < model.span:
        raise SeqcastError(
            f"series {series.name!r} has {len(series)} values but window size "
            f"{model.window_size} needs at least {model.span} (the window and "
            "one label); use a longer series or a smaller --window-size"
        )


def series_label(data: DataConfig, series: Series) -> str:
    if data.csv is None:
        return "synthetic series"
    return f"{Path(data.csv).name}: {series.name}"


def _network_label(config: RunConfig) -> str:
    hidden = ", ".join(str(units) for units in config.model.hidden)
    label = f"network ({hidden})"
    if config.executions > 1:
        label += f", mean of {config.executions}"
    return label


def _choose_learning_rate(
    config: RunConfig,
    series: Series,
    split: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[OptimizerConfig, str]:
    """Return the optimizer to train with and how its learning rate was chosen."""
    if not config.auto_learning_rate:
        return config.optimizer, "given"
    # Ranking rates by validation MAE gives the same order in scaled units.
    scaler = Scaler.fit(series.values[:split], config.scale)
    scaled = Series(scaler.transform(series.values), series.time, series.name)
    sweep = exact_sweep(
        scaled,
        split=split,
        model=config.model,
        optimizer=config.optimizer,
        training=config.training,
        seed=config.seed,
        progress=progress,
    )
    if sweep.best_rate is None:
        raise SeqcastError(
            f"every rate of the exact sweep ({sweep.rates.min():.3g} to "
            f"{sweep.rates.max():.3g}) diverged in at least one execution, so "
            "give a rate with --learning-rate or try --scale standard"
        )
    rate = float(sweep.best_rate)
    optimizer = dataclasses.replace(config.optimizer, learning_rate=rate)
    return optimizer, f"exact sweep over {len(sweep.rates)} rates"


def write_outputs(report: RunReport, out_dir: str | os.PathLike[str]) -> dict:
    """Write the figures, the metrics and the model of a run to a folder.

    The folder receives forecast.png (the actual values, the network and the
    best baseline over the validation split), loss.png (the training history),
    metrics.json (`RunReport.to_dict`) and model/ (`Forecaster.save`). Every
    file is built in a hidden staging folder first and renamed into place, so
    a failure leaves earlier outputs untouched and a folder created by this
    call is removed again.

    Returns:
        The paths written, by kind: "forecast", "loss", "metrics", "model".
        They are stored in `report.files` as well.

    Raises:
        SeqcastError: if the folder cannot be created or written.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SeqcastError(f"--out {out_dir} is a file; give a folder")
    created = not out_dir.exists()
    files = {
        "forecast": out_dir / FORECAST_FILE,
        "loss": out_dir / LOSS_FILE,
        "metrics": out_dir / METRICS_FILE,
        "model": out_dir / MODEL_DIR,
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".seqcast-"))
        try:
            _write_staged(report, staging, files)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise SeqcastError(
            f"cannot write the outputs to {out_dir} ({error.strerror or error}); "
            "choose another --out folder"
        ) from error
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    report.files = files
    return files


def _write_staged(report: RunReport, staging: Path, files: dict[str, Path]) -> None:
    _plot_forecast(report, staging / FORECAST_FILE)
    losses = {
        name: values
        for name, values in report.history.items()
        if name in ("loss", "val_loss")
    }
    plot_history(staging / LOSS_FILE, losses)
    write_json(
        staging / METRICS_FILE,
        {**report.to_dict(), "files": {k: str(v) for k, v in files.items()}},
    )
    # The model goes last because save_model swaps its folder in atomically
    # and rejects a --out/model folder that contains anything but a saved model.
    report.forecaster.save(files["model"])
    for kind in ("forecast", "loss", "metrics"):
        os.replace(staging / files[kind].name, files[kind])


def _plot_forecast(report: RunReport, path: Path) -> None:
    best = report.best_baseline
    curves = {
        report.labels[NETWORK]: report.forecasts[NETWORK],
        report.labels[best]: report.forecasts[best],
    }
    title = f"one-step forecasts of {report.series.name} after the split"
    plot_forecast(
        path, report.time, report.series.values[report.split :], curves, title=title
    )
