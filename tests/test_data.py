"""Tests for seqcast.data: Series, the synthetic series, CSV loading and splits."""

import numpy as np
import pandas as pd
import pytest

from seqcast.data import Series, as_series, load_csv, parse_split, synthetic_series
from seqcast.errors import SeqcastError


def write_csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- synthetic_series -------------------------------------------------------------

# Reference values: the textbook series (baseline 10, slope 0.09, amplitude 20,
# period 365, noise 5, seed 42) printed as float32.


def test_synthetic_value_at_1000():
    values = synthetic_series().values
    assert f"{values[1000]:.6f}" == "109.170746"
    assert str(values[1000]) == "109.170746"
    assert np.isclose(values[1000], np.float32(109.170746), rtol=0, atol=1e-4)


def test_synthetic_value_at_1020():
    values = synthetic_series().values
    assert f"{values[1020]:.6f}" == "106.258606"
    assert str(values[1020]) == "106.258606"
    assert np.isclose(values[1020], np.float32(106.258606), rtol=0, atol=1e-4)


def test_synthetic_shape_and_dtype():
    series = synthetic_series()
    assert series.values.shape == (1461,)
    assert series.values.dtype == np.float32
    assert series.values.flags.c_contiguous
    assert series.time is None


def test_synthetic_without_noise_follows_formula():
    series = synthetic_series(length=10, noise_level=0.0, period=4)
    t = np.arange(10, dtype=np.float32)
    s = (t % 4) / 4
    pattern = np.where(s < 0.4, np.cos(2 * np.pi * s), np.exp(-3 * s))
    expected = 10.0 + 0.09 * t + 20.0 * pattern
    np.testing.assert_allclose(series.values, expected, rtol=0, atol=1e-5)


def test_synthetic_same_seed_same_values():
    first = synthetic_series(seed=7).values
    second = synthetic_series(seed=7).values
    assert np.array_equal(first, second)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"length": 0}, "length must be >= 1, got 0"),
        ({"length": 2.5}, "length must be an integer"),
        ({"period": 0}, "period must be > 0, got 0"),
        ({"noise_level": -1.0}, "noise_level must be >= 0, got -1.0"),
    ],
)
def test_synthetic_rejects_invalid_parameters(kwargs, match):
    with pytest.raises(SeqcastError, match=match):
        synthetic_series(**kwargs)


# --- Series -----------------------------------------------------------------------


def test_series_casts_to_float32():
    series = Series(np.arange(5, dtype=np.float64))
    assert series.values.dtype == np.float32
    assert len(series) == 5


def test_series_values_are_read_only():
    series = Series(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="read-only"):
        series.values[0] = 1.0


def test_series_does_not_lock_caller_array():
    data = np.zeros(3, dtype=np.float32)
    Series(data)
    assert data.flags.writeable


def test_series_rejects_time_of_other_length():
    with pytest.raises(SeqcastError, match="time index has 2 entries for 3 values"):
        Series(np.zeros(3), pd.RangeIndex(2))


def test_series_rejects_unordered_time():
    time = pd.DatetimeIndex(["2020-01-02", "2020-01-01", "2020-01-03"])
    with pytest.raises(SeqcastError, match="not increasing at index 1"):
        Series(np.zeros(3), time)


def test_series_rejects_nan():
    with pytest.raises(SeqcastError, match="index 2 is nan"):
        Series(np.array([1.0, 2.0, np.nan]))


def test_series_accepts_integer_time():
    series = Series(np.zeros(3), pd.Index([1990, 1991, 1992]))
    assert list(series.time) == [1990, 1991, 1992]


def test_time_axis_without_time_is_steps():
    axis = Series(np.zeros(4)).time_axis()
    assert np.array_equal(axis, np.arange(4))


def test_time_axis_returns_time_index():
    time = pd.date_range("2000-01-01", periods=4, freq="D")
    axis = Series(np.zeros(4), time).time_axis()
    assert axis.equals(time)


# --- split_index and split --------------------------------------------------------


def test_split_index_from_int():
    assert synthetic_series().split_index(1000) == 1000


def test_split_index_fraction_rounds_down():
    # 0.8 * 1461 = 1168.8
    assert synthetic_series().split_index(0.8) == 1168


