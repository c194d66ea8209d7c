import matplotlib.dates as mdates
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from seqcast import plots
from seqcast.errors import SeqcastError


def _assert_png(path):
    assert path.is_file()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3
    assert image.shape[0] > 100
    assert image.shape[1] > 100
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def _dates(count, tz=None):
    return pd.date_range("2022-03-01", periods=count, freq="D", tz=tz)


def test_plot_forecast_writes_png(tmp_path):
    actual = np.sin(np.arange(60) / 5)
    path = plots.plot_forecast(
        tmp_path / "forecast.png",
        _dates(60),
        actual,
        {"dense": actual + 0.1, "naive": np.roll(actual, 1)},
        title="validation",
    )
    assert path == tmp_path / "forecast.png"
    _assert_png(path)


@pytest.mark.parametrize("tz", [None, "America/New_York"])
def test_forecast_date_axis(tz):
    figure = plots._forecast_figure(_dates(40, tz), np.ones(40), {"a": np.ones(40)})
    axes = figure.axes[0]
    assert isinstance(axes.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    assert isinstance(axes.xaxis.get_major_locator(), mdates.AutoDateLocator)
    assert axes.get_xlabel() == "date"
    # Local wall-clock dates, not UTC: the first point is 2022-03-01 00:00.
    first = axes.lines[0].get_xdata()[0]
    assert pd.Timestamp(first) == pd.Timestamp("2022-03-01")


def test_forecast_datetime64_array_axis():
    time = _dates(10).to_numpy()
    figure = plots._forecast_figure(time, np.ones(10), {})
    formatter = figure.axes[0].xaxis.get_major_formatter()
    assert isinstance(formatter, mdates.ConciseDateFormatter)


def test_forecast_numeric_axis():
    figure = plots._forecast_figure(np.arange(30), np.ones(30), {"a": np.zeros(30)})
    axes = figure.axes[0]
    assert not isinstance(
        axes.xaxis.get_major_formatter(),
        mdates.DateFormatter | mdates.ConciseDateFormatter | mdates.AutoDateFormatter,
    )
    assert axes.get_xlabel() == "time step"
    assert [line.get_label() for line in axes.lines] == ["actual", "a"]


@pytest.mark.parametrize(
    ("time", "actual", "forecasts", "message"),
    [
        (np.arange(5), np.ones(5), {"a": np.ones(4)}, "forecast 'a' has 4 values"),
        (np.arange(4), np.ones(5), {}, "time has 4 values"),
        (np.arange(5), np.ones((5, 1)), {}, r"actual has shape \(5, 1\)"),
        (np.arange(5), np.array(["x"] * 5), {}, "actual must contain numbers"),
        (np.array(["a"] * 5), np.ones(5), {}, "time has dtype <U1"),
        (np.arange(0), np.ones(0), {}, "actual is empty"),
    ],
)
def test_forecast_rejects_bad_input(time, actual, forecasts, message):
    with pytest.raises(SeqcastError, match=message):
        plots._forecast_figure(time, actual, forecasts)


def test_rejects_non_png_path(tmp_path):
    with pytest.raises(SeqcastError, match=r"does not end in \.png"):
        plots.plot_history(tmp_path / "history.pdf", {"loss": [1.0, 0.5]})
    assert list(tmp_path.iterdir()) == []


def test_failed_savefig_leaves_no_file(tmp_path, monkeypatch):
    def failing_savefig(self, *args, **kwargs):
        with open(args[0], "wb") as handle:
            handle.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", failing_savefig)
    with pytest.raises(OSError, match="disk full"):
        plots.plot_history(tmp_path / "history.png", {"loss": [1.0, 0.5]})
    assert list(tmp_path.iterdir()) == []


def test_failed_savefig_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "history.png"
    plots.plot_history(path, {"loss": [1.0, 0.5]})
    old = path.read_bytes()

    def failing_savefig(self, *args, **kwargs):
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(Figure, "savefig", failing_savefig)
    with pytest.raises(RuntimeError, match="renderer failed"):
        plots.plot_history(path, {"loss": [3.0, 2.0]})
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["history.png"]


def test_plot_history_writes_png(tmp_path):
    loss = np.exp(-np.arange(30) / 5)[None] * np.array([[1.0], [2.0], [3.0]])
    loss[1, 20:] = np.nan  # model 1 stopped early
    path = plots.plot_history(
        tmp_path / "h.png", {"loss": loss, "val_loss": loss.mean(axis=0)}
    )
    _assert_png(path)


def test_history_stack_draws_models_and_mean():
    loss = np.array([[4.0, 2.0, 1.0], [2.0, 1.0, np.nan]])
    axes = plots._history_figure({"loss": loss}).axes[0]
    assert len(axes.lines) == 3
    mean_line = axes.lines[2]
    assert mean_line.get_label() == "loss (mean of 2 models)"
    # The last epoch's mean covers only the model with a finite loss.
    np.testing.assert_allclose(mean_line.get_ydata(), [3.0, 1.5, 1.0], rtol=0)
    np.testing.assert_array_equal(mean_line.get_xdata(), [1, 2, 3])
    assert mean_line.get_linewidth() > axes.lines[0].get_linewidth()


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ([10.0, 1.0, 0.5], "linear"),  # span 20, under two decades
        ([100.0, 1.0, 0.5], "log"),  # span 200
        ([100.0, 1.0, 0.0], "linear"),  # zero cannot be drawn on a log axis
        ([100.0, np.nan, 0.5], "log"),
    ],
)
def test_history_log_scale_rule(values, scale):
    axes = plots._history_figure({"loss": values}).axes[0]
    assert axes.get_yscale() == scale


