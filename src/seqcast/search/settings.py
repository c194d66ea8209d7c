"""The mapping of searched hyperparameters onto model, optimizer and training.

:func:`build_settings` copies every value into its configuration by keyword,
``dataclasses.replace(optimizer, momentum=value)``, so a searched momentum is
the momentum the optimizer uses and never lands in another argument's place.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

from seqcast.errors import SeqcastError
from seqcast.models import DenseConfig
from seqcast.optimizers import OptimizerConfig
from seqcast.search.space import SearchSpace, Value
from seqcast.training import TrainConfig

# Hyperparameter name to the configuration field it sets.
MODEL_FIELDS = {"window_size": "window_size", "activation": "activation"}
OPTIMIZER_FIELDS = {
    "optimizer": "name",
    "learning_rate": "learning_rate",
    "momentum": "momentum",
    "nesterov": "nesterov",
    "beta_1": "beta_1",
    "beta_2": "beta_2",
    "weight_decay": "weight_decay",
}
TRAINING_FIELDS = {
    "batch_size": "batch_size",
    "shuffle_buffer": "shuffle_buffer",
    "epochs": "epochs",
    "loss": "loss",
}
LAYER_NAMES = ("layers", "units")
KNOWN_NAMES = (
    *MODEL_FIELDS, *LAYER_NAMES, "units_0", "units_1", "...",
    *OPTIMIZER_FIELDS, *TRAINING_FIELDS,
)  # fmt: skip
_UNITS_OF_LAYER = re.compile(r"units_(\d+)")
_FLOAT_FIELDS = ("learning_rate", "momentum", "beta_1", "beta_2", "weight_decay")


@dataclasses.dataclass(frozen=True)
class TrialSettings:
    """The model, optimizer and training settings of one trial.

    As the base of a search, these are the values that the searched
    hyperparameters replace. The defaults are the reference workflow's.
    """

    model: DenseConfig = DenseConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    training: TrainConfig = TrainConfig()

    def to_dict(self) -> dict:
        return {
            "model": self.model.to_dict(),
            "optimizer": self.optimizer.to_dict(),
            "training": self.training.to_dict(),
        }


def _layer_of(name: str) -> int | None:
    match = _UNITS_OF_LAYER.fullmatch(name)
    return int(match.group(1)) if match else None


def check_names(names: Iterable[str]) -> None:
    """Raise if a hyperparameter name is one that no setting takes."""
    names = list(names)
    for name in names:
        known = (
            name in MODEL_FIELDS or name in OPTIMIZER_FIELDS
            or name in TRAINING_FIELDS or name in LAYER_NAMES
            or _layer_of(name) is not None
        )  # fmt: skip
        if not known:
            raise SeqcastError(
                f"unknown hyperparameter {name!r}; use one of "
                f"{', '.join(KNOWN_NAMES)}"
            )
    if "units" in names and "units_0" in names:
        raise SeqcastError(
            "units and units_0 both set the first layer's width; keep one"
        )


def _hidden(hyperparameters: Mapping[str, Value], base: DenseConfig):
    default = base.hidden[-1] if base.hidden else 10
    layers = hyperparameters.get("layers", len(base.hidden))
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 0:
        raise SeqcastError(
            f"layers must be a whole number of at least 0, got {layers!r}"
        )
    hidden = [
        base.hidden[k] if k < len(base.hidden) else default for k in range(layers)
    ]
    widths = {0: hyperparameters["units"]} if "units" in hyperparameters else {}
    for name, value in hyperparameters.items():
        layer = _layer_of(name)
        if layer is not None:
            widths[layer] = value
    # A width for a layer the trial does not have is ignored, as a searched
    # units_2 is when the trial draws layers=2.
    for layer, units in widths.items():
        if layer < layers:
            if isinstance(units, bool) or not isinstance(units, int):
                raise SeqcastError(
                    f"the width of hidden layer {layer} must be a whole number, "
                    f"got {units!r}"
                )
            hidden[layer] = units
    return tuple(hidden)


def build_settings(
    hyperparameters: Mapping[str, Value], base: TrialSettings = TrialSettings()
) -> TrialSettings:
    """Build one trial's settings: ``base`` with each hyperparameter replaced.

    Args:
        hyperparameters: values by name, such as ``{"units": 28,
            "momentum": 0.5}``. ``units`` is the width of the first hidden layer
            and ``units_K`` that of layer ``K`` (from 0). Layers without a
            width keep the base's. Layers that ``layers`` adds get the base's
            last width.
        base: the settings that hyperparameters not given keep.

    Returns:
        The trial's :class:`TrialSettings`.

    Raises:
        SeqcastError: a name is unknown or a value is invalid for its setting.

    Example:
        >>> settings = build_settings({"units": 28, "momentum": 0.5})
        >>> settings.model.hidden, settings.optimizer.momentum
        ((28, 10), 0.5)
    """
    check_names(hyperparameters)
    model_changes = {
        MODEL_FIELDS[k]: v for k, v in hyperparameters.items() if k in MODEL_FIELDS
    }
    model_changes["hidden"] = _hidden(hyperparameters, base.model)
    optimizer_changes = {}
    for name, value in hyperparameters.items():
        if name in OPTIMIZER_FIELDS:
            if name in _FLOAT_FIELDS and isinstance(value, int):
                value = float(value)
            optimizer_changes[OPTIMIZER_FIELDS[name]] = value
    training_changes = {
        TRAINING_FIELDS[k]: v
        for k, v in hyperparameters.items()
        if k in TRAINING_FIELDS
    }
    try:
        return TrialSettings(
            model=dataclasses.replace(base.model, **model_changes),
            optimizer=dataclasses.replace(base.optimizer, **optimizer_changes),
            training=dataclasses.replace(base.training, **training_changes),
        )
    except (TypeError, ValueError) as error:
        if isinstance(error, SeqcastError):
            raise
        raise SeqcastError(
            f"invalid hyperparameters {dict(hyperparameters)}: {error}"
        ) from None


def check_space(space: SearchSpace, base: TrialSettings) -> None:
    """Raise early if a name is unknown or a value cannot be used.

    Every value of a finite hyperparameter, and both ends of an infinite one,
    is built into settings on its own, so a momentum of 1.0 in a choice fails
    before any training.
    """
    check_names(space.names)
    for hyperparameter in space:
        values = hyperparameter.values()
        if values is None:
            values = (hyperparameter.min, hyperparameter.max)
        for value in values:
            try:
                build_settings({**space.fixed, hyperparameter.name: value}, base)
            except SeqcastError as error:
                raise SeqcastError(
                    f"hyperparameter {hyperparameter.name!r} = {value!r} is "
                    f"invalid: {error}"
                ) from None


def stack_key(settings: TrialSettings) -> tuple:
    """Return what trials must share to train in one model stack.

    A stack has one compiled program, so its models share the input length,
    the number of hidden layers, the activation, the training settings and the
    optimizer. Hidden widths, seeds and the optimizer's numeric settings may
    differ per model.
    """
    model = settings.model
    return (
        model.window_size,
        model.stride,
        model.activation,
        len(model.hidden),
        settings.training,
        settings.optimizer.name,
        settings.optimizer.nesterov,
    )