def test_split_index_from_date_string():
    time = pd.date_range("2000-01-01", periods=10, freq="D")
    series = Series(np.arange(10.0), time)
    assert series.split_index("2000-01-04") == 3


def test_split_index_date_between_steps():
    time = pd.date_range("2000-01-01", periods=10, freq="7D")
    series = Series(np.arange(10.0), time)
    # The first time at or after 2000-01-10 is 2000-01-15, step 2.
    assert series.split_index(pd.Timestamp("2000-01-10")) == 2


def test_split_index_date_needs_dates():
    with pytest.raises(SeqcastError, match="is a date but series 'value' has no dates"):
        synthetic_series(length=10).split_index("2000-01-01")


def test_split_index_rejects_no_validation_data():
    with pytest.raises(
        SeqcastError, match="split 1461 leaves no validation data in a series of 1461"
    ):
        synthetic_series().split_index(1461)


def test_split_index_rejects_no_training_data():
    with pytest.raises(
        SeqcastError, match="split 0 leaves no training data in a series of 1461"
    ):
        synthetic_series().split_index(0)


def test_split_index_rejects_date_after_end():
    time = pd.date_range("2000-01-01", periods=10, freq="D")
    series = Series(np.arange(10.0), time)
    with pytest.raises(SeqcastError, match="leaves no validation data"):
        series.split_index("2001-01-01")


def test_split_index_rejects_fraction_of_one():
    with pytest.raises(SeqcastError, match="fraction 1.0"):
        synthetic_series().split_index(1.0)


def test_split_index_rejects_tiny_fraction():
    # floor(0.0001 * 100) = 0 leaves nothing to train on.
    with pytest.raises(SeqcastError, match="no training data in a series of 100"):
        synthetic_series(length=100).split_index(0.0001)


def test_split_parts_and_time():
    time = pd.date_range("2000-01-01", periods=10, freq="D")
    train, valid = Series(np.arange(10.0), time, "sales").split(6)
    assert np.array_equal(train.values, np.arange(6.0))
    assert np.array_equal(valid.values, np.arange(6.0, 10.0))
    assert train.time.equals(time[:6])
    assert valid.time.equals(time[6:])
    assert valid.name == "sales"


# --- infer_season -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("freq", "season"),
    [("D", 365), ("W-SUN", 52), ("MS", 12), ("ME", 12), ("QS", 4), ("YS", None)],
)
def test_infer_season_regular(freq, season):
    time = pd.date_range("2000-01-01", periods=30, freq=freq)
    assert Series(np.zeros(30), time).infer_season() == season


def test_infer_season_daily_with_gaps():
    time = pd.date_range("2000-01-01", periods=30, freq="D").delete([5, 17])
    assert Series(np.zeros(28), time).infer_season() == 365


def test_infer_season_without_dates():
    assert synthetic_series(length=10).infer_season() is None


# --- load_csv ---------------------------------------------------------------------


def test_load_csv_quoted_thousands(tmp_path):
    path = write_csv(tmp_path, 'date,sales\n2020-01-01,"2,115.88"\n2020-01-02,7\n')
    series = load_csv(path)
    assert series.values[0] == np.float32(2115.88)
    assert series.time[0] == pd.Timestamp("2020-01-01")
    assert series.name == "sales"


def test_load_csv_quoted_dates(tmp_path):
    path = write_csv(tmp_path, '"Date","Temp"\n"1981-01-01",20.7\n"1981-01-02",17.9\n')
    series = load_csv(path)
    assert list(series.time) == [pd.Timestamp("1981-01-01"), pd.Timestamp("1981-01-02")]
    assert series.values[1] == np.float32(17.9)


def test_load_csv_yyyymmdd(tmp_path):
    path = write_csv(tmp_path, "date,co2\n19580329,316.1\n19580405,317.3\n")
    series = load_csv(path)
    assert series.time[0] == pd.Timestamp("1958-03-29")
    assert series.time[1] == pd.Timestamp("1958-04-05")


def test_load_csv_years_become_year_starts(tmp_path):
    path = write_csv(tmp_path, "year,volume\n1871,1120\n1872,1160\n")
    series = load_csv(path)
    assert isinstance(series.time, pd.DatetimeIndex)
    assert series.time[0] == pd.Timestamp("1871-01-01")