def test_history_rejects_bad_input():
    with pytest.raises(SeqcastError, match="history is empty"):
        plots._history_figure({})
    with pytest.raises(SeqcastError, match=r"history\['loss'\] has shape"):
        plots._history_figure({"loss": np.ones((2, 2, 2))})


def test_plot_lr_sweep_writes_png(tmp_path):
    rates = 1e-8 * 10 ** (np.arange(100) / 20)
    losses = 10 / (1 + rates * 1e5)
    losses[-3:] = np.nan
    path = plots.plot_lr_sweep(
        tmp_path / "lr.png", rates, losses, suggestion=1e-5, ylim=(0, 12)
    )
    _assert_png(path)


def test_lr_sweep_axes():
    rates = np.array([1e-5, 1e-4, 1e-3, 1e-2])
    losses = np.array([3.0, 2.0, np.inf, np.nan])
    axes = plots._lr_sweep_figure(
        rates, losses, suggestion=1e-4, xlim=(1e-6, 1e-1), ylim=(0, 5)
    ).axes[0]
    loss_line, suggestion_line = axes.lines
    np.testing.assert_array_equal(loss_line.get_xdata(), [1e-5, 1e-4])
    np.testing.assert_array_equal(loss_line.get_ydata(), [3.0, 2.0])
    assert list(suggestion_line.get_xdata()) == [1e-4, 1e-4]
    assert suggestion_line.get_label() == "suggested learning rate 0.0001"
    assert axes.get_xscale() == "log"
    assert axes.get_xlim() == pytest.approx((1e-6, 1e-1), rel=1e-12)
    assert axes.get_ylim() == pytest.approx((0, 5), abs=1e-12)


def test_lr_sweep_all_losses_non_finite():
    axes = plots._lr_sweep_figure([1e-3, 1e-2], [np.nan, np.inf]).axes[0]
    assert [text.get_text() for text in axes.texts] == ["every loss is NaN or infinite"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rates": [0.0, 1e-3]}, "rates must be finite and positive"),
        ({"losses": [1.0]}, "losses has 1 values but rates has 2"),
        ({"suggestion": -1.0}, "suggestion must be a finite positive"),
        ({"xlim": (0, 1)}, "xlim .* is invalid"),
        ({"ylim": (2, 1)}, "ylim .* is invalid"),
        ({"ylim": 3}, "ylim 3 is invalid"),
    ],
)
def test_lr_sweep_rejects_bad_input(kwargs, message):
    arguments = {"rates": [1e-4, 1e-3], "losses": [1.0, 2.0]} | kwargs
    with pytest.raises(SeqcastError, match=message):
        plots._lr_sweep_figure(**arguments)


def _exact_sweep_data():
    rates = np.logspace(-5, -1, 5)
    train_loss = np.array(
        [[2.0, 2.2], [1.0, 1.1], [0.5, 0.7], [0.4, np.nan], [np.nan, np.nan]]
    )
    val_mae = train_loss * 0.5 + 0.1
    return rates, train_loss, val_mae


def test_plot_exact_sweep_writes_png(tmp_path):
    rates, train_loss, val_mae = _exact_sweep_data()
    path = plots.plot_exact_sweep(
        tmp_path / "exact.png", rates, train_loss, val_mae, best=rates[2]
    )
    _assert_png(path)


def test_exact_sweep_axes():
    rates, train_loss, val_mae = _exact_sweep_data()
    figure = plots._exact_sweep_figure(rates, train_loss, val_mae, best=rates[2])
    loss_axes, mae_axes = figure.axes
    assert loss_axes.get_xscale() == "log"
    assert loss_axes.get_ylabel() == "training loss"
    assert mae_axes.get_ylabel() == "validation MAE"
    # One band per curve for the spread over the two executions.
    assert len(loss_axes.collections) == 1
    assert len(mae_axes.collections) == 1
    mean_line = loss_axes.lines[0]
    np.testing.assert_allclose(
        mean_line.get_ydata()[:4], [2.1, 1.05, 0.6, 0.4], rtol=1e-12
    )
    # By default a rate is marked diverged when any training loss is not finite.
    diverged_line = next(
        line for line in loss_axes.lines if line.get_label() == "diverged"
    )
    np.testing.assert_array_equal(diverged_line.get_xdata(), rates[3:])
    labels = [text.get_text() for text in loss_axes.get_legend().get_texts()]
    assert "diverged" in labels
    assert any(label.startswith("best learning rate") for label in labels)


