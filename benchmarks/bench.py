"""Time seqcast's speed targets and compare them with Keras on the same machine.

Run it with the environment that has seqcast installed:

    python benchmarks/bench.py --repeats 5 \\
        --keras-python /path/to/tensorflow-env/bin/python \\
        --out docs/benchmarks.md --json docs/benchmarks.json

The measured parts are:

* ``run``: ``seqcast run --out DIR`` as a fresh process (target A).
* ``fit``: one 100-epoch ``Forecaster.fit`` once compiled (target B).
* ``predict``: ``Forecaster.predict_steps`` over all 1,441 windows (target C).
* ``sweep``: the published learning-rate sweep, ``lr_sweep``, once compiled
  (target D).
* ``lr-find``: ``seqcast lr-find --exact`` as a fresh process (target E).
* ``tune``: ``seqcast tune`` with its defaults as a fresh process (target F).
* ``mae``: the validation MAE of the reference network for seeds 0 to 4.

With ``--keras-python`` the script also runs ``keras_reference.py`` with that
interpreter in the same invocation, so both sides see the same machine and
load, and it computes the ratios. A part whose module or command is missing or
fails is skipped, and the page gives the reason. Every raw run goes to the JSON file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger("bench")

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPOSITORY_DIR = BENCHMARKS_DIR.parent
KERAS_SCRIPT = BENCHMARKS_DIR / "keras_reference.py"

PARTS = ("run", "fit", "predict", "sweep", "lr-find", "tune", "mae")
# Parts that time a seqcast command. When one of them runs, the import time of
# seqcast.cli is measured too, because it is part of their wall time.
CLI_PARTS = {"run", "lr-find", "tune"}
SPLIT = 1000
SERIES_LENGTH = 1461
WINDOW_SIZE = 20
MAE_SEEDS = tuple(range(5))
# Each predict run is the median of this many calls, as in keras_reference.py.
PREDICT_CALLS = 5
# A CLI run that takes longer than this is stopped and its part is skipped.
CLI_TIMEOUT_S = 900
# Text between these markers of an existing page is kept when the page is
# rewritten, so hand-written explanations survive a rerun.
NOTES_START = "<!-- notes:start -->"
NOTES_END = "<!-- notes:end -->"
PAGE_WIDTH = 88
# Environment variables through which JAX itself enables a persistent
# compilation cache. They are removed from the environment of every timed
# command, so a cache set up outside this script cannot change the timings.
JAX_CACHE_VARIABLES = (
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
)


class PartSkipped(Exception):
    """A part cannot be measured, for the reason in the message."""


# --------------------------------------------------------------------------
# Machine facts


def read_cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def read_memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_os_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as release:
            for line in release:
                if line.startswith("PRETTY_NAME="):
                    name = line.split("=", 1)[1].strip().strip('"')
                    return f"{name}, kernel {platform.release()}"
    except OSError:
        pass
    return platform.platform()


def package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_state() -> dict:
    """Return the checked-out commit and how many files differ from it."""

    def git(*arguments: str) -> str | None:
        try:
            completed = subprocess.run(
                ["git", *arguments],
                cwd=REPOSITORY_DIR,
                capture_output=True,
                text=True,
                check=True,
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return completed.stdout.strip()

    status = git("status", "--porcelain")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "changed_files": None if status is None else len(status.splitlines()),
    }


def describe_machine() -> dict:
    return {
        "cpu": read_cpu_model(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": read_memory_gib(),
        "os": read_os_name(),
        "python": platform.python_version(),
        "jax": package_version("jax"),
        "jaxlib": package_version("jaxlib"),
        "flax": package_version("flax"),
        "seqcast": package_version("seqcast"),
    }


def load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


# --------------------------------------------------------------------------
# Timing helpers


def summarize_runs(runs: list[float], **details) -> dict:
    return {"median_s": statistics.median(runs), "runs_s": runs, **details}


def block(tree) -> None:
    """Wait until every array of a JAX tree is computed."""
    import jax

    jax.block_until_ready(tree)


def clear_compiled_programs() -> None:
    """Drop this process's compiled JAX programs, so the next call compiles.

    Earlier parts compile the same programs, so without this a "first call"
    would include compilation only for the first part that makes it.
    """
    import jax

    jax.clear_caches()


def find_seqcast_script(path: str | None) -> Path:
    """Return the seqcast console script of this interpreter's environment."""
    if path:
        return Path(path)
    beside_python = Path(sys.executable).parent / "seqcast"
    if beside_python.exists():
        return beside_python
    found = shutil.which("seqcast")
    if found is None:
        raise SystemExit(
            "error: the seqcast command was not found next to "
            f"{sys.executable} or on PATH; install seqcast or pass --seqcast"
        )
    return Path(found)


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in JAX_CACHE_VARIABLES
    }
    environment.update(extra or {})
    return environment


