"""Tests for seqcast.windows: tf.data window semantics, shuffling and batching.

The window cases follow `tf.data.Dataset.window(size, shift, stride,
drop_remainder)` as documented for TensorFlow's WindowDataset operation
(https://www.tensorflow.org/api_docs/python/tf/raw_ops/WindowDataset).
"""

import tracemalloc

import numpy as np
import pytest

from seqcast.data import synthetic_series
from seqcast.errors import SeqcastError
from seqcast.windows import (
    WindowedDataset,
    batch_slices,
    label_window_starts,
    shuffle_order,
    sliding_windows,
    split_features_label,
    window_starts,
    windowed_dataset,
    windows,
)

SEEDS = range(5)


def as_lists(window_list):
    return [window.tolist() for window in window_list]


# --- windows: tf.data semantics ---------------------------------------------------


def test_windows_drop_remainder_full_only():
    result = windows(np.arange(10), 5, shift=1, drop_remainder=True)
    assert len(result) == 6
    assert result[0].tolist() == [0, 1, 2, 3, 4]
    assert result[-1].tolist() == [5, 6, 7, 8, 9]


@pytest.mark.parametrize(
    ("size", "shift", "stride", "drop_remainder", "expected"),
    [
        (2, 2, 1, False, [[0, 1], [2, 3], [4, 5], [6]]),
        (3, 2, 1, True, [[0, 1, 2], [2, 3, 4], [4, 5, 6]]),
        (3, 1, 2, True, [[0, 2, 4], [1, 3, 5], [2, 4, 6]]),
    ],
)
def test_windows_tensorflow_documented_cases(
    size, shift, stride, drop_remainder, expected
):
    # The examples of range(7) given in TensorFlow's WindowDataset documentation.
    result = windows(np.arange(7), size, shift, stride, drop_remainder)
    assert as_lists(result) == expected


def test_windows_keep_short_tail():
    result = windows(np.arange(3), 5, shift=1)
    assert as_lists(result) == [[0, 1, 2], [1, 2], [2]]


def test_windows_short_series_drop_remainder_empty():
    assert windows(np.arange(3), 5, shift=1, drop_remainder=True) == []


def test_windows_without_drop_start_at_every_shift():
    result = windows(np.arange(10), 5, shift=1)
    assert len(result) == 10
    assert result[6].tolist() == [6, 7, 8, 9]
    assert result[9].tolist() == [9]


def test_windows_shift_and_stride():
    # tf.data: range(7).window(3, shift=2, stride=2) gives
    # [0 2 4], [2 4 6], [4 6], [6].
    result = windows(np.arange(7), 3, shift=2, stride=2)
    assert as_lists(result) == [[0, 2, 4], [2, 4, 6], [4, 6], [6]]


def test_windows_shift_larger_than_size():
    result = windows(np.arange(10), 2, shift=4)
    assert as_lists(result) == [[0, 1], [4, 5], [8, 9]]


def test_windows_are_views():
    values = np.arange(10.0)
    for window in windows(values, 4):
        assert np.shares_memory(window, values)


def test_windows_rejects_zero_size():
    with pytest.raises(SeqcastError, match="size must be >= 1, got 0"):
        windows(np.arange(5), 0)


def test_windows_rejects_zero_shift():
    with pytest.raises(SeqcastError, match="shift must be >= 1, got 0"):
        windows(np.arange(5), 2, shift=0)


# --- window_starts and sliding_windows --------------------------------------------


def test_window_starts_with_stride():
    # A window of 3 values with stride 2 covers 5 consecutive values.
    assert window_starts(10, 3, stride=2).tolist() == [0, 1, 2, 3, 4, 5]


def test_window_starts_too_short():
    assert window_starts(3, 5).tolist() == []


def test_sliding_windows_match_dropped_remainder():
    values = np.arange(20)
    for size, shift, stride in [(5, 1, 1), (3, 2, 2), (4, 3, 1), (1, 1, 1)]:
        expected = as_lists(windows(values, size, shift, stride, drop_remainder=True))
        result = sliding_windows(values, size, shift, stride).tolist()
        assert result == expected, (size, shift, stride)


