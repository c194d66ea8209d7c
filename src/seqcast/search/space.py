"""Hyperparameters and the search space that keeps them by name.

A hyperparameter is one of :class:`Int`, :class:`Float`, :class:`Choice`,
:class:`Boolean` or :class:`Fixed`, as in Keras Tuner. A :class:`SearchSpace`
keeps them by name and, when every one of them has finitely many values,
numbers its combinations in :func:`itertools.product` order, so grid search
walks them in order and random search can draw them without replacement.

Spaces come from code, from command-line specs such as ``units=int:10:30:2``
(:func:`parse_spec`) or from a TOML file (:func:`load_space_file`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from seqcast.errors import SeqcastError

Value = bool | int | float | str

SPEC_FORMS = (
    "int:MIN:MAX[:STEP], float:MIN:MAX[:log|:STEP], choice:A,B,..., bool, "
    "or a single value"
)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise SeqcastError(
            f"invalid hyperparameter name {name!r}; use a name such as 'units'"
        )
    return name


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _tidy(value: float) -> float:
    """Round away float noise such as 0.30000000000000004 from stepped values."""
    return float(f"{value:.12g}")


@dataclasses.dataclass(frozen=True)
class Int:
    """A whole number from ``min`` to ``max`` inclusive, in steps of ``step``.

    Example:
        >>> Int("units", 10, 30, step=2).values()[:3]
        (10, 12, 14)
    """

    name: str
    min: int
    max: int
    step: int = 1

    def __post_init__(self):
        _check_name(self.name)
        for field in ("min", "max", "step"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SeqcastError(
                    f"{field} of Int {self.name!r} must be a whole number, got "
                    f"{value!r}"
                )
        if self.step < 1:
            raise SeqcastError(f"step of Int {self.name!r} must be at least 1")
        if self.min > self.max:
            raise SeqcastError(
                f"Int {self.name!r} has min {self.min} above max {self.max}"
            )
        if (self.max - self.min) % self.step:
            below = self.max - (self.max - self.min) % self.step
            raise SeqcastError(
                f"Int {self.name!r}: max - min = {self.max - self.min} is not a "
                f"multiple of step {self.step}; use max {below} or "
                f"{below + self.step}"
            )

    def values(self) -> tuple[int, ...]:
        return tuple(range(self.min, self.max + 1, self.step))

    def distribution(self) -> BaseDistribution:
        return IntDistribution(self.min, self.max, step=self.step)

    def describe(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        return f"int {self.min}..{self.max}{step}"

    def to_dict(self) -> dict:
        return {"type": "int", "min": self.min, "max": self.max, "step": self.step}


@dataclasses.dataclass(frozen=True)
class Float:
    """A real number from ``min`` to ``max``, uniform or log-uniform.

    With ``step`` the values are ``min, min + step, ..., max``, so the space
    is finite. ``log`` and ``step`` exclude each other.

    Example:
        >>> Float("learning_rate", 1e-6, 1e-3, log=True).describe()
        'float 1e-06..0.001 log'
    """

    name: str
    min: float
    max: float
    log: bool = False
    step: float | None = None

    def __post_init__(self):
        _check_name(self.name)
        for field in ("min", "max"):
            value = getattr(self, field)
            if not _is_number(value) or not math.isfinite(value):
                raise SeqcastError(
                    f"{field} of Float {self.name!r} must be a finite number, "
                    f"got {value!r}"
                )
        if self.min > self.max:
            raise SeqcastError(
                f"Float {self.name!r} has min {self.min} above max {self.max}"
            )
        if self.log and self.min <= 0:
            raise SeqcastError(
                f"Float {self.name!r} is log-uniform, so min must be positive, "
                f"got {self.min}"
            )
        if self.step is not None:
            self._check_step()

    def _check_step(self) -> None:
        if self.log:
            raise SeqcastError(
                f"Float {self.name!r} cannot have both log and step; drop one"
            )
        if not _is_number(self.step) or not self.step > 0:
            raise SeqcastError(
                f"step of Float {self.name!r} must be a positive number, got "
                f"{self.step!r}"
            )
        count = (self.max - self.min) / self.step
        if abs(count - round(count)) > 1e-9 * max(1.0, count):
            raise SeqcastError(
                f"Float {self.name!r}: max - min = {self.max - self.min:g} is not "
                f"a multiple of step {self.step:g}"
            )

    def values(self) -> tuple[float, ...] | None:
        if self.step is None:
            return (float(self.min),) if self.min == self.max else None
        count = round((self.max - self.min) / self.step)
        return tuple(_tidy(self.min + k * self.step) for k in range(count + 1))

    def distribution(self) -> BaseDistribution:
        return FloatDistribution(
            float(self.min), float(self.max), log=self.log,
            step=None if self.step is None else float(self.step),
        )  # fmt: skip

    def describe(self) -> str:
        if self.log:
            return f"float {self.min:g}..{self.max:g} log"
        step = "" if self.step is None else f" step {self.step:g}"
        return f"float {self.min:g}..{self.max:g}{step}"

    def to_dict(self) -> dict:
        return {
            "type": "float", "min": self.min, "max": self.max, "log": self.log,
            "step": self.step,
        }  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of a list of values: numbers, strings or booleans.

    Example:
        >>> Choice("momentum", [0.9, 0.7, 0.5, 0.3]).values()
        (0.9, 0.7, 0.5, 0.3)
    """

    name: str
    choices: Sequence[Value]

    def __post_init__(self):
        _check_name(self.name)
        if isinstance(self.choices, str):
            raise SeqcastError(
                f"Choice {self.name!r} needs a list of values, got the string "
                f"{self.choices!r}"
            )
        choices = tuple(self.choices)
        if not choices:
            raise SeqcastError(f"Choice {self.name!r} needs at least one value")
        for value in choices:
            if not isinstance(value, bool | int | float | str):
                raise SeqcastError(
                    f"Choice {self.name!r} has the value {value!r} of type "
                    f"{type(value).__name__}; use numbers, strings or booleans"
                )
        keys = [_value_key(value) for value in choices]
        if len(set(keys)) != len(keys):
            raise SeqcastError(
                f"Choice {self.name!r} lists a value twice: {list(choices)}"
            )
        object.__setattr__(self, "choices", choices)

    def values(self) -> tuple[Value, ...]:
        return self.choices

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution(self.choices)

    def describe(self) -> str:
        return "choice " + ", ".join(str(value) for value in self.choices)

    def to_dict(self) -> dict:
        return {"type": "choice", "values": list(self.choices)}