def run_command(
    command: list[str], cwd: Path, environment: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command to its end and return (wall seconds, the completed process)."""
    start = time.perf_counter()
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise PartSkipped(
            f"`{shlex.join(command)}` timed out after {CLI_TIMEOUT_S} s"
        ) from None
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        last_lines = " ".join(completed.stderr.strip().splitlines()[-3:])
        raise PartSkipped(
            f"`{shlex.join(command)}` failed with exit status "
            f"{completed.returncode}: {last_lines or 'no output on stderr'}"
        )
    return seconds, completed


def check_command(script: Path, name: str) -> None:
    """Raise PartSkipped unless `seqcast NAME --help` runs."""
    command = [str(script), name, "--help"]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise PartSkipped(f"`{shlex.join(command)}` timed out") from None
    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise PartSkipped(
            f"`seqcast {name}` is not available: `seqcast {name} --help` exited "
            f"with status {completed.returncode} ({last_line})"
        )


def time_cli(
    script: Path,
    arguments: list[str],
    repeats: int,
    *,
    out_option: bool = False,
    environments: Callable[[int], dict[str, str]] | None = None,
) -> dict:
    """Time a seqcast command as a fresh process, after one untimed run.

    The untimed run loads the interpreter, JAX and seqcast into the operating
    system's file cache, so the timed runs measure a cold process, not a cold
    disk. Each run works in a new empty folder. With ``out_option`` the command
    gets ``--out`` pointing into that folder. ``environments(i)`` gives the
    environment of run ``i``, where run 0 is the untimed one.
    """
    runs = []
    workflow_seconds = []
    for index in range(repeats + 1):
        environment = environments(index) if environments else child_environment()
        with tempfile.TemporaryDirectory(prefix="seqcast-bench-") as folder:
            command = [str(script), *arguments]
            if out_option:
                command += ["--out", str(Path(folder) / "out")]
            seconds, _ = run_command(command, Path(folder), environment)
            metrics_file = Path(folder) / "out" / "metrics.json"
            if index == 0:
                logger.info("  untimed first run: %.2f s", seconds)
                continue
            logger.info("  run %d of %d: %.2f s", index, repeats, seconds)
            runs.append(seconds)
            if metrics_file.exists():
                reported = json.loads(metrics_file.read_text()).get("seconds")
                if reported is not None:
                    workflow_seconds.append(float(reported))
    display_arguments = ["seqcast", *arguments]
    if out_option:
        display_arguments += ["--out", "DIR"]
    result = summarize_runs(runs, command=shlex.join(display_arguments))
    if workflow_seconds:
        result["workflow_seconds_reported"] = workflow_seconds
    return result


def time_import(repeats: int) -> dict:
    """Time `python -c "import seqcast.cli"` as a fresh process."""
    command = [sys.executable, "-c", "import seqcast.cli"]
    runs = []
    for index in range(repeats + 1):
        seconds, _ = run_command(command, REPOSITORY_DIR, child_environment())
        if index:
            runs.append(seconds)
    return summarize_runs(runs, command=shlex.join(["python", *command[1:]]))


# --------------------------------------------------------------------------
# Persistent compilation cache


def find_cache_setting() -> dict:
    """Look for a persistent JAX compilation cache that seqcast enables.

    The check reads seqcast's source: ``jax_compilation_cache_dir`` (or
    ``compilation_cache``) means seqcast enables a cache, and a string such as
    ``SEQCAST_CACHE_DIR`` names the variable that sets its folder.
    """
    import seqcast

    package_dir = Path(seqcast.__file__).resolve().parent
    text = "\n".join(
        path.read_text(encoding="utf-8", errors="replace")
        for path in sorted(package_dir.rglob("*.py"))
    )
    enabled = "jax_compilation_cache_dir" in text or "compilation_cache" in text
    variables = sorted(set(re.findall(r"SEQCAST_[A-Z0-9_]*CACHE[A-Z0-9_]*", text)))
    return {
        "enabled": enabled,
        "variable": variables[0] if variables else None,
        "searched": str(package_dir),
    }


# --------------------------------------------------------------------------
# The parts


def time_cli_with_cache(
    script: Path, arguments: list[str], repeats: int, *, out_option: bool = False
) -> dict:
    """Time a seqcast command with an empty and a warm compilation cache.

    When seqcast enables a persistent compilation cache whose folder a variable
    sets, the cold runs each get a new empty folder and the warm runs share one
    that their untimed run filled. The result's ``median_s`` is the cold
    median. Without such a cache the command is timed once, as is.
    """
    cache = find_cache_setting()
    name = " ".join(["seqcast", *arguments])
    if not (cache["enabled"] and cache["variable"]):
        logger.info("%s as a fresh process", name)
        timed = time_cli(script, arguments, repeats, out_option=out_option)
        return {
            "cache": cache,
            "command": timed["command"],
            "median_s": timed["median_s"],
            "no_cache": timed,
        }

    variable = cache["variable"]
    with tempfile.TemporaryDirectory(prefix="seqcast-bench-cache-") as folder:

        def empty_cache(index: int) -> dict[str, str]:
            path = Path(folder) / f"cold-{index}"
            path.mkdir()
            return child_environment({variable: str(path)})

        def warm_cache(index: int) -> dict[str, str]:
            return child_environment({variable: str(Path(folder) / "warm")})

        logger.info("%s, each run with an empty cache in %s", name, variable)
        cold = time_cli(
            script, arguments, repeats, out_option=out_option, environments=empty_cache
        )
        logger.info("%s with the cache filled by the untimed run", name)
        warm = time_cli(
            script, arguments, repeats, out_option=out_option, environments=warm_cache
        )
    return {
        "cache": cache,
        "command": cold["command"],
        "median_s": cold["median_s"],
        "cold_cache": cold,
        "warm_cache": warm,
    }


def measure_run(script: Path, repeats: int) -> dict:
    check_command(script, "run")
    result = time_cli_with_cache(script, ["run"], repeats, out_option=True)
    result["in_process"] = time_in_process(
        "`workflow.run(RunConfig())`, which writes no files,", run_workflow
    )
    return result


def reference_series():
    from seqcast.data import synthetic_series

    series = synthetic_series()
    if len(series) != SERIES_LENGTH:
        raise PartSkipped(
            f"synthetic_series() has {len(series)} values, but the reference "
            f"workflow uses {SERIES_LENGTH}"
        )
    return series


def timed_fit(series, seed: int):
    from seqcast.forecasting import Forecaster

    start = time.perf_counter()
    forecaster = Forecaster(seed=seed).fit(series, split=SPLIT)
    block(forecaster.params_)
    return time.perf_counter() - start, forecaster


def measure_fit(repeats: int) -> dict:
    series = reference_series()
    clear_compiled_programs()
    first_seconds, _ = timed_fit(series, seed=0)
    logger.info("  first fit, compilation included: %.2f s", first_seconds)
    runs = []
    for seed in range(repeats):
        seconds, _ = timed_fit(series, seed=seed)
        logger.info("  fit with seed %d: %.3f s", seed, seconds)
        runs.append(seconds)
    return summarize_runs(
        runs,
        command="Forecaster(seed=i).fit(series, split=1000), i = 0, 1, ...",
        first_call_s=first_seconds,
    )


def measure_predict(repeats: int) -> dict:
    series = reference_series()
    _, forecaster = timed_fit(series, seed=0)
    end = len(series)
    forecast = forecaster.predict_steps(start=WINDOW_SIZE, end=end)
    if forecast.members.shape[-1] != end - WINDOW_SIZE:
        raise PartSkipped(
            f"predict_steps returned {forecast.members.shape[-1]} forecasts, "
            f"expected {end - WINDOW_SIZE}"
        )
    runs = []
    calls = []
    for _ in range(repeats):
        call_seconds = []
        for _ in range(PREDICT_CALLS):
            start = time.perf_counter()
            forecast = forecaster.predict_steps(start=WINDOW_SIZE, end=end)
            block(forecast.members)
            call_seconds.append(time.perf_counter() - start)
        runs.append(statistics.median(call_seconds))
        calls.append(call_seconds)
    return summarize_runs(
        runs,
        command=f"forecaster.predict_steps(start={WINDOW_SIZE}, end={end})",
        calls_s=calls,
    )


def measure_sweep(repeats: int) -> dict:
    try:
        from seqcast.learning_rates import lr_sweep
    except ImportError as error:
        raise PartSkipped(f"lr_sweep is not available: {error}") from None
    series = reference_series()

    def timed_sweep(seed: int) -> float:
        start = time.perf_counter()
        sweep = lr_sweep(series, SPLIT, seed=seed)
        block(sweep.result.params)
        return time.perf_counter() - start

    clear_compiled_programs()
    first_seconds = timed_sweep(0)
    logger.info("  first sweep, compilation included: %.2f s", first_seconds)
    runs = []
    for seed in range(repeats):
        runs.append(timed_sweep(seed))
        logger.info("  sweep with seed %d: %.3f s", seed, runs[-1])
    return summarize_runs(
        runs,
        command="lr_sweep(series, 1000, seed=i), i = 0, 1, ...",
        first_call_s=first_seconds,
    )


def time_in_process(description: str, function: Callable[[], object]) -> dict:
    """Time the work of a command inside this process, where imports are done.

    The first call compiles and the second reuses the compiled programs, so
    their difference estimates the compilation time. Each is one run, because
    this only splits a command's wall time into its parts. A failure is
    recorded and does not skip the command's own measurement.
    """
    seconds = []
    clear_compiled_programs()
    try:
        for _ in range(2):
            start = time.perf_counter()
            block(function())
            seconds.append(time.perf_counter() - start)
    except Exception as error:  # noqa: BLE001
        logger.warning("in-process timing of %s failed: %s", description, error)
        return {"command": description, "error": f"{type(error).__name__}: {error}"}
    logger.info("  in this process: %.2f s first call, %.2f s compiled", *seconds)
    return {
        "command": description,
        "first_call_s": seconds[0],
        "compiled_call_s": seconds[1],
    }


def run_workflow():
    from seqcast import workflow

    report = workflow.run(workflow.RunConfig())
    return report.metrics


def find_learning_rates():
    from seqcast.learning_rates import exact_sweep, lr_sweep

    series = reference_series()
    sweep = lr_sweep(series, SPLIT)
    exact = exact_sweep(series, SPLIT)
    return sweep.result.params, exact.result.params


def search_reference_space():
    from seqcast.search import Tuner

    series = reference_series()
    with tempfile.TemporaryDirectory(prefix="seqcast-bench-tune-") as folder:
        tuner = Tuner(directory=folder).search(series, split=SPLIT)
        return tuner.trials_done


def measure_lr_find(script: Path, repeats: int) -> dict:
    check_command(script, "lr-find")
    result = time_cli_with_cache(script, ["lr-find", "--exact"], repeats)
    result["in_process"] = time_in_process(
        "`lr_sweep(series, 1000)` plus `exact_sweep(series, 1000)`",
        find_learning_rates,
    )
    return result


def measure_tune(script: Path, repeats: int) -> dict:
    check_command(script, "tune")
    result = time_cli_with_cache(script, ["tune"], repeats)
    result["in_process"] = time_in_process(
        "`Tuner(directory=TMP).search(series, split=1000)`", search_reference_space
    )
    return result


def measure_mae() -> dict:
    from seqcast import metrics

    series = reference_series()
    actual = series.values[SPLIT:]
    by_seed = {}
    for seed in MAE_SEEDS:
        _, forecaster = timed_fit(series, seed=seed)
        forecast = forecaster.predict_steps(start=SPLIT)
        by_seed[seed] = float(metrics.mae(actual, forecast.mean))
        logger.info("  seed %d: validation MAE %.3f", seed, by_seed[seed])
    return {
        "val_mae": [by_seed[seed] for seed in MAE_SEEDS],
        "seeds": list(MAE_SEEDS),
        "command": "Forecaster(seed=s).fit(series, split=1000), forecasts of steps "
        "1000 to 1460",
    }


# --------------------------------------------------------------------------
# Keras


def run_keras(python: str, repeats: int, tuner_repeats: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="seqcast-bench-keras-") as folder:
        output = Path(folder) / "keras.json"
        command = [
            python,
            str(KERAS_SCRIPT),
            "--repeats",
            str(repeats),
            "--tuner-repeats",
            str(tuner_repeats),
            "--json",
            str(output),
        ]
        logger.info("Keras reference: %s", shlex.join(command))
        # Its progress log and summary go straight to this terminal.
        completed = subprocess.run(command, stdout=sys.stderr)
        if completed.returncode != 0 or not output.exists():
            raise PartSkipped(
                f"keras_reference.py failed with exit status {completed.returncode}; "
                "its errors are printed above"
            )
        summary = json.loads(output.read_text())
    summary["source"] = "measured in this run"
    summary["command"] = shlex.join(
        ["python", "benchmarks/keras_reference.py", *command[2:-2]]
    )
    return summary


def load_keras_file(path: Path) -> dict:
    """Read the Keras results of an earlier run.

    The file is the JSON of keras_reference.py, or the JSON of an earlier run
    of this script, whose "keras" entry contains the same results.
    """
    try:
        summary = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        message = f"error: failed to read --keras-json {path}: {error}"
        raise SystemExit(message) from None
    if "measurements" not in summary and isinstance(summary.get("keras"), dict):
        summary = summary["keras"]
    if "measurements" not in summary or "tensorflow" not in summary:
        raise SystemExit(
            f"error: --keras-json {path} contains no Keras results; pass the JSON "
            "that keras_reference.py or bench.py --json wrote"
        )
    modified = datetime.datetime.fromtimestamp(
        path.stat().st_mtime, datetime.UTC
    ).strftime("%Y-%m-%d %H:%M UTC")
    summary["source"] = f"reused from {path} (written {modified}), not this run"
    summary["command"] = "python benchmarks/keras_reference.py (earlier run)"
    return summary


# --------------------------------------------------------------------------
# Targets


def keras_median(keras: dict | None, name: str) -> float | None:
    if keras is None:
        return None
    measurement = keras.get("measurements", {}).get(name)
    return None if measurement is None else measurement["median_s"]


def part_median(parts: dict, name: str, key: str | None = None) -> float | None:
    """Return a part's median, or None when it was not measured or skipped."""
    result = parts.get(name)
    if result is None or "skipped" in result:
        return None
    if key is not None:
        result = result.get(key)
    return None if result is None else result.get("median_s")


