"""Time the Keras textbook forecasting workflow that seqcast replaces.

The workflow trains a 20-10-10-1 dense network on windows of a synthetic daily
series with tf.data, Keras and Keras Tuner, and forecasts one step ahead from
every window. This script times each stage and records the validation MAE, so
seqcast's numbers can be read beside Keras's on the same machine.

Run it with the TensorFlow environment, not the seqcast one:

    python benchmarks/keras_reference.py --repeats 5 --json keras-reference.json

Each repeat runs in a fresh Python process with the Keras seed set to the repeat
index (0, 1, ...), so the first ``fit`` of every repeat pays graph tracing and
first-call costs. The Keras Tuner stage runs only in the first ``--tuner-repeats``
repeats (default 1) because it is the slowest stage.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# TensorFlow reads this when it is imported, so it is set before any import of
# tensorflow or keras (those imports happen only inside the worker functions).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

logger = logging.getLogger("keras_reference")

SERIES_LENGTH = 1461
SPLIT_TIME = 1000
WINDOW_SIZE = 20
BATCH_SIZE = 32
SHUFFLE_BUFFER = 1000
EPOCHS = 100
LEARNING_RATE = 1e-6
MOMENTUM = 0.9
# 1,461 values give 1,441 input windows of 20 values: series[t - 20:t] for
# t = 20..1460, each forecasting series[t].
FORECAST_WINDOWS = SERIES_LENGTH - WINDOW_SIZE

TUNER_MAX_TRIALS = 44
TUNER_EXECUTIONS_PER_TRIAL = 3
TUNER_LEARNING_RATE = 1e-5
TUNER_UNITS = (10, 30, 2)
TUNER_MOMENTUMS = [0.9, 0.7, 0.5, 0.3]
BATCHED_PREDICT_CALLS = 5


def make_series():
    """Return the synthetic daily series: trend, yearly pattern and noise."""
    import numpy as np

    time_steps = np.arange(SERIES_LENGTH)
    season_time = (time_steps % 365) / 365
    pattern = np.where(
        season_time < 0.4,
        np.cos(season_time * 2 * np.pi),
        1 / np.exp(3 * season_time),
    )
    noise = np.random.RandomState(42).randn(SERIES_LENGTH) * 5
    series = 10 + 0.09 * time_steps + 20 * pattern + noise
    return series.astype(np.float32)


def batch_window(window):
    return window.batch(WINDOW_SIZE + 1)


def split_features_label(window):
    return window[:-1], window[-1]


def make_training_dataset(train_values):
    """Build the textbook tf.data pipeline: 980 shuffled windows in 31 batches.

    Named functions replace the usual lambdas because AutoGraph cannot parse
    two lambdas written on one line and warns about it.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(train_values)
    dataset = dataset.window(WINDOW_SIZE + 1, shift=1, drop_remainder=True)
    dataset = dataset.flat_map(batch_window)
    dataset = dataset.shuffle(SHUFFLE_BUFFER)
    dataset = dataset.map(split_features_label)
    return dataset.batch(BATCH_SIZE).prefetch(1)


def make_forecast_windows(series):
    """Return the 1,441 input windows series[t - 20:t] for t = 20..1460."""
    import numpy as np

    windows = np.lib.stride_tricks.sliding_window_view(series, WINDOW_SIZE)
    # The last view ends at the last value and has no target, so it is dropped.
    return np.ascontiguousarray(windows[:-1])