def test_sliding_windows_shape():
    assert sliding_windows(np.arange(10), 4).shape == (7, 4)


def test_sliding_windows_read_only():
    view = sliding_windows(np.arange(10.0), 4)
    assert not view.flags.writeable


def test_sliding_windows_short_series_empty():
    view = sliding_windows(np.arange(3.0), 5)
    assert view.shape == (0, 5)


def test_sliding_windows_rejects_2d():
    with pytest.raises(SeqcastError, match=r"1-D array, got shape \(2, 2\)"):
        sliding_windows(np.zeros((2, 2)), 1)


def test_sliding_windows_large_series_no_copy():
    values = np.zeros(10_000_000, dtype=np.float32)
    materialised_bytes = (len(values) - 20) * 21 * 4  # about 840 MB
    tracemalloc.start()
    try:
        view = sliding_windows(values, 21)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert view.shape == (10_000_000 - 20, 21)
    assert np.shares_memory(view, values)
    assert peak < 1_000_000, f"peak {peak} bytes while windowing"
    assert peak < materialised_bytes / 100


# --- split_features_label ---------------------------------------------------------


def test_split_features_label_count():
    features, labels = split_features_label(sliding_windows(np.arange(10), 4))
    assert features.shape == (7, 3)
    assert labels.shape == (7,)


def test_split_features_label_last_pair():
    features, labels = split_features_label(sliding_windows(np.arange(10), 4))
    assert features[-1].tolist() == [6, 7, 8]
    assert labels[-1] == 9


def test_split_features_label_first_pair():
    features, labels = split_features_label(sliding_windows(np.arange(10), 4))
    assert features[0].tolist() == [0, 1, 2]
    assert labels[0] == 3


def test_split_features_label_rejects_single_value():
    with pytest.raises(SeqcastError, match="at least 2 values"):
        split_features_label(np.zeros((3, 1)))


# --- label_window_starts ----------------------------------------------------------


def test_label_window_starts_training():
    # window_size 3 over 10 values with split 7: labels 3..6.
    starts = label_window_starts(3, 3, 7)
    assert starts.tolist() == [0, 1, 2, 3]
    assert starts.dtype == np.int64


def test_label_window_starts_validation():
    assert label_window_starts(3, 7, 10).tolist() == [4, 5, 6]


def test_label_window_starts_with_stride():
    # Labels sit at s + 3 * 2; labels 6..9 give starts 0..3.
    assert label_window_starts(3, 0, 10, stride=2).tolist() == [0, 1, 2, 3]


def test_label_window_starts_labels_match_positions():
    values = np.arange(50)
    for stride in (1, 3):
        starts = label_window_starts(4, 20, 50, stride=stride)
        labels = values[starts + 4 * stride]
        assert labels.tolist() == list(range(20, 50)), stride


def test_label_window_starts_empty_range():
    assert label_window_starts(5, 0, 5).tolist() == []


# --- shuffle_order ----------------------------------------------------------------


def test_shuffle_buffer_one_keeps_order():
    order = shuffle_order(100, 1, np.random.default_rng(0))
    assert order.tolist() == list(range(100))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("buffer_size", [2, 10, 99, 100, 1000])
def test_shuffle_order_is_permutation(seed, buffer_size):
    order = shuffle_order(100, buffer_size, np.random.default_rng(seed))
    assert sorted(order.tolist()) == list(range(100)), f"seed {seed}"
    assert order.dtype == np.int64


@pytest.mark.parametrize("seed", SEEDS)
def test_shuffle_small_buffer_limits_reach(seed):
    # With a buffer of b, item i leaves no earlier than position i - b + 1,
    # because the buffer contains only b items when it emits.
    buffer_size = 5
    order = shuffle_order(200, buffer_size, np.random.default_rng(seed))
    positions = np.argsort(order)
    items = np.arange(200)
    assert np.all(positions >= items - buffer_size + 1), f"seed {seed}"