def describe_goal(kind: str | None, value: float | None) -> str:
    if kind == "max_s":
        return f"<= {format_seconds(value)}"
    if kind == "below_s":
        return f"< {format_seconds(value)}"
    if kind == "min_ratio":
        return f">= {value:g}x"
    if kind == "above_ratio":
        return f"> {value:g}x"
    return "context"


def check(
    target: str,
    label: str,
    seqcast_s: float | None,
    goal: tuple[str | None, float | None] = (None, None),
    *,
    peer: str | None = None,
    keras: dict | None = None,
) -> dict:
    """Build one row of a target's table and decide whether its goal is met.

    ``goal`` is ``(kind, value)``: ``max_s`` and ``below_s`` bound seqcast's
    median, ``min_ratio`` and ``above_ratio`` bound the Keras median divided by
    seqcast's, and ``(None, None)`` marks a row shown for context only.
    """
    peer_s = keras_median(keras, peer) if peer else None
    ratio = None
    if seqcast_s is not None and peer_s is not None and seqcast_s > 0:
        ratio = peer_s / seqcast_s
    kind, value = goal
    met = None
    if kind == "max_s" and seqcast_s is not None:
        met = seqcast_s <= value
    elif kind == "below_s" and seqcast_s is not None:
        met = seqcast_s < value
    elif kind == "min_ratio" and ratio is not None:
        met = ratio >= value
    elif kind == "above_ratio" and ratio is not None:
        met = ratio > value
    return {
        "target": target,
        "check": label,
        "seqcast_s": seqcast_s,
        "peer": peer,
        "peer_s": peer_s,
        "ratio": ratio,
        "goal": describe_goal(kind, value),
        "met": met,
    }


