"""Options and helpers that every `seqcast` command shares.

A command declares its parameters with the `Annotated` aliases below, so names,
help text, ranges and help panels agree across commands. Typer takes each
default from the parameter itself, and the `DEFAULT_*` constants and the
library's configuration classes provide it. A command then hands the parsed
values to the helpers:

    @app.command()
    def fit(
        csv: CsvOption = None,
        column: ColumnOption = None,
        time_column: TimeColumnOption = None,
        fill: FillOption = None,
        split: SplitOption = None,
        window_size: WindowSizeOption = DenseConfig.window_size,
        hidden: HiddenOption = DEFAULT_HIDDEN,
        epochs: EpochsOption = TrainConfig.epochs,
        json_output: JsonOption = False,
    ) -> None:
        series, split_index = load_series(csv, column, time_column, fill, split)
        model, optimizer, training = build_configs(
            window_size=window_size, hidden=hidden, epochs=epochs
        )
        with progress_bar("training", enabled=not json_output) as progress:
            Forecaster(model, optimizer, training).fit(
                series, split_index, progress=progress
            )

The helpers raise `SeqcastError` for bad values, which `seqcast.cli.main`
prints as one line with exit status 2. Counts carry Typer ranges (min=1), so
Typer rejects a window size of 0 before the command runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from seqcast.data import Series, parse_split
from seqcast.errors import SeqcastError
from seqcast.models import ACTIVATIONS, DenseConfig
from seqcast.optimizers import OPTIMIZER_NAMES, OptimizerConfig
from seqcast.training import LOSS_NAMES, TrainConfig
from seqcast.workflow import DataConfig, load_data

__all__ = [
    "DEFAULT_HIDDEN",
    "DEFAULT_OUT",
    "build_configs",
    "data_config",
    "load_series",
    "parse_hidden",
    "parse_learning_rate",
    "progress_bar",
]

DATA_PANEL = "Data"
MODEL_PANEL = "Model and training"
OUTPUT_PANEL = "Output"

DEFAULT_HIDDEN = ",".join(str(units) for units in DenseConfig.hidden)
DEFAULT_OUT = Path("seqcast-out")
# The --learning-rate value that makes `seqcast run` choose the rate itself.
AUTO = "auto"

# Literal types built from the library's own name lists, so a new loss or
# optimizer appears in the choices without editing this module.
FillChoice = Literal["interpolate", "drop"]
OptimizerChoice = Literal[OPTIMIZER_NAMES]  # type: ignore[valid-type]
ActivationChoice = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
LossChoice = Literal[LOSS_NAMES]  # type: ignore[valid-type]

# Data options.
CsvOption = Annotated[
    Path | None,
    typer.Option(
        "--csv",
        help="CSV file with a header line. Without it, the synthetic series.",
        rich_help_panel=DATA_PANEL,
    ),
]
ColumnOption = Annotated[
    str | None,
    typer.Option(
        "--column",
        help="Column of values. By default the only numeric column.",
        rich_help_panel=DATA_PANEL,
    ),
]
TimeColumnOption = Annotated[
    str | None,
    typer.Option(
        "--time-column",
        help="Column of dates or years. By default one named like date or time.",
        rich_help_panel=DATA_PANEL,
    ),
]
FillOption = Annotated[
    FillChoice | None,
    typer.Option(
        "--fill",
        help="Fill missing values by linear interpolation, or drop their lines.",
        rich_help_panel=DATA_PANEL,
    ),
]
SplitOption = Annotated[
    str | None,
    typer.Option(
        "--split",
        help=(
            "First validation step: a step index (1000), a fraction of the "
            "values for training (0.8) or a date (1990-01-01). Default: 1000 "
            "for the synthetic series, 0.8 for a CSV file."
        ),
        rich_help_panel=DATA_PANEL,
    ),
]
SeasonOption = Annotated[
    int | None,
    typer.Option(
        "--season",
        min=2,
        help=(
            "Steps in one seasonal cycle, for the seasonal baselines and MASE. "
            "By default inferred from the dates."
        ),
        rich_help_panel=DATA_PANEL,
    ),
]

# Model and training options.
WindowSizeOption = Annotated[
    int,
    typer.Option(
        "--window-size",
        min=1,
        help="Past values each forecast is made from.",
        rich_help_panel=MODEL_PANEL,
    ),
]
HiddenOption = Annotated[
    str,
    typer.Option(
        "--hidden",
        help="Units of each hidden layer, comma-separated.",
        rich_help_panel=MODEL_PANEL,
    ),
]
ActivationOption = Annotated[
    ActivationChoice,
    typer.Option(
        "--activation",
        help="Activation of the hidden layers.",
        rich_help_panel=MODEL_PANEL,
    ),
]
BatchSizeOption = Annotated[
    int,
    typer.Option(
        "--batch-size",
        min=1,
        help="Windows per gradient step.",
        rich_help_panel=MODEL_PANEL,
    ),
]
ShuffleBufferOption = Annotated[
    int,
    typer.Option(
        "--shuffle-buffer",
        min=1,
        help="Size of the shuffle buffer. 1 keeps windows in time order.",
        rich_help_panel=MODEL_PANEL,
    ),
]
LearningRateOption = Annotated[
    float,
    typer.Option(
        "--learning-rate",
        "--lr",
        help="Learning rate of the optimizer, a positive number.",
        rich_help_panel=MODEL_PANEL,
    ),
]
LearningRateOrAutoOption = Annotated[
    str,
    typer.Option(
        "--learning-rate",
        "--lr",
        help=(
            "Learning rate of the optimizer, a positive number, or 'auto' to "
            "pick the best of an exact sweep of fixed rates first."
        ),
        rich_help_panel=MODEL_PANEL,
    ),
]
MomentumOption = Annotated[
    float,
    typer.Option(
        "--momentum",
        help="SGD momentum, at least 0 and below 1.",
        rich_help_panel=MODEL_PANEL,
    ),
]
OptimizerOption = Annotated[
    OptimizerChoice,
    typer.Option(
        "--optimizer",
        help="Optimizer. --momentum applies to sgd only.",
        rich_help_panel=MODEL_PANEL,
    ),
]
EpochsOption = Annotated[
    int,
    typer.Option(
        "--epochs",
        min=1,
        help="Passes over the training windows.",
        rich_help_panel=MODEL_PANEL,
    ),
]
LossOption = Annotated[
    LossChoice,
    typer.Option(
        "--loss",
        help="Training loss.",
        rich_help_panel=MODEL_PANEL,
    ),
]
ScaleOption = Annotated[
    Literal["none", "standard", "minmax"],
    typer.Option(
        "--scale",
        help=(
            "Scale the series before training, with statistics of the training "
            "split: standard (mean 0, std 1) or minmax (0 to 1). Forecasts and "
            "metrics stay in the series' units. Values far from 0, such as CO2 "
            "near 330 ppm, need it."
        ),
        rich_help_panel=MODEL_PANEL,
    ),
]
PatienceOption = Annotated[
    int | None,
    typer.Option(
        "--patience",
        min=1,
        help=(
            "Stop after this many epochs without a lower validation loss and "
            "keep the best weights. By default every epoch runs."
        ),
        rich_help_panel=MODEL_PANEL,
    ),
]
SeedOption = Annotated[
    int,
    typer.Option(
        "--seed",
        min=0,
        help="Seed of the first execution; execution i uses seed + i.",
        rich_help_panel=MODEL_PANEL,
    ),
]
ExecutionsOption = Annotated[
    int,
    typer.Option(
        "--executions",
        min=1,
        help="Trainings from consecutive seeds. The forecast is their mean.",
        rich_help_panel=MODEL_PANEL,
    ),
]

# Output options.
OutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        help="Folder for figures, metrics and the model.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON object on stdout instead of tables and progress.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]


def parse_hidden(text: str) -> tuple[int, ...]:
    """Parse --hidden, such as "10,10", into layer sizes.

    Raises:
        SeqcastError: if a part is not a whole number of at least 1.

    Example:
        >>> parse_hidden("32, 16")
        (32, 16)
    """
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise SeqcastError(
            f"invalid --hidden {text!r}; give comma-separated whole numbers of "
            "at least 1, such as 10,10"
        )
    return tuple(int(part) for part in parts)


def parse_learning_rate(text: str) -> float | None:
    """Parse --learning-rate: a number, or None for "auto".

    Raises:
        SeqcastError: if the text is neither a positive number nor "auto".

    Example:
        >>> parse_learning_rate("1e-6"), parse_learning_rate("auto")
        (1e-06, None)
    """
    if text.strip().lower() == AUTO:
        return None
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not rate > 0 or rate == float("inf"):
        raise SeqcastError(
            f"invalid --learning-rate {text!r}; give a positive number such as "
            "1e-6, or 'auto'"
        )
    return rate


def data_config(
    csv: Path | None = None,
    column: str | None = None,
    time_column: str | None = None,
    fill: str | None = None,
    split: str | None = None,
    season: int | None = None,
) -> DataConfig:
    """Build the data settings from the data options, parsing --split."""
    return DataConfig(
        csv=csv,
        column=column,
        time_column=time_column,
        fill=fill,
        split=None if split is None else parse_split(split),
        season=season,
    )


def load_series(
    csv: Path | None = None,
    column: str | None = None,
    time_column: str | None = None,
    fill: str | None = None,
    split: str | None = None,
) -> tuple[Series, int]:
    """Load the series the data options name and find its split index.

    Without --csv this is the synthetic series split at step 1000. A CSV file
    without --split is split after its first 80% of values.

    Returns:
        (series, split): the series and the index of its first validation value.
    """
    return load_data(data_config(csv, column, time_column, fill, split))


def build_configs(
    *,
    window_size: int = DenseConfig.window_size,
    hidden: str = DEFAULT_HIDDEN,
    activation: str = DenseConfig.activation,
    optimizer: str = OptimizerConfig.name,
    learning_rate: float = OptimizerConfig.learning_rate,
    momentum: float = OptimizerConfig.momentum,
    epochs: int = TrainConfig.epochs,
    batch_size: int = TrainConfig.batch_size,
    shuffle_buffer: int = TrainConfig.shuffle_buffer,
    loss: str = TrainConfig.loss,
    patience: int | None = None,
) -> tuple[DenseConfig, OptimizerConfig, TrainConfig]:
    """Build the model, optimizer and training settings from the options.

    Raises:
        SeqcastError: if --hidden does not parse or a setting is out of range.
    """
    model = DenseConfig(
        window_size=window_size, hidden=parse_hidden(hidden), activation=activation
    )
    optimizer_config = OptimizerConfig(
        name=optimizer, learning_rate=learning_rate, momentum=momentum
    )
    training = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        shuffle_buffer=shuffle_buffer,
        loss=loss,
        patience=patience,
    )
    return model, optimizer_config, training


@contextlib.contextmanager
def progress_bar(
    description: str, *, enabled: bool = True
) -> Iterator[Callable[[int, int], None]]:
    """Show a Rich progress bar on stderr and yield its `progress(done, total)`.

    The bar is drawn only when `enabled` is true and stderr is a terminal, so
    --json output and logs stay clean. Otherwise the callback does nothing.

    Example:
        >>> with progress_bar("training", enabled=False) as progress:
        ...     progress(1, 10)
    """
    console = Console(stderr=True)
    if not (enabled and console.is_terminal):
        yield _ignore_progress
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task(description, total=None)

    def progress(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield progress


def _ignore_progress(done: int, total: int) -> None:
    del done, total