def test_shuffle_full_buffer_is_uniform():
    # Over 20,000 full shuffles of 4 items, each item leads about 1/4 of the time:
    # a binomial count with standard deviation about 61, checked at 5 deviations.
    rng = np.random.default_rng(1)
    firsts = [shuffle_order(4, 4, rng)[0] for _ in range(20_000)]
    counts = np.bincount(firsts, minlength=4)
    assert np.all(np.abs(counts - 5_000) < 310), counts


def test_shuffle_partial_buffer_first_item_uniform():
    # The first emission draws uniformly from the initial buffer of 3 items, so
    # each count is binomial with standard deviation about 82 (5 deviations: 410).
    rng = np.random.default_rng(2)
    firsts = [shuffle_order(10, 3, rng)[0] for _ in range(30_000)]
    counts = np.bincount(firsts, minlength=10)
    assert np.all(np.abs(counts[:3] - 10_000) < 410), counts
    assert counts[3:].sum() == 0


def test_shuffle_same_seed_same_order():
    first = shuffle_order(500, 50, np.random.default_rng(3))
    second = shuffle_order(500, 50, np.random.default_rng(3))
    assert np.array_equal(first, second)


def test_shuffle_rejects_zero_buffer():
    with pytest.raises(SeqcastError, match="buffer_size must be >= 1, got 0"):
        shuffle_order(10, 0, np.random.default_rng(0))


def test_shuffle_empty():
    assert shuffle_order(0, 10, np.random.default_rng(0)).tolist() == []


# --- batch_slices -----------------------------------------------------------------


def test_batch_slices_keeps_partial_batch():
    batches = batch_slices(980, 32)
    assert len(batches) == 31
    assert batches[-1] == slice(960, 980)


def test_batch_slices_single_small_batch():
    assert batch_slices(7, 32) == [slice(0, 7)]


def test_batch_slices_rejects_zero_batch():
    with pytest.raises(SeqcastError, match="batch_size must be >= 1, got 0"):
        batch_slices(10, 0)


# --- windowed_dataset -------------------------------------------------------------


def test_windowed_dataset_reference_counts():
    dataset = windowed_dataset(np.arange(1000.0), 20, batch_size=32, seed=0)
    assert dataset.num_windows == 980
    assert len(dataset) == 31


def test_windowed_dataset_batch_sizes():
    dataset = windowed_dataset(np.arange(1000.0), 20, batch_size=32, seed=0)
    sizes = [len(labels) for _, labels in dataset]
    assert sizes == [32] * 30 + [20]


def test_windowed_dataset_seven_windows_one_batch():
    dataset = windowed_dataset(np.arange(10.0), 3, batch_size=32, seed=0)
    batches = list(dataset)
    assert len(batches) == 1
    assert batches[0][0].shape == (7, 3)
    assert batches[0][1].shape == (7,)


def test_windowed_dataset_batch_dtypes():
    dataset = windowed_dataset(np.arange(100.0), 5, seed=0)
    features, labels = next(iter(dataset))
    assert features.dtype == np.float32
    assert labels.dtype == np.float32


def test_windowed_dataset_labels_follow_features():
    # On 0..n-1 each label is the last feature plus one.
    dataset = windowed_dataset(np.arange(200.0), 10, batch_size=16, seed=0)
    for features, labels in dataset:
        assert np.array_equal(labels, features[:, -1] + 1)
        assert np.array_equal(
            features[:, 1:] - features[:, :-1], np.ones((len(labels), 9))
        )


def test_windowed_dataset_stride_spacing():
    dataset = windowed_dataset(np.arange(50.0), 4, batch_size=64, stride=3, seed=0)
    features, labels = next(iter(dataset))
    assert dataset.num_windows == 50 - 12
    assert np.array_equal(np.diff(features, axis=1), np.full((38, 3), 3.0))
    assert np.array_equal(labels, features[:, -1] + 3)


def test_windowed_dataset_buffer_one_in_order():
    dataset = windowed_dataset(np.arange(100.0), 5, batch_size=10, shuffle_buffer=1)
    labels = np.concatenate([labels for _, labels in dataset])
    assert labels.tolist() == list(range(5, 100))