def wall_time_checks(parts: dict, target: str, name: str, limit_s: float) -> list[dict]:
    """Return one wall-time check per cache state that a command was timed in."""
    labels = {
        "cold_cache": "wall, empty JAX cache",
        "warm_cache": "wall, warm JAX cache",
        "no_cache": "wall time",
    }
    part = parts.get(name) or {}
    keys = [key for key in labels if key in part] or ["no_cache"]
    return [
        check(target, labels[key], part_median(parts, name, key), ("max_s", limit_s))
        for key in keys
    ]


def evaluate_targets(parts: dict, keras: dict | None) -> list[dict]:
    """Compare each measured part with its target and return one row per check.

    A command timed with an empty and a warm cache gets a wall-time check for
    each, and its ratio uses the empty-cache median.
    """
    checks = wall_time_checks(parts, "A", "run", 5.0)
    checks.append(
        check(
            "A",
            "vs Keras first fit, fresh",
            part_median(parts, "run"),
            peer="fit_first_in_process",
            keras=keras,
        )
    )

    checks.append(
        check(
            "B",
            "vs Keras fit, traced",
            part_median(parts, "fit"),
            ("min_ratio", 100),
            peer="fit_compiled",
            keras=keras,
        )
    )

    predict_s = part_median(parts, "predict")
    checks.append(check("C", "time", predict_s, ("below_s", 0.010)))
    checks.append(
        check(
            "C",
            "vs Keras batched predict",
            predict_s,
            peer="predict_batched_1441_windows",
            keras=keras,
        )
    )
    checks.append(
        check(
            "C",
            "vs Keras one-window loop",
            predict_s,
            peer="predict_loop_1441_windows_estimate",
            keras=keras,
        )
    )

    checks.append(
        check(
            "D",
            "vs Keras sweep, traced",
            part_median(parts, "sweep"),
            ("min_ratio", 50),
            peer="lr_sweep_compiled",
            keras=keras,
        )
    )

    checks += wall_time_checks(parts, "E", "lr-find", 10.0)
    checks.append(
        check(
            "E",
            "vs one Keras fit, traced",
            part_median(parts, "lr-find"),
            ("above_ratio", 1),
            peer="fit_compiled",
            keras=keras,
        )
    )

    checks += wall_time_checks(parts, "F", "tune", 20.0)
    checks.append(
        check(
            "F",
            "vs Keras Tuner, 44 x 3",
            part_median(parts, "tune"),
            ("min_ratio", 100),
            peer="tuner_search_44_trials_estimate",
            keras=keras,
        )
    )
    return checks


