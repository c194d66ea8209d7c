"""Tests of the `seqcast tune` command, in process and as separate processes."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState
from typer.testing import CliRunner

from seqcast.cli import app
from seqcast.data import synthetic_series

runner = CliRunner()

# A tiny network on a 120-value series keeps each search to seconds.
TINY = [
    "--split", "90", "--window-size", "5", "--hidden", "4,4", "--epochs", "2",
    "--batch-size", "16", "--executions", "1",
]  # fmt: skip
SPACE = ["--space", "momentum=choice:0.9,0.5", "--space", "learning_rate=1e-5"]
# Starts the command line in a fresh interpreter, as the console script does.
MAIN = [sys.executable, "-c", "from seqcast.cli import main; main()"]


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "series.csv"
    values = synthetic_series(length=120).values
    path.write_text("value\n" + "\n".join(f"{v:.6f}" for v in values) + "\n")
    return path


def invoke(*args):
    return runner.invoke(app, ["tune", *args])


def load_study(project_dir):
    return optuna.load_study(
        study_name="default", storage=f"sqlite:///{project_dir / 'study.db'}"
    )


def test_json_document(tmp_path, csv):
    result = invoke(
        "--csv", str(csv), *TINY, *SPACE, "--directory", str(tmp_path),
        "--no-retrain", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"trials", "best"}
    assert [t["number"] for t in document["trials"]] == [1, 2]
    for trial in document["trials"]:
        assert set(trial) == {"number", "hyperparameters", "score", "execution_scores"}
        assert trial["hyperparameters"]["learning_rate"] == 1e-5
        assert len(trial["execution_scores"]) == 1
    assert set(document["best"]) == {"hyperparameters", "score", "val_mae"}
    assert document["best"]["score"] == min(t["score"] for t in document["trials"])


def test_table_and_retrained_best(tmp_path, csv):
    result = invoke(
        "--csv", str(csv), *TINY, *SPACE, "--directory", str(tmp_path),
        "--objective", "val_mae",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Best trials by val_mae" in result.stdout
    assert "optimistic" in result.stdout
    assert "retrained" in result.stdout
    assert "naive" in result.stdout
    assert (tmp_path / "default" / "search.png").is_file()
    assert (tmp_path / "default" / "best" / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "units=int:10:x"], "MAX 'x' is not a whole number"),
        (["--space", "units"], "expected NAME=SPEC"),
        (["--space", "lr=choice:1e-5,1e-4"], "unknown hyperparameter 'lr'"),
        (["--space", "momentum=choice:0.9,1.5"], "'momentum' = 1.5 is invalid"),
        (
            ["--space", "units=int:2:4", "--space", "units=choice:2,3"],
            "'units' is defined twice",
        ),
        (["--algorithm", "bayes"], "bayes"),
        (["--objective", "accuracy"], "accuracy"),
        (["--space-file", "absent.toml"], "not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    result = invoke(*TINY, *args, "--directory", str(tmp_path))
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_resume_with_added_hyperparameter_exits_2(tmp_path, csv):
    common = ["--csv", str(csv), *TINY, "--directory", str(tmp_path), "--no-retrain"]
    assert invoke(*common, *SPACE, "--max-trials", "1").exit_code == 0
    result = invoke(
        *common, *SPACE, "--space", "activation=choice:relu,tanh", "--max-trials", "2"
    )
    assert result.exit_code == 2
    assert "hyperparameter 'activation' was added" in result.stderr
    assert "--overwrite" in result.stderr


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """A JAX compilation cache shared by the processes of this module, so each
    program compiles once."""
    return tmp_path_factory.mktemp("jax-cache")


def _spawn(csv, directory, cache, *extra):
    command = [
        *MAIN, "tune", "--csv", str(csv), *TINY, "--directory", str(directory),
        "--no-retrain", "--json", *extra,
    ]  # fmt: skip
    env = {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


def _complete(study):
    return [t for t in study.get_trials() if t.state == TrialState.COMPLETE]


def _poll(directory, condition, seconds=240):
    """Poll the study in ``directory`` until ``condition(trials)`` holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if not (directory / "study.db").exists():
            continue
        try:
            trials = load_study(directory).get_trials()
        except (KeyError, sqlalchemy.exc.OperationalError):
            continue
        if condition(trials):
            return trials
    pytest.fail(f"the study in {directory} did not reach the state in {seconds} s")


def _kill_point(trials):
    """A trial has finished and the next one trains."""
    states = [t.state for t in trials]
    running = [t for t in trials if t.state == TrialState.RUNNING and t.params]
    return TrialState.COMPLETE in states and running


def test_killed_search_resumes_without_losing_trials(
    tmp_path, csv, compile_cache
):
    # One trial per batch and 300 epochs, so the kill lands inside a trial.
    space = [
        "--space", "momentum=choice:0.9,0.7,0.5,0.3", "--space", "learning_rate=1e-5",
    ]  # fmt: skip
    options = [*space, "--batch-trials", "1", "--epochs", "300", "--max-trials", "4"]
    project = tmp_path / "default"
    process = _spawn(csv, tmp_path, compile_cache, *options)
    try:
        _poll(project, _kill_point)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    trials = load_study(project).get_trials()
    finished = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}
    killed = [t.number for t in trials if t.state == TrialState.RUNNING]

    resumed = _spawn(csv, tmp_path, compile_cache, *options)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    study = load_study(project)
    after = {t.number: t.value for t in _complete(study)}
    assert {n: after.get(n) for n in finished} == finished
    assert len(after) == 4
    momenta = sorted(t.params["momentum"] for t in _complete(study))
    assert momenta == [0.3, 0.5, 0.7, 0.9]
    for number in killed:
        trial = study.trials[number]
        assert trial.state == TrialState.FAIL, f"trial {number + 1}"
        assert trial.user_attrs["interrupted"] is True
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert len(json.loads(out)["trials"]) == 4


def test_two_processes_share_one_study(tmp_path, csv, compile_cache):
    space = [
        "--space", "momentum=choice:0.9,0.7,0.5,0.3", "--space", "units=int:3:4",
        "--space", "learning_rate=1e-5",
    ]  # fmt: skip
    options = [*space, "--max-trials", "8", "--batch-trials", "2"]
    first = _spawn(csv, tmp_path, compile_cache, *options)
    second = _spawn(csv, tmp_path, compile_cache, *options)
    for process in (first, second):
        _, err = process.communicate(timeout=180)
        assert process.returncode == 0, err.decode()
    study = load_study(tmp_path / "default")
    keys = [tuple(sorted(t.params.items())) for t in _complete(study)]
    assert len(keys) == 8
    assert len(set(keys)) == 8
    scores = np.array([t.value for t in _complete(study)])
    assert np.isfinite(scores).all()