def test_load_csv_without_time_column(tmp_path):
    path = write_csv(tmp_path, "volume\n1\n2\n3\n")
    series = load_csv(path)
    assert series.time is None
    assert np.array_equal(series.values, [1.0, 2.0, 3.0])


def test_load_csv_explicit_columns(tmp_path):
    path = write_csv(
        tmp_path, "Step,When,Mean\n0,1749-01-31,96.7\n1,1749-02-28,104.3\n"
    )
    series = load_csv(path, column="Mean", time_column="When")
    assert series.name == "Mean"
    assert series.time[1] == pd.Timestamp("1749-02-28")


def test_load_csv_missing_file(tmp_path):
    path = tmp_path / "absent.csv"
    with pytest.raises(SeqcastError, match="file not found: .*absent.csv"):
        load_csv(path)


def test_load_csv_empty_file(tmp_path):
    path = write_csv(tmp_path, "")
    with pytest.raises(SeqcastError, match="is empty"):
        load_csv(path)


def test_load_csv_header_only(tmp_path):
    path = write_csv(tmp_path, "date,value\n")
    with pytest.raises(SeqcastError, match="has a header but no data lines"):
        load_csv(path)


def test_load_csv_missing_column_lists_columns(tmp_path):
    path = write_csv(tmp_path, "year,volume\n1871,1120\n")
    with pytest.raises(
        SeqcastError, match="column 'flow' not found .* columns are 'year', 'volume'"
    ):
        load_csv(path, column="flow")


def test_load_csv_several_numeric_columns(tmp_path):
    path = write_csv(tmp_path, "Step,Date,Mean\n0,1749-01-31,96.7\n1,1749-02-28,1\n")
    with pytest.raises(
        SeqcastError, match=r"several numeric columns \('Step', 'Mean'\)"
    ):
        load_csv(path)


