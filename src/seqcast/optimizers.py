"""Optimizers whose hyperparameters live in their state, one set per model.

Every optimizer here is wrapped in ``optax.inject_hyperparams``, so its learning
rate, momentum and other numeric settings are arrays inside the optimizer state.
Under ``jax.vmap`` each model of a stack therefore carries its own values, and
the trainer writes each step's learning rate into the state before the update.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from seqcast.errors import SeqcastError

OPTIMIZER_NAMES = ("sgd", "adam", "adamw")


def _keras_sgd(learning_rate, momentum, nesterov: bool = False):
    """SGD with Keras's momentum rule.

    Keras keeps a velocity ``v = momentum * v - learning_rate * g`` and adds it to
    the weights. Optax's ``sgd`` instead scales an accumulated trace by the
    current rate, which gives different weights once the rate changes between
    steps, as it does in a learning-rate sweep.
    """

    def init(params):
        return jax.tree.map(jnp.zeros_like, params)

    def update(grads, velocity, params=None):
        del params
        velocity = jax.tree.map(
            lambda v, g: momentum * v - learning_rate * g, velocity, grads
        )
        if nesterov:
            updates = jax.tree.map(
                lambda v, g: momentum * v - learning_rate * g, velocity, grads
            )
        else:
            updates = velocity
        return updates, velocity

    return optax.GradientTransformation(init, update)


def _adam(learning_rate, beta_1, beta_2, epsilon):
    return optax.adam(learning_rate, b1=beta_1, b2=beta_2, eps=epsilon)


def _adamw(learning_rate, beta_1, beta_2, epsilon, weight_decay):
    return optax.adamw(
        learning_rate, b1=beta_1, b2=beta_2, eps=epsilon, weight_decay=weight_decay
    )


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """An optimizer and its settings, with Keras's defaults.

    Attributes:
        name: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        learning_rate: the constant rate used when no schedule is given.
        momentum: SGD momentum in [0, 1).
        nesterov: SGD with Nesterov momentum, as Keras computes it.
        beta_1, beta_2, epsilon: Adam and AdamW moment settings.
        weight_decay: AdamW's decoupled weight decay.

    Example:
        >>> OptimizerConfig("sgd", learning_rate=1e-6, momentum=0.9).hyperparameters()
        {'momentum': 0.9}
    """

    name: str = "sgd"
    learning_rate: float = 1e-6
    momentum: float = 0.9
    nesterov: bool = False
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    weight_decay: float = 0.004

    def __post_init__(self):
        if self.name not in OPTIMIZER_NAMES:
            raise SeqcastError(
                f"unknown optimizer {self.name!r}, so use one of "
                f"{', '.join(OPTIMIZER_NAMES)}"
            )
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise SeqcastError(
                f"learning_rate must be a positive number, got {self.learning_rate}"
            )
        if not 0 <= self.momentum < 1:
            raise SeqcastError(
                f"momentum must be at least 0 and below 1, got {self.momentum}, "
                "so use a value such as 0.9 (--momentum)"
            )
        for field in ("beta_1", "beta_2"):
            value = getattr(self, field)
            if not 0 <= value < 1:
                raise SeqcastError(f"{field} must be in [0, 1), got {value}")
        if self.epsilon <= 0:
            raise SeqcastError(f"epsilon must be positive, got {self.epsilon}")
        if self.weight_decay < 0:
            raise SeqcastError(
                f"weight_decay must be zero or positive, got {self.weight_decay}"
            )

    def hyperparameters(self) -> dict[str, float]:
        """Return the numeric settings besides the learning rate, by name."""
        names = hyperparameter_names(self.name)
        return {name: getattr(self, name) for name in names}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def hyperparameter_names(name: str) -> tuple[str, ...]:
    """Return the per-model settings of optimizer ``name``, learning rate excluded."""
    if name == "sgd":
        return ("momentum",)
    if name == "adam":
        return ("beta_1", "beta_2", "epsilon")
    if name == "adamw":
        return ("beta_1", "beta_2", "epsilon", "weight_decay")
    raise SeqcastError(
        f"unknown optimizer {name!r}, so use one of {', '.join(OPTIMIZER_NAMES)}"
    )


def make_optimizer(name: str, nesterov: bool = False):
    """Return the Optax transformation factory for ``name``.

    The factory takes ``learning_rate`` and the settings listed by
    :func:`hyperparameter_names` as keyword arguments, so that
    ``make_optimizer("sgd")(learning_rate=0.1, momentum=0.9)`` is an
    ``optax.GradientTransformation`` whose state stores both values.
    """
    if name == "sgd":
        inner = _keras_sgd_nesterov if nesterov else _keras_sgd
        return optax.inject_hyperparams(inner)
    if name == "adam":
        return optax.inject_hyperparams(_adam)
    if name == "adamw":
        return optax.inject_hyperparams(_adamw)
    raise SeqcastError(
        f"unknown optimizer {name!r}, so use one of {', '.join(OPTIMIZER_NAMES)}"
    )


def _keras_sgd_nesterov(learning_rate, momentum):
    return _keras_sgd(learning_rate, momentum, nesterov=True)


def stack_hyperparameters(
    configs: OptimizerConfig | list[OptimizerConfig], num_models: int
) -> dict[str, np.ndarray]:
    """Return each optimizer setting as a float32 array with one value per model.

    Args:
        configs: one configuration shared by all models, or one per model. All
            must name the same optimizer.
        num_models: the number of models in the stack.

    Returns:
        A mapping from setting name to an array of shape ``(num_models,)``.
    """
    if isinstance(configs, OptimizerConfig):
        configs = [configs] * num_models
    if len(configs) != num_models:
        raise SeqcastError(
            f"got {len(configs)} optimizer configurations for {num_models} models; "
            "give one shared configuration or one per model"
        )
    names = {config.name for config in configs}
    nesterov = {config.nesterov for config in configs}
    if len(names) > 1 or len(nesterov) > 1:
        raise SeqcastError(
            f"one model stack needs one optimizer, got {sorted(names)}; "
            "train different optimizers in separate stacks"
        )
    settings = hyperparameter_names(configs[0].name)
    return {
        setting: np.array([getattr(c, setting) for c in configs], dtype=np.float32)
        for setting in settings
    }


def init_state_stack(
    name: str,
    params,
    hyperparameters: Mapping[str, np.ndarray],
    nesterov: bool = False,
):
    """Initialise one optimizer state per model of a parameter stack.

    Args:
        name: optimizer name.
        params: parameter tree whose arrays have a leading model axis.
        hyperparameters: per-model settings from :func:`stack_hyperparameters`.
        nesterov: SGD with Nesterov momentum.

    Returns:
        An optimizer state tree with the same leading model axis.
    """
    factory = make_optimizer(name, nesterov)
    settings = {key: jnp.asarray(value) for key, value in hyperparameters.items()}

    def init_one(model_params, model_settings):
        return factory(learning_rate=jnp.float32(0.0), **model_settings).init(
            model_params
        )

    return jax.vmap(init_one)(params, settings)


def with_learning_rate(state, learning_rate):
    """Return ``state`` with its stored learning rate replaced."""
    hyperparams = dict(state.hyperparams)
    hyperparams["learning_rate"] = jnp.asarray(
        learning_rate, dtype=hyperparams["learning_rate"].dtype
    )
    return state._replace(hyperparams=hyperparams)
