"""Series: float32 values with an optional time index, and where they come from.

A `Series` is built by `synthetic_series`, read from a CSV file by `load_csv`, or
wrapped around an array by `as_series`. `Series.split` cuts it at the split, the
first time step of the validation data, given as a step index, a fraction or a date.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from seqcast.errors import SeqcastError

__all__ = [
    "Series",
    "as_series",
    "load_csv",
    "parse_split",
    "synthetic_series",
]

# Column names that `load_csv` takes as the time column when none is given.
TIME_COLUMN_NAMES = ("date", "time", "datetime", "timestamp", "year", "month", "week")

# Seasonal periods by the class of a pandas date offset with n == 1.
_SEASON_BY_OFFSET = (
    (pd.offsets.Day, 365),
    (pd.offsets.Week, 52),
    (pd.offsets.MonthEnd, 12),
    (pd.offsets.MonthBegin, 12),
    (pd.offsets.QuarterEnd, 4),
    (pd.offsets.QuarterBegin, 4),
)

# Seasonal periods by the median spacing of the time index, in days (inclusive).
_SEASON_BY_SPACING_DAYS = (
    (1.0, 1.0, 365),
    (7.0, 7.0, 52),
    (28.0, 31.0, 12),
    (89.0, 92.0, 4),
)

_FILL_CHOICES = ("interpolate", "drop")
_MISSING_TEXT = frozenset({"", "nan", "na", "n/a", "null", "none"})
_GROUPED_NUMBER = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


@dataclass(frozen=True, eq=False)
class Series:
    """One univariate series of float32 values in time order.

    Attributes:
        values: the observations, shape (n,), float32, C-contiguous and read-only.
        time: the time of each value, a `pd.DatetimeIndex` or an integer
            `pd.Index` of length n in strictly increasing order, or None when the
            values are only numbered by step.
        name: what the values measure, such as a CSV column name.

    Raises:
        SeqcastError: if the values are not 1-D, are empty or not finite, or if the
            time index has another length, another type or is not increasing.

    Example:
        >>> s = Series(np.array([1.0, 2.0, 3.0]))
        >>> len(s), s.values.dtype
        (3, dtype('float32'))
    """

    values: np.ndarray
    time: pd.Index | None = None
    name: str = "value"

    def __post_init__(self) -> None:
        values = np.ascontiguousarray(self.values, dtype=np.float32).view()
        _check_values(values)
        values.flags.writeable = False
        object.__setattr__(self, "values", values)
        if self.time is not None:
            object.__setattr__(self, "time", _check_time(self.time, len(values)))

    def __len__(self) -> int:
        return len(self.values)

    def split_index(self, at: int | float | str | pd.Timestamp) -> int:
        """Convert a split into the index of the first validation value.

        Args:
            at: the split in one of three forms. An int is the step index where
                validation begins. A float in (0, 1) is the fraction of values
                that go to training, rounded down, so 0.8 of 1461 values gives
                index 1168. A date (str or `pd.Timestamp`) selects the first step
                whose time is at or after it, and needs a `pd.DatetimeIndex`.

        Returns:
            The index i with 0 < i < n: values[:i] train and values[i:] validate.

        Raises:
            SeqcastError: if `at` has another type, or a date is given for a series
                without dates, or the split leaves no training or no validation data.

        Example:
            >>> synthetic_series(length=100).split_index(0.75)
            75
        """
        n = len(self)
        if isinstance(at, bool):
            raise SeqcastError(f"invalid split {at!r}; {_SPLIT_FORMS}")
        if isinstance(at, numbers.Integral):
            index = int(at)
        elif isinstance(at, numbers.Real):
            if not 0.0 < at < 1.0:
                raise SeqcastError(
                    f"invalid split fraction {at!r}; a fraction must lie strictly "
                    "between 0 and 1, such as 0.8"
                )
            index = math.floor(at * n)
        elif isinstance(at, str | pd.Timestamp):
            index = self._date_index(at)
        else:
            raise SeqcastError(f"invalid split {at!r}; {_SPLIT_FORMS}")
        if index <= 0:
            raise SeqcastError(
                f"split {at!r} leaves no training data in a series of {n} values; "
                f"choose a split whose index lies between 1 and {n - 1}"
            )
        if index >= n:
            raise SeqcastError(
                f"split {at!r} leaves no validation data in a series of {n} values; "
                f"choose a split whose index lies between 1 and {n - 1}"
            )
        return index

    def split(self, at: int | float | str | pd.Timestamp) -> tuple[Series, Series]:
        """Cut the series into training and validation parts at a split.

        Args:
            at: the split, in any form that `split_index` accepts.

        Returns:
            (training, validation): views of values[:i] and values[i:] with their
            time indexes, where i = `split_index(at)`.

        Example:
            >>> train, valid = synthetic_series(length=100).split(80)
            >>> len(train), len(valid)
            (80, 20)
        """
        index = self.split_index(at)
        if self.time is None:
            train_time = valid_time = None
        else:
            train_time, valid_time = self.time[:index], self.time[index:]
        return (
            Series(self.values[:index], train_time, self.name),
            Series(self.values[index:], valid_time, self.name),
        )

    def time_axis(self) -> np.ndarray | pd.Index:
        """Return the time index, or the step numbers 0..n-1 when there is none."""
        if self.time is None:
            return np.arange(len(self))
        return self.time

    def infer_season(self) -> int | None:
        """Guess the number of steps in one year from the time index.

        `pd.infer_freq` decides first. When it finds no regular frequency, as in a
        file with missing dates, the median spacing between times decides.

        Returns:
            365 for daily data, 52 for weekly, 12 for monthly, 4 for quarterly, and
            None for yearly data, other spacings or a series without dates.

        Example:
            >>> time = pd.date_range("2000-01-01", periods=24, freq="MS")
            >>> Series(np.zeros(24), time).infer_season()
            12
        """
        if not isinstance(self.time, pd.DatetimeIndex) or len(self.time) < 2:
            return None
        if len(self.time) >= 3:
            with warnings.catch_warnings():
                # pandas 3.1 warns that infer_freq will return an offset object.
                warnings.simplefilter("ignore")
                freq = pd.infer_freq(self.time)
            if freq is not None:
                offset = to_offset(freq)
                if offset.n != 1:
                    return None
                for offset_type, season in _SEASON_BY_OFFSET:
                    if isinstance(offset, offset_type):
                        return season
                return None
        spacing = np.median(np.diff(self.time.asi8)) / _units_per_day(self.time)
        for low, high, season in _SEASON_BY_SPACING_DAYS:
            if low <= spacing <= high:
                return season
        return None

    def _date_index(self, at: str | pd.Timestamp) -> int:
        if not isinstance(self.time, pd.DatetimeIndex):
            raise SeqcastError(
                f"split {at!r} is a date but series {self.name!r} has no dates; "
                "give a step index or a fraction, or load the file with a time column"
            )
        try:
            date = pd.Timestamp(at)
        except (ValueError, TypeError) as error:
            raise SeqcastError(
                f"invalid split date {at!r}; write dates as YYYY-MM-DD"
            ) from error
        if date is pd.NaT:
            raise SeqcastError(f"invalid split date {at!r}; write dates as YYYY-MM-DD")
        if self.time.tz is not None and date.tz is None:
            date = date.tz_localize(self.time.tz)
        return int(self.time.searchsorted(date, side="left"))


_SPLIT_FORMS = (
    "give a step index (1000), a fraction between 0 and 1 (0.8) or a date (1990-01-01)"
)


def _units_per_day(time: pd.DatetimeIndex) -> float:
    return float(pd.Timedelta(days=1) / pd.Timedelta(1, unit=time.unit))


def _check_values(values: np.ndarray) -> None:
    if values.ndim != 1:
        raise SeqcastError(
            f"series values must be 1-D, got shape {values.shape}; pass one column"
        )
    if len(values) == 0:
        raise SeqcastError("series is empty; pass at least one value")
    finite = np.isfinite(values)
    if not finite.all():
        first = int(np.argmin(finite))
        raise SeqcastError(
            f"series value at index {first} is {values[first]}, not a finite number; "
            "fill or drop missing values first"
        )


def _check_time(time: object, length: int) -> pd.Index:
    time = pd.Index(time)
    is_integer = pd.api.types.is_integer_dtype(time.dtype)
    if not (isinstance(time, pd.DatetimeIndex) or is_integer):
        raise SeqcastError(
            f"series time index has dtype {time.dtype}; pass a pd.DatetimeIndex, "
            "an integer index such as years, or None"
        )
    if len(time) != length:
        raise SeqcastError(
            f"series time index has {len(time)} entries for {length} values; "
            "pass one time per value"
        )
    if isinstance(time, pd.DatetimeIndex) and time.hasnans:
        first = int(np.argmax(time.isna()))
        raise SeqcastError(
            f"series time index is missing at index {first}; pass a time per value"
        )
    if not (time.is_monotonic_increasing and time.is_unique):
        first = _first_unordered(time)
        raise SeqcastError(
            f"series time index is not increasing at index {first} "
            f"({time[first - 1]} then {time[first]}); sort the data by time first"
        )
    return time


def _first_unordered(time: pd.Index) -> int:
    values = np.asarray(time.asi8 if isinstance(time, pd.DatetimeIndex) else time)
    return int(np.argmax(np.diff(values) <= 0)) + 1


def synthetic_series(
    *,
    length: int = 1461,
    baseline: float = 10.0,
    slope: float = 0.09,
    amplitude: float = 20.0,
    period: float = 365,
    phase: float = 0,
    noise_level: float = 5.0,
    seed: int = 42,
) -> Series:
    """Generate the textbook series: a linear trend, a yearly pattern and noise.

    At time step t (float32, starting at 0) the value is
    baseline + slope * t + amplitude * pattern(((t + phase) % period) / period)
    plus Gaussian noise with standard deviation `noise_level`. The pattern is
    cos(2 pi s) for s < 0.4 and exp(-3 s) after, so each period has a peak, a drop
    and a slow recovery. The noise comes from `np.random.RandomState(seed)`, so
    the same arguments always give the same values.

    Args:
        length: the number of time steps, at least 1.
        baseline: the value of the trend at t = 0.
        slope: the change of the trend per time step.
        amplitude: the height of the seasonal pattern.
        period: the number of time steps in one season, greater than 0.
        phase: the offset of the seasonal pattern, in time steps.
        noise_level: the standard deviation of the noise, at least 0.
        seed: the seed of the noise.

    Returns:
        A `Series` of shape (length,) without a time index, named "value".

    Raises:
        SeqcastError: if length < 1, period <= 0 or noise_level < 0.

    Example:
        >>> series = synthetic_series()
        >>> f"{series.values[1000]:.6f}"
        '109.170746'
    """
    if isinstance(length, bool) or not isinstance(length, numbers.Integral):
        raise SeqcastError(f"length must be an integer >= 1, got {length!r}")
    if length < 1:
        raise SeqcastError(f"length must be >= 1, got {length}")
    if not period > 0:
        raise SeqcastError(f"period must be > 0, got {period!r}")
    if not noise_level >= 0:
        raise SeqcastError(f"noise_level must be >= 0, got {noise_level!r}")

    time = np.arange(length, dtype=np.float32)
    season_time = ((time + phase) % period) / period
    pattern = np.where(
        season_time < 0.4, np.cos(season_time * 2 * np.pi), 1 / np.exp(3 * season_time)
    )
    trend = slope * time
    seasonality = amplitude * pattern
    noise = np.random.RandomState(seed).randn(len(time)) * noise_level
    return Series((baseline + trend + seasonality + noise).astype(np.float32))


def load_csv(
    path: str | Path,
    column: str | None = None,
    time_column: str | None = None,
    fill: str | None = None,
) -> Series:
    """Read one column of a CSV file as a series.

    The first line contains the column names. Cells may be quoted, and numbers may
    group thousands with commas, so the cell "2,115.88" reads as 2115.88. Error
    messages give line numbers as in the file, with the header as line 1; a
    quoted cell that spans several lines makes later numbers too small.

    The time column may hold ISO dates (1981-01-01, optionally with a time of
    day), dates as YYYYMMDD integers (19580329), or years (1871), which become
    the first day of each year so that plots show dates. Times must increase
    from line to line. Empty cells and the texts NA, NaN, null and none count as
    missing values.

    Args:
        path: the CSV file.
        column: the column of values. None selects the only numeric column other
            than the time column.
        time_column: the column of times. None selects the first column named
            date, time, datetime, timestamp, year, month or week (in any case),
            and no time index when there is no such column.
        fill: what to do with missing values. None raises an error.
            "interpolate" fills each gap linearly between its neighbours by
            position, and copies the nearest value into gaps at either end.
            "drop" removes their lines.

    Returns:
        A `Series` named after the value column.

    Raises:
        SeqcastError: if the file is missing or empty, a column is missing or
            ambiguous, a cell is not a number or not a time, a value is missing
            and `fill` is None, or the times do not increase.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "sales.csv"
        >>> _ = path.write_text('date,sales\\n2020-01-01,"2,115.88"\\n2020-01-02,7\\n')
        >>> series = load_csv(path)
        >>> series.name, float(series.values[0]), str(series.time[0].date())
        ('sales', 2115.8798828125, '2020-01-01')
    """
    if fill is not None and fill not in _FILL_CHOICES:
        raise SeqcastError(f"invalid fill {fill!r}; use 'interpolate', 'drop' or None")
    path = Path(path)
    table = _read_table(path)
    time_column = _find_time_column(table, time_column, path)
    column = _find_value_column(table, column, time_column, path)

    cells = table[column].to_numpy(dtype=object)
    values = np.array(
        [
            _parse_number(text, line, column, path)
            for line, text in zip(_lines(cells), cells, strict=True)
        ]
    )
    time = None
    if time_column is not None:
        time = _parse_times(
            table[time_column].to_numpy(dtype=object), time_column, path
        )

    missing = np.isnan(values)
    if missing.any():
        values, time = _fill_missing(values, time, missing, fill, column, path)
    return Series(values, time, str(column))


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise SeqcastError(f"file not found: {path}; check the path")
    try:
        # Reading every cell as text lets errors quote the cell and its line.
        table = pd.read_csv(
            path, dtype=str, keep_default_na=False, skip_blank_lines=False
        )
    except pd.errors.EmptyDataError as error:
        raise SeqcastError(
            f"file {path} is empty; it needs a header line and one line per time step"
        ) from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        reason = " ".join(str(error).split())
        raise SeqcastError(
            f"cannot read {path} as CSV ({reason}); give every line the same "
            "number of comma-separated cells"
        ) from error
    # Blank lines at the end of a file are not data.
    non_blank = np.flatnonzero((table != "").any(axis=1).to_numpy())
    if len(non_blank) == 0:
        raise SeqcastError(
            f"file {path} has a header but no data lines; add one line per time step"
        )
    return table.iloc[: non_blank[-1] + 1]


def _lines(cells: np.ndarray) -> range:
    # Line 1 is the header, so the first data line is line 2.
    return range(2, len(cells) + 2)


def _find_time_column(table: pd.DataFrame, time_column: str | None, path: Path):
    if time_column is not None:
        _require_column(table, time_column, path)
        return time_column
    for name in table.columns:
        if str(name).strip().lower() in TIME_COLUMN_NAMES:
            return name
    return None


def _find_value_column(
    table: pd.DataFrame, column: str | None, time_column: str | None, path: Path
):
    if column is not None:
        _require_column(table, column, path)
        return column
    candidates = [name for name in table.columns if name != time_column]
    numeric = [name for name in candidates if _is_numeric(table[name])]
    if len(numeric) == 1:
        return numeric[0]
    listed = ", ".join(repr(str(name)) for name in table.columns)
    if not numeric:
        raise SeqcastError(
            f"{path} has no numeric column besides the time column; its columns "
            f"are {listed}; choose one with --column"
        )
    several = ", ".join(repr(str(name)) for name in numeric)
    raise SeqcastError(
        f"{path} has several numeric columns ({several}); choose one with "
        f"--column (all columns: {listed})"
    )


def _require_column(table: pd.DataFrame, name: str, path: Path) -> None:
    if name not in table.columns:
        listed = ", ".join(repr(str(column)) for column in table.columns)
        raise SeqcastError(
            f"column {name!r} not found in {path}; its columns are {listed}"
        )


def _is_numeric(cells: pd.Series) -> bool:
    for text in cells:
        try:
            _number_or_nan(text)
        except ValueError:
            return False
    return True


def _number_or_nan(text: str) -> float:
    text = text.strip()
    if text.lower() in _MISSING_TEXT:
        return math.nan
    if _GROUPED_NUMBER.match(text):
        text = text.replace(",", "")
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def _parse_number(text: str, line: int, column: str, path: Path) -> float:
    try:
        return _number_or_nan(text)
    except ValueError:
        raise SeqcastError(
            f"{path} line {line} (header is line 1): column {str(column)!r} contains "
            f"{text!r}, which is not a number; correct or remove that line"
        ) from None


def _parse_times(cells: np.ndarray, column: str, path: Path) -> pd.DatetimeIndex:
    texts = [str(text).strip() for text in cells]
    for line, text in zip(_lines(cells), texts, strict=True):
        if text.lower() in _MISSING_TEXT:
            raise SeqcastError(
                f"{path} line {line} (header is line 1): the time column "
                f"{str(column)!r} is empty; give every line a time"
            )
    if all(re.fullmatch(r"\d{8}", text) for text in texts):
        parsed = pd.to_datetime(pd.Series(texts), format="%Y%m%d", errors="coerce")
        form = "YYYYMMDD"
    elif all(re.fullmatch(r"\d{1,4}", text) for text in texts):
        years = np.array([int(text) for text in texts]) - 1970
        parsed = pd.Series(years.astype("datetime64[Y]").astype("datetime64[s]"))
        form = "a year"
    else:
        parsed = pd.to_datetime(pd.Series(texts), format="ISO8601", errors="coerce")
        form = "an ISO date such as 1981-01-01"
    unparsed = parsed.isna().to_numpy()
    if unparsed.any():
        first = int(np.argmax(unparsed))
        raise SeqcastError(
            f"{path} line {first + 2} (header is line 1): cannot read "
            f"{texts[first]!r} in column {str(column)!r} as a time; write it as {form}"
        )
    time = pd.DatetimeIndex(parsed)
    if not (time.is_monotonic_increasing and time.is_unique):
        first = _first_unordered(time)
        raise SeqcastError(
            f"{path} line {first + 2} (header is line 1): time {texts[first]!r} does "
            f"not come after {texts[first - 1]!r} on the line before; sort the file "
            "by time and remove repeated times"
        )
    return time


def _fill_missing(
    values: np.ndarray,
    time: pd.DatetimeIndex | None,
    missing: np.ndarray,
    fill: str | None,
    column: str,
    path: Path,
) -> tuple[np.ndarray, pd.DatetimeIndex | None]:
    first_line = int(np.argmax(missing)) + 2
    if fill is None:
        raise SeqcastError(
            f"{path} line {first_line} (header is line 1): column {str(column)!r} "
            f"has no value ({int(missing.sum())} values are missing in all); "
            "use --fill interpolate or --fill drop (fill= in Python)"
        )
    if missing.all():
        raise SeqcastError(
            f"{path}: column {str(column)!r} has no values at all; choose another "
            "column with --column"
        )
    if fill == "drop":
        present = ~missing
        if time is not None:
            time = time[present]
        return values[present], time
    positions = np.arange(len(values))
    filled = values.copy()
    # np.interp copies the nearest known value into gaps at either end.
    filled[missing] = np.interp(
        positions[missing], positions[~missing], values[~missing]
    )
    return filled, time


def as_series(data: object, name: str | None = None) -> Series:
    """Wrap array-like data as a `Series`.

    Args:
        data: a `Series`, a `pd.Series`, or a list or array of shape (n,) or
            (n, 1). A `Series` is returned as is unless `name` renames it. The
            index of a `pd.Series` becomes the time index if it is a
            `pd.DatetimeIndex`.
        name: the name of the result. None keeps the name of a `Series` or a
            `pd.Series` and uses "value" otherwise.

    Returns:
        A `Series` with float32 values of shape (n,).

    Raises:
        SeqcastError: if the data is not numeric, has another shape, is empty,
            or contains NaN or infinite values.

    Example:
        >>> as_series([1, 2, 3]).values
        array([1., 2., 3.], dtype=float32)
    """
    if isinstance(data, Series):
        return data if name is None else replace(data, name=name)
    time = None
    if isinstance(data, pd.Series):
        if name is None and isinstance(data.name, str):
            name = data.name
        if isinstance(data.index, pd.DatetimeIndex):
            time = data.index
        data = data.to_numpy()
    array = np.asarray(data)
    if array.dtype.kind not in "iufO":
        raise SeqcastError(
            f"cannot read data of dtype {array.dtype} as numbers; pass integers "
            "or floats"
        )
    if array.dtype.kind == "O":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise SeqcastError(
                f"cannot read the data as numbers ({error}); pass integers or floats"
            ) from None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise SeqcastError(
            f"series data must have shape (n,) or (n, 1), got shape {array.shape}; "
            "pass one column"
        )
    return Series(array, time, "value" if name is None else name)


def parse_split(text: str) -> int | float | str:
    """Parse a split given on the command line.

    Args:
        text: a step index ("1000"), a fraction between 0 and 1 ("0.8") or a
            date ("1990-01-01").

    Returns:
        An int, a float or the date text, ready for `Series.split`.

    Raises:
        SeqcastError: if the text has none of the three forms.

    Example:
        >>> parse_split("1000"), parse_split("0.8"), parse_split("1990-01-01")
        (1000, 0.8, '1990-01-01')
    """
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    if re.fullmatch(r"\d*\.\d+", text):
        fraction = float(text)
        if 0.0 < fraction < 1.0:
            return fraction
        raise SeqcastError(
            f"invalid split {text!r}; a fraction must lie strictly between 0 and 1"
        )
    if re.fullmatch(r"\d{4}-\d{2}(-\d{2})?([T ][\d:.]+)?", text):
        try:
            pd.Timestamp(text)
        except ValueError:
            pass
        else:
            return text
    raise SeqcastError(f"invalid split {text!r}; {_SPLIT_FORMS}")