def build_model(first_units=10, momentum=MOMENTUM, learning_rate=LEARNING_RATE):
    import keras

    model = keras.Sequential(
        [
            keras.Input((WINDOW_SIZE,)),
            keras.layers.Dense(first_units, activation="relu"),
            keras.layers.Dense(10, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    model.compile(loss="mse", optimizer=optimizer)
    return model


def reset_model(model, initial_weights, learning_rate):
    """Restore the initial weights and zero the optimizer's step and momentum.

    The model keeps its traced train function, so the next ``fit`` measures
    training without graph tracing.
    """
    import numpy as np

    model.set_weights(initial_weights)
    optimizer = model.optimizer
    for variable in optimizer.variables:
        if variable.path.endswith("learning_rate"):
            continue
        variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
    optimizer.learning_rate = learning_rate


def time_call(function, *args, **kwargs):
    """Run function once and return (seconds elapsed, its return value)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def measure_predictions(model, windows, single_calls):
    """Time batched and one-window predict calls on an already traced model."""
    import numpy as np

    batched_times = []
    for _ in range(BATCHED_PREDICT_CALLS):
        seconds, _ = time_call(model.predict, windows, verbose=0)
        batched_times.append(seconds)

    single_times = []
    for index in range(single_calls):
        window = windows[index : index + 1]
        seconds, _ = time_call(model.predict, window, verbose=0)
        single_times.append(seconds)

    return {
        "predict_batched_1441_windows": statistics.median(batched_times),
        "predict_single_window": statistics.median(single_times),
        "predict_loop_1441_windows_estimate": (
            float(np.sum(single_times)) * FORECAST_WINDOWS / single_calls
        ),
    }


def validation_mae(model, windows, series):
    """Return the MAE of the one-step forecasts for steps 1000..1460."""
    import numpy as np

    forecasts = model.predict(windows, verbose=0)[:, 0]
    # Window i ends just before step i + 20, so step 1000 is window 980.
    validation_forecasts = forecasts[SPLIT_TIME - WINDOW_SIZE :]
    errors = validation_forecasts - series[SPLIT_TIME:]
    return float(np.mean(np.abs(errors)))


def measure_tuner(dataset, trials, seed):
    """Time a short Keras Tuner random search over the textbook search space.

    The search space and settings match the textbook search except max_trials,
    which is ``trials`` in place of 44 to keep the run short.
    """
    import keras_tuner

    fit_times = []

    class TimedHyperModel(keras_tuner.HyperModel):
        def build(self, hp):
            units = hp.Int("units", *TUNER_UNITS[:2], step=TUNER_UNITS[2])
            momentum = hp.Choice("momentum", TUNER_MOMENTUMS)
            return build_model(
                first_units=units,
                momentum=momentum,
                learning_rate=TUNER_LEARNING_RATE,
            )

        def fit(self, hp, model, *args, **kwargs):
            seconds, history = time_call(model.fit, *args, **kwargs)
            fit_times.append(seconds)
            return history

    with tempfile.TemporaryDirectory(prefix="keras-tuner-") as directory:
        tuner = keras_tuner.RandomSearch(
            TimedHyperModel(),
            objective="loss",
            max_trials=trials,
            executions_per_trial=TUNER_EXECUTIONS_PER_TRIAL,
            seed=seed,
            directory=directory,
            project_name="keras_reference",
            overwrite=True,
        )
        search_seconds, _ = time_call(tuner.search, dataset, epochs=EPOCHS, verbose=0)
        completed = [
            trial
            for trial in tuner.oracle.trials.values()
            if trial.status == "COMPLETED"
        ]

    executions = trials * TUNER_EXECUTIONS_PER_TRIAL
    if len(completed) != trials or len(fit_times) != executions:
        raise RuntimeError(
            f"Keras Tuner completed {len(completed)} of {trials} trials and "
            f"{len(fit_times)} of {executions} executions, so its timing is "
            "invalid. The trial errors are in the stderr printed above."
        )
    return {
        "search_seconds": search_seconds,
        "executions": executions,
        "fit_seconds": fit_times,
    }


def run_worker(seed, single_calls, tuner_trials, output_path):
    """Run one repeat of every measurement and write the results as JSON."""
    import warnings

    import keras
    import tensorflow as tf

    # Keras 3.15 warns that fit's default shuffle=True is ignored for a
    # tf.data.Dataset, and that the input "ran out of data" when a dataset of
    # unknown cardinality ends an epoch. Every epoch still runs all 31 batches.
    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed")
    warnings.filterwarnings("ignore", message=r"Your input ran out of data")

    keras.utils.set_random_seed(seed)
    series = make_series()
    windows = make_forecast_windows(series)
    dataset = make_training_dataset(series[:SPLIT_TIME])
    results = {}

    first_model = build_model()
    results["fit_first_in_process"], _ = time_call(
        first_model.fit, dataset, epochs=EPOCHS, verbose=0
    )
    # The first predict call traces the predict function, so timing starts after it.
    mae = validation_mae(first_model, windows, series)
    results.update(measure_predictions(first_model, windows, single_calls))

    second_model = build_model()
    initial_weights = second_model.get_weights()
    results["fit_new_model_warm_process"], _ = time_call(
        second_model.fit, dataset, epochs=EPOCHS, verbose=0
    )
    reset_model(second_model, initial_weights, LEARNING_RATE)
    results["fit_compiled"], _ = time_call(
        second_model.fit, dataset, epochs=EPOCHS, verbose=0
    )

    # Tracing shows up in the first epoch, so one epoch of a new model minus
    # one epoch of the same model again isolates it from the 100-epoch noise.
    third_model = build_model()
    first_epoch_seconds, _ = time_call(third_model.fit, dataset, epochs=1, verbose=0)
    next_epoch_seconds, _ = time_call(third_model.fit, dataset, epochs=1, verbose=0)
    results["train_function_tracing_estimate"] = (
        first_epoch_seconds - next_epoch_seconds
    )

    reset_model(second_model, initial_weights, LEARNING_RATE)
    scheduler = keras.callbacks.LearningRateScheduler(
        lambda epoch: 1e-8 * 10 ** (epoch / 20)
    )
    results["lr_sweep_compiled"], _ = time_call(
        second_model.fit, dataset, epochs=EPOCHS, verbose=0, callbacks=[scheduler]
    )

    tuner = measure_tuner(dataset, tuner_trials, seed) if tuner_trials else None

    report = {
        "seed": seed,
        "val_mae": mae,
        "seconds": results,
        "tuner": tuner,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }
    Path(output_path).write_text(json.dumps(report))


def run_repeat(seed, args, with_tuner, directory):
    output_path = Path(directory) / f"repeat-{seed}.json"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker-seed",
        str(seed),
        "--worker-output",
        str(output_path),
        "--single-calls",
        str(args.single_calls),
        "--tuner-trials",
        str(args.tuner_trials if with_tuner else 0),
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr)
        raise RuntimeError(
            f"repeat with seed {seed} failed with exit code "
            f"{completed.returncode}. Its stderr is printed above."
        )
    return json.loads(output_path.read_text())


def read_cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe_machine():
    return {
        "platform": platform.platform(),
        "cpu": read_cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }


NOTES = {
    "fit_first_in_process": (
        "model.fit for 100 epochs of 31 batches, as the first fit in a fresh "
        "process. It includes graph tracing and first-call costs, but not the "
        "TensorFlow import or building the dataset."
    ),
    "fit_new_model_warm_process": (
        "model.fit for 100 epochs of a second, newly built model in the same "
        "process. Keras 3 traces a new train function for each model, so this is "
        "the cost per model when models are trained one after another."
    ),
    "fit_compiled": (
        "model.fit for 100 epochs of that second model again, after restoring "
        "its initial weights and zeroing the optimizer state, so without tracing."
    ),
    "predict_batched_1441_windows": (
        "One model.predict call on all 1,441 windows after a warm-up call. Each "
        f"run is the median of {BATCHED_PREDICT_CALLS} calls."
    ),
    "predict_single_window": (
        "One model.predict call on one window after warm-up. Each run is the "
        "median of --single-calls calls on consecutive windows."
    ),
    "predict_loop_1441_windows_estimate": (
        "Estimate of the step-by-step loop of 1,441 model.predict calls: the "
        "summed time of --single-calls calls scaled by 1441 / --single-calls."
    ),
    "lr_sweep_compiled": (
        "The textbook learning-rate sweep: 100 epochs with "
        "LearningRateScheduler(1e-8 * 10 ** (epoch / 20)) and SGD momentum 0.9. "
        "It runs on an already traced model after a reset, so a new model would "
        "add train_function_tracing_estimate."
    ),
    "train_function_tracing_estimate": (
        "A one-epoch fit of a new model in a warm process minus a second "
        "one-epoch fit of the same model. This is the tracing cost that every "
        "newly built model pays once."
    ),
    "tuner_execution": (
        "Keras Tuner RandomSearch wall time divided by its executions "
        "(--tuner-trials trials x 3 executions of 100 epochs each). It includes "
        "model building, tracing and the tuner's checkpoints, and "
        "fit_only_runs_s lists the model.fit time of each execution."
    ),
    "tuner_search_44_trials_estimate": (
        "Estimate of the textbook search (max_trials=44, executions_per_trial=3) "
        "as tuner_execution x 132 executions, not a measured run."
    ),
}


def describe_runs(name, runs):
    return {"median_s": statistics.median(runs), "runs_s": runs, "note": NOTES[name]}


def summarize(reports, args, machine):
    measurements = {}
    for name in reports[0]["seconds"]:
        runs = [report["seconds"][name] for report in reports]
        measurements[name] = describe_runs(name, runs)

    tuner_reports = [report["tuner"] for report in reports if report["tuner"]]
    if tuner_reports:
        per_execution = [
            tuner["search_seconds"] / tuner["executions"] for tuner in tuner_reports
        ]
        fit_seconds = [s for tuner in tuner_reports for s in tuner["fit_seconds"]]
        tuner_execution = describe_runs("tuner_execution", per_execution)
        tuner_execution["fit_only_median_s"] = statistics.median(fit_seconds)
        tuner_execution["fit_only_runs_s"] = fit_seconds
        tuner_execution["repeats"] = len(tuner_reports)
        measurements["tuner_execution"] = tuner_execution

        executions = TUNER_MAX_TRIALS * TUNER_EXECUTIONS_PER_TRIAL
        search_estimates = [seconds * executions for seconds in per_execution]
        measurements["tuner_search_44_trials_estimate"] = describe_runs(
            "tuner_search_44_trials_estimate", search_estimates
        )

    machine["load_average_at_end"] = list(os.getloadavg())
    machine["intra_op_threads"] = reports[0]["intra_op_threads"]
    machine["inter_op_threads"] = reports[0]["inter_op_threads"]
    return {
        "machine": machine,
        "tensorflow": reports[0]["tensorflow"],
        "keras": reports[0]["keras"],
        "settings": {
            "repeats": args.repeats,
            "seeds": [report["seed"] for report in reports],
            "single_calls": args.single_calls,
            "tuner_trials": args.tuner_trials,
            "tuner_repeats": len(tuner_reports),
            "epochs": EPOCHS,
            "windows_per_epoch": SPLIT_TIME - WINDOW_SIZE,
            "batch_size": BATCH_SIZE,
        },
        "measurements": measurements,
        "val_mae": [report["val_mae"] for report in reports],
    }


def print_summary(summary):
    machine = summary["machine"]
    print(
        f"Keras reference: TensorFlow {summary['tensorflow']}, "
        f"Keras {summary['keras']}, {machine['logical_cpus']} logical CPUs "
        f"({machine['cpu']})"
    )
    start_load = ", ".join(f"{load:.2f}" for load in machine["load_average_at_start"])
    end_load = ", ".join(f"{load:.2f}" for load in machine["load_average_at_end"])
    print(f"load average (1, 5, 15 min): {start_load} at start, {end_load} at end")
    print(f"{'measurement':<36} {'median s':>10}  runs s")
    for name, measurement in summary["measurements"].items():
        runs = " ".join(f"{seconds:.4g}" for seconds in measurement["runs_s"])
        print(f"{name:<36} {measurement['median_s']:>10.4g}  {runs}")
    maes = summary["val_mae"]
    mae_list = " ".join(f"{mae:.3f}" for mae in maes)
    print(
        f"validation MAE, steps 1000..1460: median {statistics.median(maes):.3f} "
        f"(seeds {summary['settings']['seeds']}: {mae_list})"
    )


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="number of repeats, each in a fresh process with seed 0, 1, ...",
    )
    parser.add_argument(
        "--json", type=Path, help="path of the JSON results file (default: none)"
    )
    parser.add_argument(
        "--single-calls",
        type=int,
        default=50,
        help="one-window predict calls timed per repeat (default 50)",
    )
    parser.add_argument(
        "--tuner-trials",
        type=int,
        default=3,
        help="Keras Tuner trials per timed search, 3 executions each (default 3)",
    )
    parser.add_argument(
        "--tuner-repeats",
        type=int,
        default=1,
        help="repeats that also time the tuner, 0 to skip it (default 1)",
    )
    # The script runs itself with these options for each repeat.
    parser.add_argument("--worker-seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.single_calls < 1 or args.single_calls > FORECAST_WINDOWS:
        parser.error(
            f"--single-calls must be between 1 and {FORECAST_WINDOWS}, "
            f"got {args.single_calls}"
        )
    if args.tuner_trials < 0 or args.tuner_repeats < 0:
        parser.error("--tuner-trials and --tuner-repeats must not be negative")
    if args.tuner_trials > TUNER_MAX_TRIALS:
        parser.error(
            f"--tuner-trials must be at most {TUNER_MAX_TRIALS}, "
            f"got {args.tuner_trials}"
        )
    return args


def main(argv=None):
    args = parse_arguments(argv)
    if args.worker_seed is not None:
        run_worker(
            args.worker_seed, args.single_calls, args.tuner_trials, args.worker_output
        )
        return

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    machine = describe_machine()
    tuner_repeats = min(args.tuner_repeats, args.repeats) if args.tuner_trials else 0
    # keras-tuner 1.4.8 imports tensorboard in every trial under the TensorFlow
    # backend, and tensorflow-cpu 2.21 does not install it.
    if tuner_repeats and importlib.util.find_spec("tensorboard") is None:
        sys.exit(
            "error: keras-tuner needs the tensorboard package, which is missing. "
            "Install it in this environment or pass --tuner-repeats 0."
        )
    reports = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="keras-reference-") as directory:
        for seed in range(args.repeats):
            with_tuner = seed < tuner_repeats
            logger.info(
                "repeat %d of %d (seed %d%s) started",
                seed + 1,
                args.repeats,
                seed,
                ", with Keras Tuner" if with_tuner else "",
            )
            reports.append(run_repeat(seed, args, with_tuner, directory))
            logger.info(
                "repeat %d finished, %.0f s elapsed",
                seed + 1,
                time.perf_counter() - start,
            )

    summary = summarize(reports, args, machine)
    summary["total_wall_s"] = time.perf_counter() - start
    print_summary(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
