"""Windows over a series, with the semantics of `tf.data`, in NumPy.

A window of `window_size` features starting at index s contains
values[s + k * stride] for k < window_size, and its label is the next value,
values[s + window_size * stride]. `windows` and `sliding_windows` cut windows the
way `tf.data.Dataset.window` does. `shuffle_order` follows the shuffle buffer of
`tf.data.Dataset.shuffle`. `windowed_dataset` combines them into shuffled batches
of (features, label) pairs, one epoch per iteration.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator

import numpy as np

from seqcast.data import Series, as_series
from seqcast.errors import SeqcastError

__all__ = [
    "WindowedDataset",
    "batch_slices",
    "label_window_starts",
    "shuffle_order",
    "sliding_windows",
    "split_features_label",
    "window_starts",
    "windowed_dataset",
    "windows",
]


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SeqcastError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise SeqcastError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _window_span(size: int, stride: int) -> int:
    """Return how many consecutive values a window of `size` values covers."""
    return (size - 1) * stride + 1


def windows(
    values: np.ndarray,
    size: int,
    shift: int = 1,
    stride: int = 1,
    drop_remainder: bool = False,
) -> list[np.ndarray]:
    """Cut windows as `tf.data.Dataset.window(size, shift, stride, drop_remainder)`.

    Windows start at 0, shift, 2 * shift, ... for every start below n, and each
    takes up to `size` values spaced `stride` apart. Windows at the end that run
    out of values are shorter than `size`, and `drop_remainder` drops them.
    Unlike `tf.data`, whose `shift` defaults to `size`, `shift` defaults to 1.

    Args:
        values: array of shape (n, ...), windowed along the first axis.
        size: the number of values in a full window, at least 1.
        shift: how far each window starts after the one before, at least 1.
        stride: the step between values inside a window, at least 1.
        drop_remainder: whether to drop the windows shorter than `size`.

    Returns:
        The windows, each a view of `values` of shape (m, ...) with m <= size.

    Raises:
        SeqcastError: if size, shift or stride is below 1 or `values` is 0-D.

    Example:
        >>> [w.tolist() for w in windows(np.arange(3), 5)]
        [[0, 1, 2], [1, 2], [2]]
    """
    size = _check_int("size", size, 1)
    shift = _check_int("shift", shift, 1)
    stride = _check_int("stride", stride, 1)
    values = np.asarray(values)
    if values.ndim == 0:
        raise SeqcastError("values must have at least one axis, got a scalar")
    span = _window_span(size, stride)
    result = []
    for start in range(0, len(values), shift):
        window = values[start : start + span : stride]
        if drop_remainder and len(window) < size:
            break
        result.append(window)
    return result


def window_starts(
    length: int, size: int, *, shift: int = 1, stride: int = 1
) -> np.ndarray:
    """Return the start indices of the full windows in a series.

    Args:
        length: the number of values in the series, at least 0.
        size: the number of values in a window, at least 1.
        shift: how far each window starts after the one before, at least 1.
        stride: the step between values inside a window, at least 1.

    Returns:
        int64 array of the starts s with s + (size - 1) * stride < length, in
        steps of `shift`.

    Example:
        >>> window_starts(10, 4, shift=2).tolist()
        [0, 2, 4, 6]
    """
    length = _check_int("length", length, 0)
    size = _check_int("size", size, 1)
    shift = _check_int("shift", shift, 1)
    stride = _check_int("stride", stride, 1)
    last = length - _window_span(size, stride)
    return np.arange(0, max(last + 1, 0), shift, dtype=np.int64)


def sliding_windows(
    values: np.ndarray, size: int, shift: int = 1, stride: int = 1
) -> np.ndarray:
    """Return every full window of a 1-D array as rows of a read-only view.

    The result shares memory with `values`, so windowing a long series costs no
    copy: row i is values[i * shift + k * stride] for k < size.

    Args:
        values: array of shape (n,).
        size: the number of values in a window, at least 1.
        shift: how far each window starts after the one before, at least 1.
        stride: the step between values inside a window, at least 1.

    Returns:
        A read-only view of shape (num_windows, size), with num_windows = 0 when
        the series is shorter than one window.

    Raises:
        SeqcastError: if `values` is not 1-D or size, shift or stride is below 1.

    Example:
        >>> sliding_windows(np.arange(6), 3, shift=2).tolist()
        [[0, 1, 2], [2, 3, 4]]
    """
    size = _check_int("size", size, 1)
    shift = _check_int("shift", shift, 1)
    stride = _check_int("stride", stride, 1)
    values = np.asarray(values)
    if values.ndim != 1:
        raise SeqcastError(
            f"sliding_windows needs a 1-D array, got shape {values.shape}"
        )
    span = _window_span(size, stride)
    if len(values) < span:
        step = values.strides[0]
        return np.lib.stride_tricks.as_strided(
            values,
            shape=(0, size),
            strides=(step * shift, step * stride),
            writeable=False,
        )
    view = np.lib.stride_tricks.sliding_window_view(values, span)
    return view[::shift, ::stride]


def split_features_label(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split windows into features, all values but the last, and the last as label.

    Args:
        windows: array of shape (..., size + 1) with size >= 1.

    Returns:
        (features, labels): views of shape (..., size) and (...,).

    Raises:
        SeqcastError: if the last axis has fewer than 2 values.

    Example:
        >>> features, labels = split_features_label(sliding_windows(np.arange(10), 4))
        >>> features[-1].tolist(), int(labels[-1])
        ([6, 7, 8], 9)
    """
    windows = np.asarray(windows)
    if windows.ndim == 0 or windows.shape[-1] < 2:
        raise SeqcastError(
            f"windows of shape {windows.shape} cannot be split; each window needs "
            "at least 2 values, the features and the label"
        )
    return windows[..., :-1], windows[..., -1]