def test_exact_sweep_explicit_diverged_and_1d():
    rates = np.array([1e-3, 1e-2, 1e-1])
    figure = plots._exact_sweep_figure(
        rates, [1.0, 0.5, 0.4], [0.3, 0.2, 0.9], diverged=[False, False, True]
    )
    loss_axes, mae_axes = figure.axes
    assert len(loss_axes.collections) == 0
    diverged_line = next(
        line for line in loss_axes.lines if line.get_label() == "diverged"
    )
    np.testing.assert_array_equal(diverged_line.get_xdata(), [1e-1])


def test_exact_sweep_no_divergence_no_marks():
    figure = plots._exact_sweep_figure([1e-3, 1e-2], [1.0, 0.5], [0.3, 0.2])
    labels = [line.get_label() for line in figure.axes[0].lines]
    assert "diverged" not in labels


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_mae": [1.0, 2.0]}, "val_mae has 2 values but rates has 3"),
        ({"train_loss": np.ones((3, 2, 1))}, r"train_loss has shape \(3, 2, 1\)"),
        ({"diverged": [1, 0, 0]}, "diverged has dtype int"),
        ({"diverged": np.zeros(2, bool)}, r"shape \(3,\) or \(3, executions\)"),
        ({"best": 0.0}, "best must be a finite positive"),
        ({"rates": [1e-3, -1.0, 1e-1]}, "rates must be finite and positive"),
    ],
)
def test_exact_sweep_rejects_bad_input(kwargs, message):
    arguments = {
        "rates": [1e-3, 1e-2, 1e-1],
        "train_loss": [1.0, 0.5, 0.4],
        "val_mae": [0.3, 0.2, 0.1],
    } | kwargs
    with pytest.raises(SeqcastError, match=message):
        plots._exact_sweep_figure(**arguments)


def _search_data():
    hyperparameters = {
        "learning_rate": [1e-5, 1e-4, 1e-3, 1e-2, 3e-3],
        "units": [8, 16, 32, 16, 8],
        "optimizer": ["sgd", "adam", "sgd", "adamw", "adam"],
        "momentum": [0.9, None, 0.5, None, None],
    }
    scores = [3.0, 2.0, np.nan, 1.0, 2.5]
    return hyperparameters, scores


def test_plot_search_writes_png(tmp_path):
    hyperparameters, scores = _search_data()
    path = plots.plot_search(
        tmp_path / "search.png", hyperparameters, scores, objective="val_mae"
    )
    _assert_png(path)


def test_search_axes():
    hyperparameters, scores = _search_data()
    figure = plots._search_figure(hyperparameters, scores, objective="val_mae")
    visible = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_xlabel() for axes in visible] == list(hyperparameters)
    rate_axes, units_axes, optimizer_axes, momentum_axes = visible
    assert rate_axes.get_xscale() == "log"
    assert units_axes.get_xscale() == "linear"
    assert rate_axes.get_ylabel() == "val_mae"
    tick_labels = [label.get_text() for label in optimizer_axes.get_xticklabels()]
    assert tick_labels == ["sgd", "adam", "adamw"]
    # Trial 2 has a NaN score and is left out. Trials without momentum are too.
    points = optimizer_axes.collections[0].get_offsets()
    np.testing.assert_array_equal(points[:, 0], [0, 1, 2, 1])
    np.testing.assert_array_equal(points[:, 1], [3.0, 2.0, 1.0, 2.5])
    momentum_points = momentum_axes.collections[0].get_offsets()
    np.testing.assert_array_equal(momentum_points, [[0.9, 3.0]])
    # The best trial (score 1.0) is starred wherever it is drawn.
    best = rate_axes.collections[1].get_offsets()
    np.testing.assert_array_equal(best, [[1e-2, 1.0]])
    assert "4 trials" in figure.get_suptitle()


def test_search_booleans_are_categories():
    figure = plots._search_figure({"bias": [True, False, True]}, [1.0, 2.0, 3.0])
    labels = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert labels == ["True", "False"]


def test_search_all_scores_nan():
    figure = plots._search_figure({"units": [8, 16]}, [np.nan, np.nan])
    assert [text.get_text() for text in figure.axes[0].texts] == ["no finite scores"]


def test_search_rejects_bad_input():
    with pytest.raises(SeqcastError, match="hyperparameters is empty"):
        plots._search_figure({}, [1.0])
    with pytest.raises(SeqcastError, match="'units' has 1 values but scores has 2"):
        plots._search_figure({"units": [8]}, [1.0, 2.0])
    with pytest.raises(SeqcastError, match="scores is empty"):
        plots._search_figure({"units": []}, [])