# --------------------------------------------------------------------------
# The markdown page

TARGET_TITLES = {
    "A": "A. `seqcast run` as a fresh process",
    "B": "B. One 100-epoch fit, once compiled",
    "C": "C. One-step forecasts for all 1,441 windows",
    "D": "D. The published learning-rate sweep, once compiled",
    "E": "E. `seqcast lr-find --exact` as a fresh process",
    "F": "F. `seqcast tune` with its defaults as a fresh process",
}
TARGET_PARTS = {
    "A": "run",
    "B": "fit",
    "C": "predict",
    "D": "sweep",
    "E": "lr-find",
    "F": "tune",
}
SEQCAST_DESCRIPTIONS = {
    "run": (
        "Wall time of `seqcast run --out DIR` from process start to exit, "
        "interpreter start-up, imports, compilation, training, forecasts, "
        "baselines and the figures included. Each run uses a new empty folder. "
        "One untimed run comes first, so the files of Python, JAX and seqcast "
        "are in the operating system's file cache."
    ),
    "fit": (
        "`Forecaster(seed=i).fit(series, split=1000)` on the synthetic series "
        "of 1,461 values, timed until `jax.block_until_ready` returns on the "
        "parameters. A fit of the same shapes runs first, so no run compiles."
    ),
    "predict": (
        "`predict_steps(start=20, end=1461)` of a fitted forecaster: one-step "
        "forecasts from all 1,441 windows, returned as a NumPy array. Each run "
        f"is the median of {PREDICT_CALLS} calls after a warm-up call."
    ),
    "sweep": (
        "`seqcast.learning_rates.lr_sweep(series, 1000, seed=i)`: 100 epochs "
        "with the rate `1e-8 * 10 ** (epoch / 20)`, SGD with momentum 0.9. "
        "A sweep of the same shapes runs first, so no run compiles."
    ),
    "lr-find": (
        "Wall time of `seqcast lr-find --exact` from process start to exit: the "
        "published sweep, then 12 fixed rates x 3 executions x 100 epochs. One "
        "untimed run comes first."
    ),
    "tune": (
        "Wall time of `seqcast tune` from process start to exit, in a new empty "
        "folder each run, so no run resumes an earlier study. The defaults are "
        "the textbook search: 44 combinations x 3 executions x 100 epochs. One "
        "untimed run comes first."
    ),
}
KERAS_NAMES = {
    "fit_first_in_process": "Keras first `fit` in a fresh process",
    "fit_compiled": "Keras `fit`, once traced",
    "predict_batched_1441_windows": "Keras batched `predict`",
    "predict_loop_1441_windows_estimate": "Keras one-window loop (estimate)",
    "lr_sweep_compiled": "Keras sweep, once traced",
    "tuner_search_44_trials_estimate": "Keras Tuner, 44 x 3 (estimate)",
}


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 0.1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 100:
        return f"{seconds:.3g} s"
    return f"{seconds:.0f} s"


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:.3g}x" if ratio < 1000 else f"{ratio:,.0f}x"


def format_verdict(met: bool | None, goal: str) -> str:
    if goal == "context":
        return "context"
    if met is None:
        return "not measured"
    return "met" if met else "**missed**"