@dataclasses.dataclass(frozen=True)
class Boolean:
    """``False`` or ``True``."""

    name: str

    def __post_init__(self):
        _check_name(self.name)

    def values(self) -> tuple[bool, ...]:
        return (False, True)

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution((False, True))

    def describe(self) -> str:
        return "bool"

    def to_dict(self) -> dict:
        return {"type": "bool"}


@dataclasses.dataclass(frozen=True)
class Fixed:
    """One value that every trial uses; it is recorded but not searched."""

    name: str
    value: Value

    def __post_init__(self):
        _check_name(self.name)
        if not isinstance(self.value, bool | int | float | str):
            raise SeqcastError(
                f"Fixed {self.name!r} has the value {self.value!r} of type "
                f"{type(self.value).__name__}; use a number, a string or a boolean"
            )

    def values(self) -> tuple[Value, ...]:
        return (self.value,)

    def distribution(self) -> None:
        return None

    def describe(self) -> str:
        return f"fixed {self.value}"

    def to_dict(self) -> dict:
        return {"type": "fixed", "value": self.value}


Hyperparameter = Int | Float | Choice | Boolean | Fixed


def _value_key(value: Value) -> tuple[str, Value]:
    # True == 1 in Python, so the type keeps a boolean apart from a number.
    return (type(value).__name__, value)


def params_key(params: Mapping[str, Value]) -> tuple:
    """Return a hashable key that is equal for equal sets of values."""
    return tuple(sorted((name, _value_key(value)) for name, value in params.items()))