def label_window_starts(
    window_size: int, label_from: int, label_to: int, stride: int = 1
) -> np.ndarray:
    """Return the starts of the windows whose labels lie in [label_from, label_to).

    The window starting at s has its label at s + window_size * stride. Training
    windows are those with labels in [window_size * stride, split); validation
    windows those with labels in [split, n).

    Args:
        window_size: the number of feature values in a window, at least 1.
        label_from: the first label index, inclusive, at least 0.
        label_to: the last label index, exclusive, at least `label_from`.
        stride: the step between values inside a window, at least 1.

    Returns:
        int64 array of the starts s >= 0, in increasing order.

    Example:
        >>> label_window_starts(3, 5, 8).tolist()
        [2, 3, 4]
    """
    window_size = _check_int("window_size", window_size, 1)
    stride = _check_int("stride", stride, 1)
    label_from = _check_int("label_from", label_from, 0)
    label_to = _check_int("label_to", label_to, label_from)
    offset = window_size * stride
    first = max(label_from - offset, 0)
    return np.arange(first, max(label_to - offset, first), dtype=np.int64)


def shuffle_order(n: int, buffer_size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the order in which `tf.data`'s shuffle buffer emits n items.

    The buffer starts with the first `buffer_size` items. Each step emits the item
    in a uniformly drawn slot and, while input remains, refills that slot with the
    next item. Once the input is exhausted the buffer drains in random order. A
    buffer of 1 keeps the input order, and a buffer of at least n gives a uniform
    random permutation. The random numbers come from `rng`, not from TensorFlow, so
    the orders follow the same distribution as `tf.data` but are not the same.

    Args:
        n: the number of items, at least 0.
        buffer_size: the capacity of the buffer in items, at least 1.
        rng: the source of randomness.

    Returns:
        int64 array of shape (n,), a permutation of range(n).

    Example:
        >>> shuffle_order(5, 1, np.random.default_rng(0)).tolist()
        [0, 1, 2, 3, 4]
    """
    n = _check_int("n", n, 0)
    buffer_size = _check_int("buffer_size", buffer_size, 1)
    if buffer_size == 1:
        return np.arange(n, dtype=np.int64)
    if buffer_size >= n:
        return rng.permutation(n).astype(np.int64)

    # One draw per emitted item: the buffer stays full while input remains, then
    # shrinks by one per step.
    buffer_counts = np.concatenate(
        [np.full(n - buffer_size, buffer_size), np.arange(buffer_size, 0, -1)]
    )
    slots = rng.integers(0, buffer_counts).tolist()
    buffer = list(range(buffer_size))
    order = np.empty(n, dtype=np.int64)
    for step, slot in enumerate(slots):
        order[step] = buffer[slot]
        next_item = buffer_size + step
        if next_item < n:
            buffer[slot] = next_item
        else:
            buffer[slot] = buffer[-1]
            buffer.pop()
    return order


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Cut range(n) into consecutive batches, keeping a last partial batch.

    Example:
        >>> batch_slices(5, 2)
        [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    n = _check_int("n", n, 0)
    batch_size = _check_int("batch_size", batch_size, 1)
    return [
        slice(start, min(start + batch_size, n)) for start in range(0, n, batch_size)
    ]


class WindowedDataset:
    """Shuffled batches of (features, label) windows over one series.

    Iterating yields one epoch of batches. Each iteration draws a new shuffle
    order, like `tf.data`'s `reshuffle_each_iteration`, from a generator seeded
    with `seed` when the dataset is built, so datasets built with the same seed
    yield the same sequence of epochs.

    Attributes:
        values: the series, float32 of shape (n,), not copied.
        window_size: the number of feature values in a window.
        batch_size: the number of windows in a full batch.
        shuffle_buffer: the size of the shuffle buffer.
        stride: the step between values inside a window.
        starts: int64 start indices of the windows, shape (num_windows,).
        seed: the seed of the shuffle orders, or None for fresh randomness.
    """

    def __init__(
        self,
        values: np.ndarray,
        window_size: int,
        batch_size: int,
        shuffle_buffer: int,
        stride: int,
        starts: np.ndarray,
        seed: int | None,
    ) -> None:
        self.values = values
        self.window_size = window_size
        self.batch_size = batch_size
        self.shuffle_buffer = shuffle_buffer
        self.stride = stride
        self.starts = starts
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    @property
    def num_windows(self) -> int:
        """The number of (features, label) windows in one epoch."""
        return len(self.starts)

    def __len__(self) -> int:
        return math.ceil(self.num_windows / self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = self.starts[
            shuffle_order(self.num_windows, self.shuffle_buffer, self._rng)
        ]
        offsets = np.arange(self.window_size) * self.stride
        label_offset = self.window_size * self.stride
        for batch in batch_slices(self.num_windows, self.batch_size):
            batch_starts = order[batch]
            features = self.values[batch_starts[:, None] + offsets]
            labels = self.values[batch_starts + label_offset]
            yield features, labels

    def epoch_orders(self, epochs: int, seed: int | None = None) -> np.ndarray:
        """Draw the order in which each epoch visits the windows.

        With the same seed, the orders equal those of the first `epochs`
        iterations of a new dataset.

        Args:
            epochs: the number of epochs, at least 1.
            seed: the seed of the orders. None uses the dataset's seed.

        Returns:
            int64 array of shape (epochs, num_windows) of window starts.
        """
        epochs = _check_int("epochs", epochs, 1)
        rng = np.random.default_rng(self.seed if seed is None else seed)
        orders = np.empty((epochs, self.num_windows), dtype=np.int64)
        for epoch in range(epochs):
            orders[epoch] = self.starts[
                shuffle_order(self.num_windows, self.shuffle_buffer, rng)
            ]
        return orders


def windowed_dataset(
    series: np.ndarray | Series,
    window_size: int,
    batch_size: int = 32,
    shuffle_buffer: int = 1000,
    *,
    stride: int = 1,
    seed: int | None = None,
) -> WindowedDataset:
    """Build shuffled training batches of windows and their next value.

    Each window contains `window_size` feature values spaced `stride` apart and the
    label that follows them. Windows start at every index (shift 1) and every
    window is complete, so a series of n values gives
    n - window_size * stride windows.

    Args:
        series: the values, a `Series` or an array of shape (n,).
        window_size: the number of feature values in a window, at least 1.
        batch_size: the number of windows in a full batch, at least 1.
        shuffle_buffer: the size of the shuffle buffer, at least 1; 1 keeps the
            windows in time order.
        stride: the step between values inside a window, at least 1.
        seed: the seed of the shuffle orders, or None for fresh randomness.

    Returns:
        A `WindowedDataset` whose iteration yields batches of features, float32 of
        shape (b, window_size), and labels, float32 of shape (b,).

    Raises:
        SeqcastError: if an argument is below its minimum or the series is too
            short for one window.

    Example:
        >>> dataset = windowed_dataset(np.arange(1000.0), 20, seed=0)
        >>> dataset.num_windows, len(dataset)
        (980, 31)
    """
    window_size = _check_int("window_size", window_size, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    shuffle_buffer = _check_int("shuffle_buffer", shuffle_buffer, 1)
    stride = _check_int("stride", stride, 1)
    values = as_series(series).values
    needed = window_size * stride + 1
    if len(values) < needed:
        with_stride = "" if stride == 1 else f" with stride {stride}"
        raise SeqcastError(
            f"series has {len(values)} values but window_size {window_size}"
            f"{with_stride} needs at least {needed}; use a smaller --window-size "
            "or a longer series"
        )
    starts = label_window_starts(window_size, window_size * stride, len(values), stride)
    return WindowedDataset(
        values, window_size, batch_size, shuffle_buffer, stride, starts, seed
    )
