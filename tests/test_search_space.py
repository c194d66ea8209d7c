"""Hyperparameters, search spaces, specs and space files."""

import itertools

import pytest

from seqcast.errors import SeqcastError
from seqcast.search import (
    Boolean,
    Choice,
    Fixed,
    Float,
    Int,
    SearchSpace,
    load_space_file,
    parse_spec,
)


def test_int_values_include_max():
    assert Int("units", 10, 30, step=2).values() == tuple(range(10, 31, 2))


def test_int_rejects_step_that_misses_max():
    with pytest.raises(SeqcastError, match="use max 28 or 31"):
        Int("units", 10, 30, step=3)


def test_float_with_step_is_finite():
    assert Float("momentum", 0.1, 0.4, step=0.1).values() == (0.1, 0.2, 0.3, 0.4)


def test_float_without_step_is_infinite():
    assert Float("learning_rate", 1e-6, 1e-3, log=True).values() is None


def test_float_rejects_log_with_step():
    with pytest.raises(SeqcastError, match="both log and step"):
        Float("learning_rate", 0.1, 0.5, log=True, step=0.1)


def test_float_log_needs_positive_min():
    with pytest.raises(SeqcastError, match="min must be positive"):
        Float("learning_rate", 0.0, 1.0, log=True)


def test_choice_rejects_repeated_value():
    with pytest.raises(SeqcastError, match="lists a value twice"):
        Choice("momentum", [0.9, 0.9])


def test_choice_keeps_bool_apart_from_int():
    assert Choice("flag", [1, True]).values() == (1, True)


def test_space_rejects_duplicate_name():
    with pytest.raises(SeqcastError, match="'units' is defined twice"):
        SearchSpace([Int("units", 1, 2), Choice("units", [3])])


def test_reference_space_has_44_combinations():
    space = SearchSpace.reference()
    assert space.size == 44
    assert space.fixed == {"learning_rate": 1e-5}


def test_combinations_follow_product_order():
    space = SearchSpace([Int("units", 1, 3), Choice("a", ["x", "y"]), Boolean("b")])
    expected = [
        {"units": u, "a": a, "b": b}
        for u, a, b in itertools.product((1, 2, 3), ("x", "y"), (False, True))
    ]
    assert list(space.combinations()) == expected
    assert [space.combination(i) for i in range(space.size)] == expected


def test_size_is_none_with_continuous_float():
    space = SearchSpace([Int("units", 1, 3), Float("learning_rate", 1e-4, 1e-2)])
    assert space.size is None


def test_fixed_only_space_has_one_combination():
    space = SearchSpace([Fixed("epochs", 3)])
    assert space.size == 1
    assert list(space.combinations()) == [{}]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("units=int:10:30:2", Int("units", 10, 30, step=2)),
        ("units=int:10:30", Int("units", 10, 30)),
        ("momentum=choice:0.9,0.7,0.5,0.3", Choice("momentum", [0.9, 0.7, 0.5, 0.3])),
        (
            "learning_rate=float:1e-6:1e-3:log",
            Float("learning_rate", 1e-6, 1e-3, log=True),
        ),
        ("momentum=float:0.1:0.9:0.2", Float("momentum", 0.1, 0.9, step=0.2)),
        ("learning_rate=1e-5", Fixed("learning_rate", 1e-5)),
        ("activation=choice:relu,tanh", Choice("activation", ["relu", "tanh"])),
        ("nesterov=bool", Boolean("nesterov")),
        ("activation=relu", Fixed("activation", "relu")),
        ("epochs=fixed:5", Fixed("epochs", 5)),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("units", "expected NAME=SPEC"),
        ("units=int:10:x", "MAX 'x' is not a whole number"),
        ("units=int:10", "write int as one of"),
        ("learning_rate=float:a:1", "MIN 'a' is not a number"),
        ("9units=int:1:2", "not a valid name"),
        ("units=int:30:10", "min 30 above max 10"),
        ("nesterov=bool:1", "write bool as one of"),
    ],
)
def test_parse_spec_rejects(spec, message):
    with pytest.raises(SeqcastError, match=message) as error:
        parse_spec(spec)
    assert "\n" not in str(error.value)


def test_space_file_reads_every_form(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(
        'learning_rate = 1e-5\n'
        'momentum = [0.9, 0.5]\n'
        'activation = "choice:relu,tanh"\n'
        '[units]\ntype = "int"\nmin = 10\nmax = 30\nstep = 2\n'
    )
    space = load_space_file(path)
    assert space["learning_rate"] == Fixed("learning_rate", 1e-5)
    assert space["momentum"] == Choice("momentum", [0.9, 0.5])
    assert space["activation"] == Choice("activation", ["relu", "tanh"])
    assert space["units"] == Int("units", 10, 30, step=2)


def test_space_file_missing(tmp_path):
    with pytest.raises(SeqcastError, match="not found"):
        load_space_file(tmp_path / "absent.toml")


def test_space_file_invalid_type(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[units]\ntype = "integer"\n')
    with pytest.raises(SeqcastError, match="invalid type 'integer'"):
        load_space_file(path)


def test_space_dict_round_trip():
    space = SearchSpace([
        Int("units", 10, 30, step=2), Float("learning_rate", 1e-6, 1e-3, log=True),
        Choice("activation", ["relu", "tanh"]), Boolean("nesterov"),
        Fixed("epochs", 5),
    ])  # fmt: skip
    assert SearchSpace.from_dict(space.to_dict()) == space


def test_differences_name_each_change():
    old = SearchSpace([Int("units", 10, 30, step=2), Fixed("epochs", 5)])
    new = SearchSpace([Int("units", 10, 40, step=2), Boolean("nesterov")])
    assert old.differences(new) == [
        "hyperparameter 'units' changed from int 10..30 step 2 to int 10..40 step 2",
        "hyperparameter 'nesterov' was added",
        "hyperparameter 'epochs' was removed",
    ]
