"""The `seqcast lr-find` command: learning-rate sweeps from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from seqcast.cli import app
from seqcast.cli.options import (
    DEFAULT_HIDDEN,
    OUTPUT_PANEL,
    ActivationOption,
    BatchSizeOption,
    ColumnOption,
    CsvOption,
    EpochsOption,
    FillOption,
    HiddenOption,
    JsonOption,
    LossOption,
    MomentumOption,
    OptimizerOption,
    SeedOption,
    ShuffleBufferOption,
    SplitOption,
    TimeColumnOption,
    WindowSizeOption,
    build_configs,
    load_series,
    progress_bar,
)
from seqcast.errors import SeqcastError
from seqcast.learning_rates import (
    SUGGESTION_RULE,
    SUGGESTION_RULE_HELP,
    ExactSweepResult,
    SweepResult,
    exact_sweep,
    lr_sweep,
)
from seqcast.models import DenseConfig
from seqcast.optimizers import OptimizerConfig
from seqcast.schedules import ExponentialSweep
from seqcast.training import TrainConfig

SWEEP_PANEL = "Learning-rate sweep"
SWEEP_PNG = "lr_sweep.png"
EXACT_PNG = "lr_exact.png"

StartOption = Annotated[
    float,
    typer.Option(
        "--start",
        help="Learning rate of the first epoch of the sweep, a positive number.",
        rich_help_panel=SWEEP_PANEL,
    ),
]
FactorOption = Annotated[
    float,
    typer.Option(
        "--factor",
        help="How many times the rate grows every --every epochs.",
        rich_help_panel=SWEEP_PANEL,
    ),
]
EveryOption = Annotated[
    float,
    typer.Option(
        "--every",
        help="Epochs over which the rate grows by --factor.",
        rich_help_panel=SWEEP_PANEL,
    ),
]
ExactOption = Annotated[
    bool,
    typer.Option(
        "--exact",
        help=(
            "Also train each rate of a grid on its own from the same seeds and "
            "rank the rates by validation MAE."
        ),
        rich_help_panel=SWEEP_PANEL,
    ),
]
RatesOption = Annotated[
    str | None,
    typer.Option(
        "--rates",
        help=(
            "Comma-separated learning rates of the exact sweep, such as "
            "1e-6,1e-5; implies --exact. Default: 1e-8 to 3.2e-3, two a decade."
        ),
        rich_help_panel=SWEEP_PANEL,
    ),
]
SweepExecutionsOption = Annotated[
    int,
    typer.Option(
        "--executions",
        min=1,
        help="Trainings per rate in the exact sweep, from consecutive seeds.",
        rich_help_panel=SWEEP_PANEL,
    ),
]
SweepOutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help=(
            f"Folder for {SWEEP_PNG}, and {EXACT_PNG} with --exact; without it "
            "no file is written."
        ),
        rich_help_panel=OUTPUT_PANEL,
    ),
]


def parse_rates(text: str) -> list[float]:
    """Parse --rates, such as "1e-6,1e-5", into learning rates.

    Raises:
        SeqcastError: if a part is not a finite positive number.

    Example:
        >>> parse_rates("1e-6, 1e-5")
        [1e-06, 1e-05]
    """
    rates = []
    for part in text.split(","):
        try:
            rate = float(part)
        except ValueError:
            rate = float("nan")
        if not 0 < rate < float("inf"):
            raise SeqcastError(
                f"invalid --rates {text!r}; give comma-separated positive numbers "
                "such as 1e-6,1e-5"
            )
        rates.append(rate)
    return rates


def _check_positive(option: str, value: float, example: str) -> None:
    if not 0 < value < float("inf"):
        raise SeqcastError(
            f"invalid {option} {value!r}; give a positive number such as {example}"
        )


def _output_folder(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise SeqcastError(f"--out {str(out)!r} is a file; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SeqcastError(
            f"cannot create the --out folder {str(out)!r}: {error.strerror}"
        ) from None
    return out


def _print_summary(
    console: Console, sweep: SweepResult, exact: ExactSweepResult | None
) -> None:
    rates = sweep.learning_rates
    console.print(
        f"learning-rate sweep: {len(rates)} epochs from {rates[0]:.3g} to "
        f"{rates[-1]:.3g}"
    )
    if sweep.diverged_epoch:
        console.print(
            f"the loss became NaN or infinite at epoch {sweep.diverged_epoch}"
        )
    suggestion = sweep.suggestion
    if suggestion.rate is None:
        console.print(f"no suggested learning rate: {suggestion.reason}")
    else:
        console.print(
            f"suggested learning rate: [bold]{suggestion.rate:.3g}[/bold] "
            f"(rule: {suggestion.rule})"
        )
        if suggestion.rate == rates[-1]:
            console.print(
                "the loss still falls at the last rate; sweep further (--epochs "
                "or --factor) to see where it stops falling"
            )
    if exact is not None:
        console.print(_exact_table(exact))
        if exact.best_rate is None:
            console.print(
                "no rate of the exact sweep trained without diverging in every "
                "execution, so none is recommended"
            )
        else:
            console.print(f"best learning rate: [bold]{exact.best_rate:.3g}[/bold]")


def _number(value: float | None, digits: str = ".3f") -> str:
    return "-" if value is None else format(value, digits)


def _exact_table(exact: ExactSweepResult) -> Table:
    executions = len(exact.seeds)
    table = Table(
        title=f"exact sweep: {executions} executions per rate, ranked by val MAE"
    )
    for name in ("learning rate", "loss", "val MAE", "ensemble MAE", "diverged"):
        table.add_column(name, justify="right")
    table.add_column("rank", justify="right")
    for row in exact.rows():
        count = row["diverged_executions"]
        if count == 0:
            diverged = "no"
        else:
            diverged = "all" if count == executions else f"{count} of {executions}"
        mae = _number(row["val_mae"])
        if row["val_mae_std"] is not None:
            mae += f" ± {row['val_mae_std']:.3f}"
        best = row["rank"] == 1 and exact.best_rate is not None
        table.add_row(
            f"{row['learning_rate']:.3g}",
            _number(row["loss"], ".2f"),
            mae,
            _number(row["ensemble_val_mae"]),
            diverged,
            f"{row['rank']} best" if best else str(row["rank"]),
            style="bold green" if best else None,
        )
    return table


@app.command(
    "lr-find",
    short_help="Sweep the learning rate and suggest one, or rank fixed rates.",
    help=(
        "Sweep the learning rate and suggest one. The default sweep is the "
        "one of the Keras textbook workflow: 1e-8 at the first epoch, ten "
        "times larger every 20 epochs, for 100 epochs of SGD with momentum "
        "0.9. The suggestion rule, "
        f"{SUGGESTION_RULE!r}, takes {SUGGESTION_RULE_HELP}. With --exact, each "
        "rate of a grid is also trained on its own, from the same seeds, and the "
        "rates are ranked by mean validation MAE."
    ),
)
def lr_find(
    csv: CsvOption = None,
    column: ColumnOption = None,
    time_column: TimeColumnOption = None,
    fill: FillOption = None,
    split: SplitOption = None,
    window_size: WindowSizeOption = DenseConfig.window_size,
    hidden: HiddenOption = DEFAULT_HIDDEN,
    activation: ActivationOption = DenseConfig.activation,
    optimizer: OptimizerOption = OptimizerConfig.name,
    momentum: MomentumOption = OptimizerConfig.momentum,
    epochs: EpochsOption = TrainConfig.epochs,
    batch_size: BatchSizeOption = TrainConfig.batch_size,
    shuffle_buffer: ShuffleBufferOption = TrainConfig.shuffle_buffer,
    loss: LossOption = TrainConfig.loss,
    seed: SeedOption = 0,
    start: StartOption = ExponentialSweep.start,
    factor: FactorOption = ExponentialSweep.factor,
    every: EveryOption = ExponentialSweep.every,
    exact: ExactOption = False,
    rates: RatesOption = None,
    executions: SweepExecutionsOption = 3,
    out: SweepOutOption = None,
    json_output: JsonOption = False,
) -> None:
    _check_positive("--start", start, "1e-8")
    _check_positive("--factor", factor, "10")
    _check_positive("--every", every, "20")
    schedule = ExponentialSweep(start=start, factor=factor, every=every)
    grid = None if rates is None else parse_rates(rates)
    exact = exact or grid is not None
    model, optimizer_config, training = build_configs(
        window_size=window_size,
        hidden=hidden,
        activation=activation,
        optimizer=optimizer,
        momentum=momentum,
        epochs=epochs,
        batch_size=batch_size,
        shuffle_buffer=shuffle_buffer,
        loss=loss,
    )
    folder = None if out is None else _output_folder(out)
    series, split_index = load_series(csv, column, time_column, fill, split)
    settings = dict(
        model=model, optimizer=optimizer_config, training=training, seed=seed
    )

    with progress_bar("learning-rate sweep", enabled=not json_output) as progress:
        sweep = lr_sweep(
            series, split_index, schedule=schedule, progress=progress, **settings
        )
    exact_result = None
    if exact:
        with progress_bar("exact sweep", enabled=not json_output) as progress:
            exact_result = exact_sweep(
                series,
                split_index,
                rates=grid,
                executions=executions,
                progress=progress,
                **settings,
            )

    written = []
    if folder is not None:
        written.append(sweep.plot(folder / SWEEP_PNG))
        if exact_result is not None:
            written.append(exact_result.plot(folder / EXACT_PNG))

    if json_output:
        report = sweep.to_dict()
        if exact_result is not None:
            report.update(exact_result.to_dict())
        typer.echo(json.dumps(report, allow_nan=False))
        return
    console = Console()
    _print_summary(console, sweep, exact_result)
    for path in written:
        console.print(f"wrote {path}")