def test_load_csv_non_numeric_cell_names_line(tmp_path):
    lines = ["date,value"] + [f"2020-01-0{day},{day}" for day in range(1, 6)]
    lines.append("2020-01-06,abc")
    path = write_csv(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(SeqcastError, match=r"line 7 \(header is line 1\)") as error:
        load_csv(path, column="value")
    assert "'abc'" in str(error.value)
    assert "\n" not in str(error.value)


def test_load_csv_missing_value_offers_fill(tmp_path):
    path = write_csv(tmp_path, "date,value\n2020-01-01,1\n2020-01-02,\n2020-01-03,3\n")
    with pytest.raises(SeqcastError, match="line 3 .*has no value") as error:
        load_csv(path)
    assert "--fill interpolate" in str(error.value)
    assert "--fill drop" in str(error.value)


def test_load_csv_fill_interpolate(tmp_path):
    text = "date,value\n2020-01-01,\n2020-01-02,2\n2020-01-03,\n2020-01-04,6\n"
    text += "2020-01-05,\n"
    series = load_csv(write_csv(tmp_path, text), fill="interpolate")
    # Leading and trailing gaps copy the nearest value, and the inner gap is linear.
    assert np.array_equal(series.values, [2.0, 2.0, 4.0, 6.0, 6.0])
    assert len(series.time) == 5


def test_load_csv_fill_drop(tmp_path):
    text = "date,value\n2020-01-01,1\n2020-01-02,\n2020-01-03,3\n"
    series = load_csv(write_csv(tmp_path, text), fill="drop")
    assert np.array_equal(series.values, [1.0, 3.0])
    assert list(series.time) == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-03")]


def test_load_csv_rejects_unknown_fill(tmp_path):
    path = write_csv(tmp_path, "value\n1\n")
    with pytest.raises(SeqcastError, match="invalid fill 'mean'"):
        load_csv(path, fill="mean")


def test_load_csv_unparseable_time(tmp_path):
    text = "date,value\n2020-01-01,1\n2020-13-45,2\n"
    with pytest.raises(SeqcastError, match="line 3 .*'2020-13-45'.* as a time"):
        load_csv(write_csv(tmp_path, text))


def test_load_csv_unsorted_times(tmp_path):
    text = "date,value\n2020-01-02,1\n2020-01-03,2\n2020-01-01,3\n"
    with pytest.raises(SeqcastError, match="line 4 .*'2020-01-01' does not come after"):
        load_csv(write_csv(tmp_path, text))


def test_load_csv_empty_time_cell(tmp_path):
    text = "date,value\n2020-01-01,1\n,2\n"
    with pytest.raises(SeqcastError, match="line 3 .*time column 'date' is empty"):
        load_csv(write_csv(tmp_path, text))


# --- real files -------------------------------------------------------------------


def test_real_co2_needs_fill(shared_data):
    with pytest.raises(SeqcastError, match="59 values are missing"):
        load_csv(shared_data / "co2_weekly.csv")


def test_real_co2_interpolated(shared_data):
    series = load_csv(shared_data / "co2_weekly.csv", fill="interpolate")
    assert len(series) == 2284
    assert series.time[0] == pd.Timestamp("1958-03-29")
    assert series.infer_season() == 52


def test_real_co2_dropped(shared_data):
    series = load_csv(shared_data / "co2_weekly.csv", fill="drop")
    assert len(series) == 2284 - 59


def test_real_sunspots_monthly(shared_data):
    path = shared_data / "sunspots_monthly.csv"
    series = load_csv(path, column="Monthly Mean Total Sunspot Number")
    assert len(series) == 3235
    assert series.values[0] == np.float32(96.7)
    assert series.infer_season() == 12


def test_real_daily_temperatures(shared_data):
    series = load_csv(shared_data / "daily_min_temperatures.csv")
    assert len(series) == 3650
    assert series.name == "Temp"
    # Two dates are absent from the file, so the median spacing decides.
    assert series.infer_season() == 365


def test_real_nile(shared_data):
    series = load_csv(shared_data / "nile.csv")
    assert len(series) == 100
    assert series.time[0] == pd.Timestamp("1871-01-01")
    assert series.infer_season() is None


def test_real_sunspots_yearly(shared_data):
    series = load_csv(shared_data / "sunspots_yearly.csv")
    assert len(series) == 309
    assert series.name == "SUNACTIVITY"
    assert series.time[0] == pd.Timestamp("1700-01-01")


# --- as_series --------------------------------------------------------------------


def test_as_series_returns_series_unchanged():
    series = synthetic_series(length=5)
    assert as_series(series) is series


def test_as_series_from_list():
    series = as_series([1, 2, 3])
    assert series.values.dtype == np.float32
    assert series.name == "value"


def test_as_series_flattens_column():
    series = as_series(np.arange(4.0).reshape(4, 1))
    assert series.values.shape == (4,)


def test_as_series_rejects_two_columns():
    with pytest.raises(SeqcastError, match=r"got shape \(2, 2\)"):
        as_series(np.zeros((2, 2)))


def test_as_series_keeps_datetime_index():
    time = pd.date_range("2000-01-01", periods=3, freq="D")
    series = as_series(pd.Series([1.0, 2.0, 3.0], index=time, name="sales"))
    assert series.time.equals(time)
    assert series.name == "sales"


def test_as_series_drops_range_index():
    series = as_series(pd.Series([1.0, 2.0]))
    assert series.time is None


def test_as_series_names_first_nan():
    with pytest.raises(SeqcastError, match="index 1 is nan"):
        as_series([1.0, np.nan, np.nan])


def test_as_series_rejects_text():
    with pytest.raises(SeqcastError, match="cannot read data of dtype <U1 as numbers"):
        as_series(["a", "b"])


def test_as_series_rejects_none_entries():
    with pytest.raises(SeqcastError, match="index 1 is nan"):
        as_series(np.array([1.0, None], dtype=object))


# --- parse_split ------------------------------------------------------------------


def test_parse_split_index():
    assert parse_split("1000") == 1000


def test_parse_split_fraction():
    assert parse_split("0.8") == 0.8


def test_parse_split_date():
    assert parse_split("1990-01-01") == "1990-01-01"


@pytest.mark.parametrize("text", ["abc", "-5", "1.5", "1990-13-01", ""])
def test_parse_split_rejects(text):
    with pytest.raises(SeqcastError, match="invalid split"):
        parse_split(text)


def test_parse_split_message_lists_forms():
    with pytest.raises(SeqcastError) as error:
        parse_split("soon")
    message = str(error.value)
    assert "'soon'" in message
    assert "step index (1000)" in message
    assert "fraction between 0 and 1 (0.8)" in message
    assert "date (1990-01-01)" in message