def count_of(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_runs(runs: list[float]) -> str:
    return ", ".join(format_seconds(seconds) for seconds in runs)


# textwrap breaks lines only at ASCII whitespace, so a no-break space keeps a
# number on the same line as its unit and is turned back into a space afterwards.
UNIT_PATTERN = re.compile(r"(\d) (ms|s)\b")
NO_BREAK_SPACE = "\u00a0"


def wrap_text(text: str, indent: str = "", next_indent: str = "") -> list[str]:
    protected = UNIT_PATTERN.sub(rf"\1{NO_BREAK_SPACE}\2", text)
    lines = textwrap.wrap(
        protected,
        PAGE_WIDTH,
        initial_indent=indent,
        subsequent_indent=next_indent,
        break_on_hyphens=False,
    )
    return [line.replace(NO_BREAK_SPACE, " ") for line in lines]


def wrap(text: str) -> list[str]:
    return wrap_text(text) + [""]


def bullet(text: str) -> list[str]:
    return wrap_text(text, "- ", "  ")


def format_cells(row: dict) -> list[str]:
    """Return the cells of a check: name, seqcast, Keras, ratio, target, result."""
    has_peer = row["peer"] is not None
    return [
        row["check"],
        format_seconds(row["seqcast_s"]),
        format_seconds(row["peer_s"]) if has_peer else "",
        format_ratio(row["ratio"]) if has_peer else "",
        row["goal"],
        format_verdict(row["met"], row["goal"]),
    ]


def table_line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def check_table(checks: list[dict]) -> list[str]:
    header = ["check", "seqcast", "Keras", "ratio", "target", "result"]
    lines = [table_line(header), table_line(["---"] * len(header))]
    lines += [table_line(format_cells(row)) for row in checks]
    return lines + [""]


def keras_runs_text(keras: dict | None, name: str) -> list[str]:
    if keras is None or name not in keras.get("measurements", {}):
        return []
    measurement = keras["measurements"][name]
    lines = bullet(
        f"Keras `{name}`: median {format_seconds(measurement['median_s'])}, "
        f"runs {format_runs(measurement['runs_s'])}. {measurement['note']}"
    )
    if name == "tuner_search_44_trials_estimate":
        execution = keras["measurements"].get("tuner_execution")
        if execution is not None:
            lines += bullet(
                "Derivation: Keras Tuner's measured time per execution, "
                f"{format_seconds(execution['median_s'])} (median of "
                f"{count_of(len(execution['runs_s']), 'search')} of "
                f"{keras['settings']['tuner_trials']} trials x 3 executions), "
                "times 132 executions. The model.fit part alone had a median of "
                f"{format_seconds(execution['fit_only_median_s'])} per execution."
            )
    return lines


def cli_breakdown(
    part: dict, import_result: dict | None, in_process: dict | None
) -> list[str]:
    """Split a command's median wall time into start-up, compilation and work."""
    lines = []
    reported = part.get("workflow_seconds_reported")
    if reported:
        lines += bullet(
            "`metrics.json` reports the workflow itself (data, compilation, "
            "training, forecasts, baselines, without imports and figures) at a "
            f"median of {format_seconds(statistics.median(reported))}."
        )
    if import_result is not None:
        lines += bullet(
            "A fresh `python -c 'import seqcast.cli'` alone takes "
            f"{format_seconds(import_result['median_s'])} (median, runs "
            f"{format_runs(import_result['runs_s'])})."
        )
    if in_process is None:
        return lines
    if "error" in in_process:
        return lines + bullet(
            f"The in-process timing of {in_process['command']} failed: "
            f"{in_process['error']}"
        )
    first, compiled = in_process["first_call_s"], in_process["compiled_call_s"]
    lines += bullet(
        "Inside this benchmark's process, with imports done, "
        f"{in_process['command']} took {format_seconds(first)} the first "
        "time after `jax.clear_caches()`, compilation included, and "
        f"{format_seconds(compiled)} once compiled (one run each)."
    )
    if import_result is not None:
        wall = part["median_s"]
        imports = import_result["median_s"]
        rest = wall - imports - first
        if rest >= 0:
            rest_text = (
                f"and {format_seconds(rest)} for the rest (figures, files and "
                "run-to-run differences)"
            )
        else:
            rest_text = (
                f"which add up to {format_seconds(-rest)} more than the median, "
                "so at least one part is overstated"
            )
        lines += bullet(
            f"Estimated split of the {format_seconds(wall)} median: "
            f"{format_seconds(imports)} starting Python and importing, "
            f"{format_seconds(first - compiled)} compiling, "
            f"{format_seconds(compiled)} computing, {rest_text}. The parts come "
            "from different processes, so the split is approximate."
        )
    return lines


def cli_section(run: dict, import_result: dict | None) -> list[str]:
    lines = []
    cache = run.get("cache", {})
    if cache.get("enabled") and cache.get("variable"):
        lines += wrap(
            "seqcast enables a persistent JAX compilation cache whose folder "
            f"`{cache['variable']}` sets. The runs with an empty cache each get a "
            "new empty folder, and the runs with a warm cache share one that "
            "their untimed run filled. Ratios use the runs with an empty cache."
        )
        measured = (("empty cache", "cold_cache"), ("warm cache", "warm_cache"))
    else:
        reason = (
            "enables a JAX compilation cache but no SEQCAST_*CACHE* variable "
            "sets its folder, so the runs may reuse whatever it holds"
            if cache.get("enabled")
            else "does not enable a persistent JAX compilation cache (its "
            "source has no `jax_compilation_cache_dir` and no SEQCAST_*CACHE* "
            "variable), so every run compiles its programs again"
        )
        lines += wrap(f"seqcast {reason}. The command is measured as is.")
        measured = (("measured as is", "no_cache"),)
    for label, key in measured:
        part = run[key]
        lines += bullet(
            f"seqcast, `{part['command']}`, {label}: median "
            f"{format_seconds(part['median_s'])}, runs {format_runs(part['runs_s'])}."
        )
        if key == "warm_cache":
            # Compilation is read from the cache here, so the split of the
            # cold runs does not apply.
            lines += cli_breakdown(part, None, None)
        else:
            lines += cli_breakdown(part, import_result, run.get("in_process"))
    return lines


def part_section(name: str, part: dict, import_result: dict | None) -> list[str]:
    if name in CLI_PARTS:
        return cli_section(part, import_result)
    lines = bullet(
        f"seqcast, `{part['command']}`: median {format_seconds(part['median_s'])}, "
        f"runs {format_runs(part['runs_s'])}."
    )
    if "first_call_s" in part:
        lines += bullet(
            "The first call after `jax.clear_caches()`, compilation included, "
            f"took {format_seconds(part['first_call_s'])}."
        )
    return lines


def target_section(target: str, checks: list[dict], report: dict) -> list[str]:
    name = TARGET_PARTS[target]
    part = report["parts"].get(name)
    keras = report.get("keras")
    lines = [f"## {TARGET_TITLES[target]}", ""]
    lines += wrap(SEQCAST_DESCRIPTIONS[name])
    lines += check_table(checks)
    if part is None:
        return lines + wrap("Not measured: the part was not selected with --only.")
    if "skipped" in part:
        return lines + wrap(f"Skipped: {part['skipped']}")
    lines += part_section(name, part, report.get("import"))
    for peer in dict.fromkeys(row["peer"] for row in checks if row["peer"]):
        lines += keras_runs_text(keras, peer)
    start_load = ", ".join(str(x) for x in part["load_average_at_start"])
    end_load = ", ".join(str(x) for x in part["load_average_at_end"])
    lines += bullet(
        f"Load average (1, 5, 15 min): {start_load} when the part started, "
        f"{end_load} when it ended."
    )
    return lines + [""]


def summary_table(checks: list[dict]) -> list[str]:
    header = ["#", "check", "seqcast", "Keras", "ratio", "target", "result"]
    lines = [table_line(header), table_line(["---"] * len(header))]
    for row in checks:
        if row["goal"] != "context":
            lines.append(table_line([row["target"], *format_cells(row)]))
    return lines + [""]


def mae_section(report: dict) -> list[str]:
    lines = ["## Validation MAE of the reference network", ""]
    lines += wrap(
        "One-step forecasts for steps 1000 to 1460 of the synthetic series, "
        "trained on steps 0 to 999 with the reference settings: windows of 20, "
        "dense layers of 10 and 10, SGD with learning rate 1e-6 and momentum "
        "0.9, 100 epochs. The same seed number does not give the same initial "
        "weights or shuffle order in seqcast and Keras, so compare the spread, "
        "not seed by seed."
    )
    part = report["parts"].get("mae")
    seqcast_maes = [] if not part or "skipped" in part else part["val_mae"]
    if part and "skipped" in part:
        lines += wrap(f"seqcast skipped: {part['skipped']}")
    keras = report.get("keras")
    keras_maes = keras.get("val_mae", []) if keras else []
    rows = max(len(seqcast_maes), len(keras_maes))
    if not rows:
        return lines + wrap("Not measured.")
    lines += [table_line(["seed", "seqcast", "Keras"]), table_line(["---"] * 3)]
    for seed in range(rows):
        ours = f"{seqcast_maes[seed]:.3f}" if seed < len(seqcast_maes) else "n/a"
        theirs = f"{keras_maes[seed]:.3f}" if seed < len(keras_maes) else "n/a"
        lines.append(table_line([str(seed), ours, theirs]))
    for label, function in (("median", statistics.median), ("mean", statistics.mean)):
        ours = f"{function(seqcast_maes):.3f}" if seqcast_maes else "n/a"
        theirs = f"{function(keras_maes):.3f}" if keras_maes else "n/a"
        lines.append(table_line([label, ours, theirs]))
    return lines + [""]


def machine_section(report: dict) -> list[str]:
    machine = report["machine"]
    keras = report.get("keras")
    memory = machine["memory_gib"]
    facts = [
        f"CPU: {machine['cpu']}, {machine['logical_cpus']} logical CPUs",
        f"RAM: {memory:.1f} GiB" if memory else "RAM: unknown",
        f"OS: {machine['os']}",
        f"Python {machine['python']}, JAX {machine['jax']} (jaxlib "
        f"{machine['jaxlib']}), Flax {machine['flax']}, seqcast {machine['seqcast']}",
    ]
    if keras:
        facts.append(
            f"TensorFlow {keras['tensorflow']}, Keras {keras['keras']}, Python "
            f"{keras['machine']['python']} (Keras side)"
        )
    before = ", ".join(str(x) for x in report["load_average_before"])
    after = ", ".join(str(x) for x in report["load_average_after"])
    facts.append(f"Load average (1, 5, 15 min): {before} before, {after} after")
    git = report["git"]
    if git["commit"]:
        changed = git["changed_files"]
        facts.append(
            f"Code: commit {git['commit']}"
            + (f" plus {count_of(changed, 'changed or new file')}" if changed else "")
        )
    lines = ["## Machine and run", ""]
    for fact in facts:
        lines += bullet(fact)
    return lines + [""]


def read_notes(path: Path | None) -> str:
    default = (
        "<!-- Explanations written by hand. bench.py keeps the text between\n"
        "these markers when it rewrites the page. -->"
    )
    if path is None or not path.exists():
        return default
    text = path.read_text(encoding="utf-8")
    start, end = text.find(NOTES_START), text.find(NOTES_END)
    if start < 0 or end < start:
        return default
    return text[start + len(NOTES_START) : end].strip() or default


def render_page(report: dict, notes: str) -> str:
    lines = ["# Benchmarks", ""]
    lines += wrap(
        "Speed targets of seqcast, measured by `benchmarks/bench.py` beside the "
        "Keras textbook workflow (`benchmarks/keras_reference.py`) on the same "
        "machine in the same invocation. Every time is the median of "
        f"{report['settings']['repeats']} runs, and each ratio is the Keras "
        "median divided by the seqcast median, so 100x means seqcast is 100 "
        "times faster. All raw runs are in the JSON file next to this page. "
        "This page is generated: rerun the command to update it."
    )
    lines += ["```", *report["command_lines"], "```", ""]
    lines += wrap(f"Run at {report['started']}, {report['elapsed_s']:.0f} s in all.")
    keras = report.get("keras")
    if keras:
        lines += wrap(f"Keras numbers: {keras['source']}, from `{keras['command']}`.")
    else:
        lines += wrap(
            f"Keras numbers: none ({report.get('keras_skipped', 'not requested')}), "
            "so no ratio is measured."
        )
    lines += machine_section(report)
    lines += ["## Summary", ""]
    lines += summary_table(report["checks"])
    for target in TARGET_TITLES:
        rows = [row for row in report["checks"] if row["target"] == target]
        lines += target_section(target, rows, report)
    lines += mae_section(report)
    lines += ["## Notes", "", NOTES_START, notes, NOTES_END, ""]
    return "\n".join(lines)


def command_lines(argv: list[str]) -> list[str]:
    """Return the invocation as shell lines continued with a backslash."""
    words = ["python", "benchmarks/bench.py"]
    options = []
    for word in argv:
        if word.startswith("--") or not options:
            options.append([word])
        else:
            options[-1].append(word)
    lines = [" ".join(words)]
    for option in options:
        text = shlex.join(option)
        if len(lines[-1]) + len(text) + 3 > PAGE_WIDTH:
            lines[-1] += " \\"
            lines.append("    " + text)
        else:
            lines[-1] += " " + text
    return lines


# --------------------------------------------------------------------------
# Main


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed runs per measurement, and Keras repeats (default 5)",
    )

    parser.add_argument(
        "--only",
        help=f"comma-separated parts to measure, from {', '.join(PARTS)} "
        "(default: all)",
    )

    parser.add_argument(
        "--keras-python",
        help="Python interpreter with TensorFlow, Keras and keras-tuner; runs "
        "keras_reference.py with it in this invocation",
    )

    parser.add_argument(
        "--keras-json",
        type=Path,
        help="reuse the JSON of an earlier keras_reference.py run instead of "
        "running it, and note that on the page",
    )

    parser.add_argument(
        "--keras-tuner-repeats",
        type=int,
        default=1,
        help="Keras repeats that also time Keras Tuner (default 1)",
    )

    parser.add_argument(
        "--seqcast",
        help="path of the seqcast command (default: the one next to this Python)",
    )

    parser.add_argument("--out", type=Path, help="markdown page to write")
    parser.add_argument("--json", type=Path, help="JSON file of all runs to write")

    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.keras_python and args.keras_json:
        parser.error("give --keras-python or --keras-json, not both")
    if args.keras_tuner_repeats < 0:
        parser.error(
            "--keras-tuner-repeats must not be negative, "
            f"got {args.keras_tuner_repeats}"
        )

    if args.only:
        selected = [part.strip() for part in args.only.split(",") if part.strip()]
        unknown = [part for part in selected if part not in PARTS]
        if unknown or not selected:
            parser.error(
                f"invalid --only {args.only!r}; choose from {', '.join(PARTS)}"
            )
        args.parts = [part for part in PARTS if part in selected]
    else:
        args.parts = list(PARTS)
    if args.keras_json and not args.keras_json.exists():
        parser.error(f"--keras-json file {args.keras_json} not found")
    return args


