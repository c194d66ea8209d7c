"""The `seqcast run` and `seqcast forecast` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from seqcast import workflow
from seqcast.cli import app
from seqcast.cli.options import (
    DEFAULT_HIDDEN,
    ActivationOption,
    BatchSizeOption,
    ColumnOption,
    CsvOption,
    EpochsOption,
    ExecutionsOption,
    FillOption,
    HiddenOption,
    JsonOption,
    LearningRateOrAutoOption,
    LossOption,
    MomentumOption,
    OptimizerOption,
    OutOption,
    PatienceOption,
    ScaleOption,
    SeasonOption,
    SeedOption,
    ShuffleBufferOption,
    SplitOption,
    TimeColumnOption,
    WindowSizeOption,
    build_configs,
    data_config,
    parse_learning_rate,
    progress_bar,
)
from seqcast.errors import SeqcastError
from seqcast.forecasting import Forecast, Forecaster
from seqcast.models import DenseConfig
from seqcast.optimizers import OptimizerConfig
from seqcast.training import TrainConfig
from seqcast.workflow import DataConfig, RunConfig, RunReport

# The figures shown in the table, as (key in the metrics, column title).
TABLE_METRICS = (("mae", "MAE"), ("rmse", "RMSE"), ("mase", "MASE"))


@app.command("run")
def run_command(
    csv: CsvOption = None,
    column: ColumnOption = None,
    time_column: TimeColumnOption = None,
    fill: FillOption = None,
    split: SplitOption = None,
    season: SeasonOption = None,
    window_size: WindowSizeOption = DenseConfig.window_size,
    hidden: HiddenOption = DEFAULT_HIDDEN,
    activation: ActivationOption = DenseConfig.activation,
    optimizer: OptimizerOption = OptimizerConfig.name,
    learning_rate: LearningRateOrAutoOption = str(OptimizerConfig.learning_rate),
    momentum: MomentumOption = OptimizerConfig.momentum,
    epochs: EpochsOption = TrainConfig.epochs,
    batch_size: BatchSizeOption = TrainConfig.batch_size,
    shuffle_buffer: ShuffleBufferOption = TrainConfig.shuffle_buffer,
    loss: LossOption = TrainConfig.loss,
    patience: PatienceOption = None,
    scale: ScaleOption = "none",
    seed: SeedOption = 0,
    executions: ExecutionsOption = 1,
    out: OutOption = RunConfig.out_dir,
    json_output: JsonOption = False,
) -> None:
    """Train the network on a series and score it beside the baselines.

    Without options this is the reference workflow: the synthetic series split
    at step 1000, windows of 20, dense layers of 10 and 10, SGD with learning
    rate 1e-6 and momentum 0.9, 100 epochs. The table shows one-step forecast
    errors over the validation split. forecast.png, loss.png, metrics.json and
    the model/ folder go to --out.
    """
    rate = parse_learning_rate(learning_rate)
    model, optimizer_config, training = build_configs(
        window_size=window_size,
        hidden=hidden,
        activation=activation,
        optimizer=optimizer,
        learning_rate=OptimizerConfig.learning_rate if rate is None else rate,
        momentum=momentum,
        epochs=epochs,
        batch_size=batch_size,
        shuffle_buffer=shuffle_buffer,
        loss=loss,
        patience=patience,
    )
    config = RunConfig(
        data=data_config(csv, column, time_column, fill, split, season),
        model=model,
        optimizer=optimizer_config,
        training=training,
        executions=executions,
        seed=seed,
        auto_learning_rate=rate is None,
        out_dir=out,
        scale=scale,
    )
    with progress_bar("training", enabled=not json_output) as progress:
        report = workflow.run(config, progress)
    workflow.write_outputs(report, config.out_dir)
    if json_output:
        typer.echo(json.dumps(report.to_dict(), allow_nan=False))
        return
    console = Console()
    console.print(_metrics_table(report))
    hint = workflow.network_hint(report)
    if hint:
        console.print(f"hint: {hint}", highlight=False)
    for name, reason in report.skipped_baselines.items():
        console.print(f"skipped {name}: {reason}", highlight=False)
    for kind, path in report.files.items():
        console.print(f"{kind}: {path}", highlight=False)


def _metrics_table(report: RunReport) -> Table:
    """Build the table of validation errors: the network, then each baseline."""
    table = Table(caption=_caption(report), caption_justify="left")
    table.add_column("forecast")
    for _, title in TABLE_METRICS:
        table.add_column(title, justify="right")
    for name, figures in report.metrics.items():
        cells = [_format_figure(figures[key]) for key, _ in TABLE_METRICS]
        style = "bold" if name == workflow.NETWORK else None
        table.add_row(report.labels[name], *cells, style=style)
    return table


def _caption(report: RunReport) -> str:
    series = report.series
    split = f"split at step {report.split}"
    if series.time is not None:
        split += f" ({workflow.format_time(series.time[report.split])})"
    validation = len(series) - report.split
    return (
        f"{report.series_label}, {len(series)} values, {split}, "
        f"{validation} validation steps. Learning rate {report.learning_rate:.3g} "
        f"({report.learning_rate_source}), {report.config.training.epochs} "
        f"epochs, {_count(report.config.executions, 'execution')}, "
        f"{report.seconds:.1f} s."
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _format_figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


ModelOption = Annotated[
    Path,
    typer.Option(
        "--model",
        help="The model/ folder that seqcast run wrote.",
        show_default=False,
    ),
]
StepsOption = Annotated[
    int,
    typer.Option("--steps", min=1, help="Future steps to forecast."),
]


@app.command("forecast")
def forecast_command(
    model: ModelOption,
    steps: StepsOption = 1,
    csv: CsvOption = None,
    column: ColumnOption = None,
    time_column: TimeColumnOption = None,
    fill: FillOption = None,
    json_output: JsonOption = False,
) -> None:
    """Forecast future values with a saved model, feeding each forecast back.

    The forecast continues the series of --csv, or without it the series the
    model was trained on, which is saved with it. Each step's forecast becomes
    the newest input of the next.
    """
    if not model.is_dir():
        raise SeqcastError(
            f"--model folder {model} not found; pass the model folder that "
            "seqcast run wrote, such as seqcast-out/model"
        )
    forecaster = Forecaster.load(model)
    data = DataConfig(csv=csv, column=column, time_column=time_column, fill=fill)
    if csv is None and forecaster.series_ is not None:
        series = forecaster.series_
        label = f"the training series ({series.name})"
    else:
        series = workflow.load_series(data)
        label = workflow.series_label(data, series)
    window_size = forecaster.model.window_size
    if len(series) < window_size:
        raise SeqcastError(
            f"series {series.name!r} has {len(series)} values but the model "
            f"reads windows of {window_size}; give a series of at least "
            f"{window_size} values"
        )
    forecast = forecaster.predict(steps, series)
    rows = _forecast_rows(forecast)
    if json_output:
        document = {
            "model": str(model),
            "series": label,
            "steps": steps,
            "forecasts": rows,
        }
        typer.echo(json.dumps(document, allow_nan=False))
        return
    table = Table()
    table.add_column("time")
    table.add_column("forecast", justify="right")
    for row in rows:
        table.add_row(str(row["time"]), _format_figure(row["forecast"]))
    console = Console()
    console.print(table)
    console.print(
        f"{steps} steps past the end of {label}, "
        f"from {model}",
        highlight=False,
    )


def _forecast_rows(forecast: Forecast) -> list[dict]:
    rows = []
    for time, value in zip(forecast.time, forecast.mean, strict=True):
        if isinstance(time, pd.Timestamp):
            time = workflow.format_time(time)
        else:
            time = int(time)
        forecast_value = float(value) if np.isfinite(value) else None
        rows.append({"time": time, "forecast": forecast_value})
    return rows