class SearchSpace:
    """Hyperparameters by name, in the order they were added.

    Example:
        >>> space = SearchSpace([Int("units", 10, 30, step=2),
        ...                      Choice("momentum", [0.9, 0.7, 0.5, 0.3])])
        >>> space.size
        44
        >>> space.combination(0)
        {'units': 10, 'momentum': 0.9}
    """

    def __init__(self, hyperparameters: Iterable[Hyperparameter] = ()):
        self._items: dict[str, Hyperparameter] = {}
        for hyperparameter in hyperparameters:
            self.add(hyperparameter)

    @classmethod
    def reference(cls) -> SearchSpace:
        """Return the textbook search: 11 widths of the first layer times 4
        SGD momenta at a fixed learning rate of 1e-5, 44 combinations.

        The epochs come from the training settings, 100 by default.
        """
        return cls([
            Int("units", 10, 30, step=2),
            Choice("momentum", [0.9, 0.7, 0.5, 0.3]),
            Fixed("learning_rate", 1e-5),
        ])  # fmt: skip

    def add(self, hyperparameter: Hyperparameter) -> SearchSpace:
        """Add a hyperparameter; a name already in the space raises."""
        if not isinstance(hyperparameter, Int | Float | Choice | Boolean | Fixed):
            raise SeqcastError(
                f"expected Int, Float, Choice, Boolean or Fixed, got "
                f"{hyperparameter!r}"
            )
        if hyperparameter.name in self._items:
            raise SeqcastError(
                f"hyperparameter {hyperparameter.name!r} is defined twice; "
                "give each name once"
            )
        self._items[hyperparameter.name] = hyperparameter
        return self

    def __iter__(self) -> Iterator[Hyperparameter]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __getitem__(self, name: str) -> Hyperparameter:
        return self._items[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        inner = ", ".join(f"{h.name}={h.describe()}" for h in self)
        return f"SearchSpace({inner})"

    @property
    def names(self) -> list[str]:
        return list(self._items)

    @property
    def searched(self) -> list[Hyperparameter]:
        """The hyperparameters that vary between trials (all but Fixed)."""
        return [h for h in self if not isinstance(h, Fixed)]

    @property
    def fixed(self) -> dict[str, Value]:
        return {h.name: h.value for h in self if isinstance(h, Fixed)}

    def distributions(self) -> dict[str, BaseDistribution]:
        """Return the Optuna distribution of every searched hyperparameter."""
        return {h.name: h.distribution() for h in self.searched}

    @property
    def size(self) -> int | None:
        """The number of combinations, or ``None`` when a Float has no step."""
        total = 1
        for hyperparameter in self.searched:
            values = hyperparameter.values()
            if values is None:
                return None
            total *= len(values)
        return total

    def _value_lists(self) -> list[tuple[str, tuple[Value, ...]]]:
        if self.size is None:
            raise SeqcastError(
                "the search space is infinite because a Float has no step; give "
                "it a step or use a Choice"
            )
        return [(h.name, h.values()) for h in self.searched]

    def combination(self, index: int) -> dict[str, Value]:
        """Return the searched values of combination ``index`` (from 0).

        The last hyperparameter changes fastest, as in ``itertools.product``.
        """
        size = self.size
        if size is None or not 0 <= index < size:
            raise SeqcastError(
                f"combination {index} is outside the space of {size} combinations"
            )
        params = {}
        for name, values in reversed(self._value_lists()):
            index, digit = divmod(index, len(values))
            params[name] = values[digit]
        return dict(reversed(params.items()))

    def combinations(self) -> Iterator[dict[str, Value]]:
        """Iterate over the searched values of every combination, in order."""
        lists = self._value_lists()
        names = [name for name, _ in lists]
        for values in itertools.product(*(values for _, values in lists)):
            yield dict(zip(names, values, strict=True))

    def with_fixed(self, params: Mapping[str, Value]) -> dict[str, Value]:
        """Return ``params`` completed with the fixed values, in space order."""
        merged = {**self.fixed, **params}
        return {name: merged[name] for name in self.names if name in merged}

    def to_dict(self) -> dict[str, dict]:
        return {h.name: h.to_dict() for h in self}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
        return cls(_from_definition(name, item) for name, item in data.items())

    @classmethod
    def from_specs(cls, specs: Iterable[str]) -> SearchSpace:
        """Build a space from ``NAME=SPEC`` strings, see :func:`parse_spec`."""
        return cls(parse_spec(spec) for spec in specs)

    def differences(self, other: SearchSpace) -> list[str]:
        """Describe how ``other`` differs from this space, one phrase each."""
        found = []
        for hyperparameter in other:
            name = hyperparameter.name
            if name not in self:
                found.append(f"hyperparameter {name!r} was added")
            elif self[name].to_dict() != hyperparameter.to_dict():
                found.append(
                    f"hyperparameter {name!r} changed from {self[name].describe()} "
                    f"to {hyperparameter.describe()}"
                )
        for name in self.names:
            if name not in other:
                found.append(f"hyperparameter {name!r} was removed")
        return found


def _from_definition(name: str, item: Mapping[str, Any]) -> Hyperparameter:
    kind = item.get("type") if isinstance(item, Mapping) else None
    try:
        if kind == "int":
            return Int(name, item["min"], item["max"], step=item.get("step", 1))
        if kind == "float":
            return Float(
                name, item["min"], item["max"], log=item.get("log", False),
                step=item.get("step"),
            )  # fmt: skip
        if kind == "choice":
            return Choice(name, item["values"])
        if kind == "bool":
            return Boolean(name)
        if kind == "fixed":
            return Fixed(name, item["value"])
    except KeyError as missing:
        raise SeqcastError(
            f"hyperparameter {name!r} of type {kind!r} is missing the key {missing}"
        ) from None
    raise SeqcastError(
        f"hyperparameter {name!r} has the invalid type {kind!r}; use int, float, "
        "choice, bool or fixed"
    )


def parse_value(text: str) -> Value:
    """Read a value written on the command line as a bool, int, float or string.

    Example:
        >>> parse_value("1e-5"), parse_value("16"), parse_value("true")
        (1e-05, 16, True)
    """
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return number


def _parse_number(spec: str, field: str, text: str, whole: bool) -> int | float:
    value = parse_value(text)
    if whole and isinstance(value, int) and not isinstance(value, bool):
        return value
    if not whole and _is_number(value):
        return value
    kind = "a whole number" if whole else "a number"
    raise SeqcastError(
        f"invalid search space spec {spec!r}: {field} {text!r} is not {kind}; "
        f"write NAME=SPEC with SPEC one of {SPEC_FORMS}"
    )


def parse_spec(spec: str) -> Hyperparameter:
    """Parse ``NAME=SPEC`` as given to ``seqcast tune --space``.

    SPEC is ``int:MIN:MAX[:STEP]``, ``float:MIN:MAX`` with an optional
    ``:log`` or ``:STEP``, ``choice:A,B,...``, ``bool``, ``fixed:VALUE`` or a
    single value, which is fixed.

    Raises:
        SeqcastError: the spec has none of these forms; the message names it.

    Example:
        >>> parse_spec("units=int:10:30:2")
        Int(name='units', min=10, max=30, step=2)
        >>> parse_spec("learning_rate=1e-5")
        Fixed(name='learning_rate', value=1e-05)
    """
    name, equals, body = spec.partition("=")
    name = name.strip()
    if not equals or not name or not body.strip():
        raise SeqcastError(
            f"invalid search space spec {spec!r}: expected NAME=SPEC, such as "
            "units=int:10:30:2"
        )
    if not name.isidentifier():
        raise SeqcastError(
            f"invalid search space spec {spec!r}: {name!r} is not a valid name"
        )
    kind, _, rest = body.strip().partition(":")
    kind = kind.lower()
    parts = rest.split(":") if rest else []
    if kind == "int" and len(parts) in (2, 3):
        numbers = [_parse_number(spec, f, t, True) for f, t in zip(
            ("MIN", "MAX", "STEP"), parts, strict=False)]
        return Int(name, *numbers)
    if kind == "float" and len(parts) in (2, 3):
        low = _parse_number(spec, "MIN", parts[0], False)
        high = _parse_number(spec, "MAX", parts[1], False)
        if len(parts) == 2:
            return Float(name, low, high)
        if parts[2].strip().lower() == "log":
            return Float(name, low, high, log=True)
        return Float(name, low, high, step=_parse_number(spec, "STEP", parts[2], False))
    if kind == "choice" and rest:
        return Choice(name, [parse_value(text) for text in rest.split(",")])
    if kind in ("bool", "boolean") and not rest:
        return Boolean(name)
    if kind == "fixed" and rest:
        return Fixed(name, parse_value(rest))
    if kind in ("int", "float", "choice", "bool", "boolean", "fixed"):
        raise SeqcastError(
            f"invalid search space spec {spec!r}: write {kind} as one of "
            f"{SPEC_FORMS}"
        )
    return Fixed(name, parse_value(body))


def load_space_file(path: str | Path) -> SearchSpace:
    """Read a search space from a TOML file.

    Each top-level key is a hyperparameter. A table gives its ``type`` (int,
    float, choice, bool or fixed) and fields, an array is a choice, a string
    is read as a SPEC of :func:`parse_spec`, and a number or boolean is fixed::

        learning_rate = 1e-5
        momentum = [0.9, 0.7, 0.5, 0.3]
        activation = "choice:relu,tanh"

        [units]
        type = "int"
        min = 10
        max = 30
        step = 2

    Raises:
        SeqcastError: the file is missing, is not valid TOML or defines an
            invalid hyperparameter.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqcastError(
            f"search space file {path} not found; check the path"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SeqcastError(
            f"failed to read search space file {path}: {error}"
        ) from None
    if not data:
        raise SeqcastError(f"search space file {path} defines no hyperparameters")
    space = SearchSpace()
    for name, item in data.items():
        if isinstance(item, Mapping):
            space.add(_from_definition(name, item))
        elif isinstance(item, list):
            space.add(Choice(name, item))
        elif isinstance(item, str):
            space.add(parse_spec(f"{name}={item}"))
        else:
            space.add(Fixed(name, item))
    return space
