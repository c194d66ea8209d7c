"""The `seqcast tune` command: a hyperparameter search from the command line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Literal

import optuna
import typer
from rich.console import Console

from seqcast import workflow
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
    LearningRateOption,
    LossOption,
    MomentumOption,
    OptimizerOption,
    PatienceOption,
    SeasonOption,
    SeedOption,
    ShuffleBufferOption,
    SplitOption,
    TimeColumnOption,
    WindowSizeOption,
    build_configs,
    data_config,
    progress_bar,
)
from seqcast.cli.run import _metrics_table
from seqcast.data import parse_split
from seqcast.errors import SeqcastError
from seqcast.models import DenseConfig
from seqcast.optimizers import OptimizerConfig
from seqcast.search import (
    ALGORITHMS,
    OBJECTIVES,
    SearchProgress,
    SearchSpace,
    TrialSettings,
    Tuner,
    load_space_file,
)
from seqcast.search.results import json_number
from seqcast.training import TrainConfig

SEARCH_PANEL = "Search"
# The textbook search trains every trial at this rate, so it is also the rate
# of a custom space that does not search learning_rate.
REFERENCE_SEARCH_RATE = 1e-5
SEARCH_PNG = "search.png"
BEST_DIR = "best"

AlgorithmChoice = Literal[ALGORITHMS]  # type: ignore[valid-type]
ObjectiveChoice = Literal[OBJECTIVES]  # type: ignore[valid-type]

SpaceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--space",
        metavar="NAME=SPEC",
        help=(
            "A hyperparameter to search, repeatable: units=int:10:30:2, "
            "learning_rate=float:1e-6:1e-3:log, momentum=choice:0.9,0.5, "
            "nesterov=bool, or a fixed value such as learning_rate=1e-5. "
            "Without --space or --space-file: the textbook search of units "
            "10..30 step 2 and momentum 0.9, 0.7, 0.5, 0.3 at learning rate 1e-5."
        ),
        rich_help_panel=SEARCH_PANEL,
    ),
]
SpaceFileOption = Annotated[
    Path | None,
    typer.Option(
        "--space-file",
        help="TOML file of hyperparameters; --space entries are added to it.",
        rich_help_panel=SEARCH_PANEL,
    ),
]
AlgorithmOption = Annotated[
    AlgorithmChoice,
    typer.Option(
        "--algorithm",
        help=(
            "random: combinations without repeats; grid: every combination in "
            "order; tpe: Optuna's TPE sampler."
        ),
        rich_help_panel=SEARCH_PANEL,
    ),
]
MaxTrialsOption = Annotated[
    int,
    typer.Option(
        "--max-trials",
        min=1,
        help="Complete trials to reach, counting those of earlier runs.",
        rich_help_panel=SEARCH_PANEL,
    ),
]
TuneExecutionsOption = Annotated[
    int,
    typer.Option(
        "--executions",
        min=1,
        help="Trainings per trial from seeds seed, seed + 1, ...; scores are means.",
        rich_help_panel=SEARCH_PANEL,
    ),
]
ObjectiveOption = Annotated[
    ObjectiveChoice,
    typer.Option(
        "--objective",
        help=(
            "What the search minimises: the best training loss over the epochs, "
            "or a validation figure."
        ),
        rich_help_panel=SEARCH_PANEL,
    ),
]
TestSplitOption = Annotated[
    str | None,
    typer.Option(
        "--test-split",
        help=(
            "First step of a test part after --split, held out from the search; "
            "the best trial is then retrained up to it and scored on it."
        ),
        rich_help_panel=SEARCH_PANEL,
    ),
]
DirectoryOption = Annotated[
    Path,
    typer.Option(
        "--directory",
        help="Folder of search projects.",
        rich_help_panel=SEARCH_PANEL,
    ),
]
ProjectOption = Annotated[
    str,
    typer.Option(
        "--project",
        help="Project name: the study and its models go to DIRECTORY/PROJECT.",
        rich_help_panel=SEARCH_PANEL,
    ),
]
OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Delete the project's earlier trials instead of resuming them.",
        rich_help_panel=SEARCH_PANEL,
    ),
]
StorageOption = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help=(
            "Optuna storage URL, or journal:PATH for a journal file; default: "
            "DIRECTORY/PROJECT/study.db."
        ),
        rich_help_panel=SEARCH_PANEL,
    ),
]
BatchTrialsOption = Annotated[
    int | None,
    typer.Option(
        "--batch-trials",
        min=1,
        help="Trials trained together in one program; default 64, 8 for tpe.",
        rich_help_panel=SEARCH_PANEL,
    ),
]
RetrainOption = Annotated[
    bool,
    typer.Option(
        "--retrain/--no-retrain",
        help="Retrain the best trial as seqcast run does and show its figures.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]


def build_space(specs: list[str] | None, space_file: Path | None) -> SearchSpace:
    """Return the space of --space-file plus --space, or the textbook search."""
    if not specs and space_file is None:
        return SearchSpace.reference()
    space = SearchSpace() if space_file is None else load_space_file(space_file)
    for hyperparameter in SearchSpace.from_specs(specs or []):
        space.add(hyperparameter)
    return space


@app.command("tune")
def tune_command(
    space: SpaceOption = None,
    space_file: SpaceFileOption = None,
    algorithm: AlgorithmOption = "random",
    max_trials: MaxTrialsOption = 44,
    executions: TuneExecutionsOption = 3,
    objective: ObjectiveOption = "loss",
    test_split: TestSplitOption = None,
    directory: DirectoryOption = Path("seqcast-tune"),
    project: ProjectOption = "default",
    overwrite: OverwriteOption = False,
    storage: StorageOption = None,
    batch_trials: BatchTrialsOption = None,
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
    learning_rate: LearningRateOption = REFERENCE_SEARCH_RATE,
    momentum: MomentumOption = OptimizerConfig.momentum,
    epochs: EpochsOption = TrainConfig.epochs,
    batch_size: BatchSizeOption = TrainConfig.batch_size,
    shuffle_buffer: ShuffleBufferOption = TrainConfig.shuffle_buffer,
    loss: LossOption = TrainConfig.loss,
    patience: PatienceOption = None,
    seed: SeedOption = 0,
    retrain: RetrainOption = True,
    json_output: JsonOption = False,
) -> None:
    """Search hyperparameters, training a batch of trials as one program.

    Without options this is the textbook search. It tries units of the first
    hidden layer from 10 to 30 in steps of 2 with SGD momentum 0.9, 0.7, 0.5
    or 0.3, in random order. Each trial trains 3 executions of 100 epochs at
    learning rate 1e-5 and scores their best training loss. Model and
    training options set what the space does not search. A second run with the
    same --directory and --project resumes the search. The summary lists the
    best trials, then the best trial is retrained as seqcast run does and
    scored beside the baselines.
    """
    # Optuna logs each study and trial at INFO; the progress bar shows them.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search_space = build_space(space, space_file)
    model, optimizer_config, training = build_configs(
        window_size=window_size,
        hidden=hidden,
        activation=activation,
        optimizer=optimizer,
        learning_rate=learning_rate,
        momentum=momentum,
        epochs=epochs,
        batch_size=batch_size,
        shuffle_buffer=shuffle_buffer,
        loss=loss,
        patience=patience,
    )
    data = data_config(csv, column, time_column, fill, split, season)
    held_out = None if test_split is None else parse_split(test_split)
    tuner = Tuner(
        search_space,
        algorithm=algorithm,
        objective=objective,
        max_trials=max_trials,
        executions_per_trial=executions,
        directory=directory,
        project_name=project,
        overwrite=overwrite,
        storage=storage,
        seed=seed,
        batch_trials=batch_trials,
        base=TrialSettings(model, optimizer_config, training),
    )
    series, split_at = workflow.load_data(data)
    with progress_bar("trials", enabled=not json_output) as progress:
        tuner.search(
            series,
            split_at,
            test_split=held_out,
            season=workflow.season_of(data, series),
            progress=_trial_progress(progress),
        )
    if not tuner.ranked_trials(1):
        raise SeqcastError(
            f"the search in {tuner.project_dir} has no complete trial; every "
            "trial failed or ran in another process that has not finished"
        )
    report = None
    if retrain:
        report = _retrain_best(tuner, data, executions, seed, held_out, json_output)
    if json_output:
        typer.echo(json.dumps(_json_document(tuner, report), allow_nan=False))
        return
    _print_results(tuner, report, held_out is not None)


def _trial_progress(progress):
    def report(state: SearchProgress) -> None:
        fraction = 0.0
        if state.epochs_total:
            fraction = len(state.running) * state.epochs_done / state.epochs_total
        progress(min(state.trials_done + fraction, state.max_trials), state.max_trials)

    return report


def _retrain_best(tuner, data, executions, seed, held_out, json_output):
    best = tuner.get_best_settings(1)[0]
    # With a test part, the best trial trains on everything before it and is
    # scored on it, which no choice of the search has seen.
    run_data = data if held_out is None else dataclasses.replace(data, split=held_out)
    config = workflow.RunConfig(
        data=run_data,
        model=best.model,
        optimizer=best.optimizer,
        training=best.training,
        executions=executions,
        seed=seed,
        out_dir=tuner.project_dir / BEST_DIR,
    )
    with progress_bar("retraining the best trial", enabled=not json_output) as bar:
        report = workflow.run(config, bar)
    workflow.write_outputs(report, config.out_dir)
    return report


def _json_document(tuner: Tuner, report) -> dict:
    complete = [r for r in tuner.trials if r.state == "complete"]
    best = tuner.ranked_trials(1)[0]
    document = {
        "trials": [
            {
                "number": record.number,
                "hyperparameters": record.hyperparameters,
                "score": json_number(record.score),
                "execution_scores": [json_number(s) for s in record.execution_scores],
            }
            for record in complete
        ],
        "best": {
            "hyperparameters": best.hyperparameters,
            "score": json_number(best.score),
            "val_mae": json_number(_nan_if_none(best.figures.get("val_mae"))),
        },
    }
    if report is not None:
        document["run"] = report.to_dict()
    return document


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def _print_results(tuner: Tuner, report, has_test: bool) -> None:
    console = Console()
    tuner.results_summary(10, console=console)
    if tuner.space.searched:
        path = tuner.plot(tuner.project_dir / SEARCH_PNG)
        console.print(f"search figure: {path}", highlight=False)
    if report is None:
        return
    best = tuner.ranked_trials(1)[0]
    where = (
        "retrained on the steps before --test-split and scored on the test part"
        if has_test
        else "retrained and scored on the validation split"
    )
    console.print(f"\nBest trial {best.number}, {where}:")
    console.print(_metrics_table(report))
    console.print(
        "The search scores each execution with its weights from its best epoch; "
        "the retrained network keeps its last epoch's weights, as seqcast run "
        "does.",
        highlight=False,
    )
    for kind, path in report.files.items():
        console.print(f"{kind}: {path}", highlight=False)