def measure_part(name: str, script: Path, repeats: int) -> dict:
    measurements = {
        "run": lambda: measure_run(script, repeats),
        "fit": lambda: measure_fit(repeats),
        "predict": lambda: measure_predict(repeats),
        "sweep": lambda: measure_sweep(repeats),
        "lr-find": lambda: measure_lr_find(script, repeats),
        "tune": lambda: measure_tune(script, repeats),
        "mae": measure_mae,
    }
    load = load_average()
    logger.info("part %s started, load average %s", name, load)
    try:
        result = measurements[name]()
    except PartSkipped as error:
        logger.warning("part %s skipped: %s", name, error)
        return {"skipped": str(error), "load_average_at_start": load}
    except Exception as error:  # noqa: BLE001
        # A part that breaks in seqcast's own code is reported on the page and
        # the other parts still run.
        logger.warning("part %s failed:\n%s", name, traceback.format_exc())
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        return {"skipped": f"it raised {reason}", "load_average_at_start": load}
    result["load_average_at_start"] = load
    result["load_average_at_end"] = load_average()
    return result


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    args = parse_arguments(arguments)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    script = find_seqcast_script(args.seqcast)
    started = datetime.datetime.now(datetime.UTC)
    start = time.perf_counter()
    report: dict = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command_lines": command_lines(arguments),
        "settings": {"repeats": args.repeats, "parts": args.parts},
        "machine": describe_machine(),
        "git": git_state(),
        "load_average_before": load_average(),
        "parts": {},
    }
    if CLI_PARTS.intersection(args.parts):
        logger.info("python -c 'import seqcast.cli'")
        try:
            report["import"] = time_import(args.repeats)
        except PartSkipped as error:
            logger.warning("import time not measured: %s", error)
    for name in args.parts:
        report["parts"][name] = measure_part(name, script, args.repeats)

    keras = None
    if args.keras_python:
        try:
            keras = run_keras(args.keras_python, args.repeats, args.keras_tuner_repeats)
        except PartSkipped as error:
            logger.warning("Keras reference skipped: %s", error)
            report["keras_skipped"] = str(error)
    elif args.keras_json:
        keras = load_keras_file(args.keras_json)
    report["keras"] = keras
    report["load_average_after"] = load_average()
    report["elapsed_s"] = time.perf_counter() - start
    report["checks"] = evaluate_targets(report["parts"], keras)

    for row in report["checks"]:
        logger.info(
            "%s %-28s seqcast %-9s Keras %-9s ratio %-10s %-9s %s",
            row["target"],
            row["check"],
            format_seconds(row["seqcast_s"]),
            format_seconds(row["peer_s"]),
            format_ratio(row["ratio"]),
            row["goal"],
            format_verdict(row["met"], row["goal"]).strip("*"),
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        logger.info("wrote %s", args.json)
    if args.out:
        page = render_page(report, read_notes(args.out))
        args.out.write_text(page, encoding="utf-8")
        logger.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