def test_windowed_dataset_covers_every_window():
    dataset = windowed_dataset(np.arange(300.0), 10, batch_size=32, seed=4)
    labels = np.concatenate([labels for _, labels in dataset])
    assert sorted(labels.tolist()) == list(range(10, 300))


def test_windowed_dataset_reshuffles_each_epoch():
    dataset = windowed_dataset(np.arange(300.0), 10, seed=5)
    first = np.concatenate([labels for _, labels in dataset])
    second = np.concatenate([labels for _, labels in dataset])
    assert not np.array_equal(first, second)


def test_windowed_dataset_same_seed_same_epochs():
    first = windowed_dataset(np.arange(300.0), 10, seed=6)
    second = windowed_dataset(np.arange(300.0), 10, seed=6)
    for epoch in range(3):
        labels_first = np.concatenate([labels for _, labels in first])
        labels_second = np.concatenate([labels for _, labels in second])
        assert np.array_equal(labels_first, labels_second), f"epoch {epoch}"


def test_epoch_orders_shape_and_content():
    dataset = windowed_dataset(np.arange(300.0), 10, shuffle_buffer=50, seed=7)
    orders = dataset.epoch_orders(4)
    assert orders.shape == (4, 290)
    assert orders.dtype == np.int64
    for epoch in range(4):
        assert sorted(orders[epoch].tolist()) == list(range(290)), f"epoch {epoch}"


def test_epoch_orders_match_iteration():
    dataset = windowed_dataset(np.arange(300.0), 10, batch_size=32, seed=8)
    orders = dataset.epoch_orders(2)
    for epoch in range(2):
        labels = np.concatenate([labels for _, labels in dataset])
        assert np.array_equal(labels, orders[epoch] + 10.0), f"epoch {epoch}"


def test_epoch_orders_seed_argument():
    dataset = windowed_dataset(np.arange(300.0), 10, seed=9)
    assert np.array_equal(
        dataset.epoch_orders(2, seed=1), dataset.epoch_orders(2, seed=1)
    )
    assert not np.array_equal(dataset.epoch_orders(2, seed=1), dataset.epoch_orders(2))


def test_windowed_dataset_accepts_series():
    dataset = windowed_dataset(synthetic_series(), 20, seed=0)
    assert isinstance(dataset, WindowedDataset)
    assert dataset.num_windows == 1461 - 20
    assert dataset.values.dtype == np.float32


def test_windowed_dataset_does_not_copy_float32():
    values = np.arange(100, dtype=np.float32)
    dataset = windowed_dataset(values, 5)
    assert np.shares_memory(dataset.values, values)


def test_windowed_dataset_attributes():
    dataset = windowed_dataset(np.arange(100.0), 5, 8, 16, stride=2, seed=3)
    assert dataset.window_size == 5
    assert dataset.batch_size == 8
    assert dataset.shuffle_buffer == 16
    assert dataset.stride == 2
    assert dataset.seed == 3
    assert dataset.starts.tolist() == list(range(90))


def test_windowed_dataset_short_series_message():
    with pytest.raises(SeqcastError) as error:
        windowed_dataset(np.arange(15.0), 20)
    message = str(error.value)
    assert "series has 15 values" in message
    assert "window_size 20 needs at least 21" in message
    assert "--window-size" in message


def test_windowed_dataset_exact_minimum_length():
    dataset = windowed_dataset(np.arange(21.0), 20)
    assert dataset.num_windows == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window_size": 0}, "window_size must be >= 1, got 0"),
        ({"window_size": 5, "batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"window_size": 5, "shuffle_buffer": 0}, "shuffle_buffer must be >= 1, got 0"),
        ({"window_size": 2.5}, "window_size must be an integer >= 1, got 2.5"),
    ],
)
def test_windowed_dataset_rejects_invalid_arguments(kwargs, match):
    with pytest.raises(SeqcastError, match=match):
        windowed_dataset(np.arange(100.0), **kwargs)
