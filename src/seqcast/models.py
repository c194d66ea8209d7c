"""Dense forecasting networks built from Flax layers, and stacks of them.

A *model stack* is one parameter tree whose arrays carry a leading model axis,
so ``jax.vmap`` trains or applies all of its models in one compiled program.
Models of different hidden widths can share a stack: each is initialised at its
own width, zero-padded to the widest, and a mask of ones and zeros per hidden
layer switches the padded units off. The padded weights get zero gradients, so
a masked model trains exactly as the narrow model would, up to float rounding.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from seqcast.errors import SeqcastError

ACTIVATIONS = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "swish": nn.swish,
    "linear": lambda x: x,
}

# Keras's defaults for Dense layers: Glorot-uniform kernels, zero biases.
# init_params draws the same distributions with NumPy.
_KERNEL_INIT = nn.initializers.glorot_uniform()
_BIAS_INIT = nn.initializers.zeros


@dataclasses.dataclass(frozen=True)
class DenseConfig:
    """The architecture of a dense forecaster.

    Attributes:
        window_size: past values a forecast is made from (the input length).
        hidden: units of each hidden layer, e.g. ``(10, 10)``.
        activation: hidden-layer activation, one of :data:`ACTIVATIONS`.
        stride: step between the values of a window.

    Example:
        >>> DenseConfig(window_size=20, hidden=(10, 10)).hidden
        (10, 10)
    """

    window_size: int = 20
    hidden: tuple[int, ...] = (10, 10)
    activation: str = "relu"
    stride: int = 1

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if int(self.window_size) < 1:
            raise SeqcastError(
                f"window_size must be at least 1, got {self.window_size}"
            )
        if int(self.stride) < 1:
            raise SeqcastError(f"stride must be at least 1, got {self.stride}")
        for units in self.hidden:
            if units < 1:
                raise SeqcastError(
                    f"hidden layer sizes must be at least 1, got {self.hidden}; "
                    "give comma-separated positive integers such as 10,10"
                )
        if self.activation not in ACTIVATIONS:
            raise SeqcastError(
                f"unknown activation {self.activation!r}, so use one of "
                f"{', '.join(ACTIVATIONS)}"
            )

    @property
    def span(self) -> int:
        """Number of steps a window covers, label included."""
        return self.window_size * self.stride + 1

    def module(self) -> DenseNetwork:
        return DenseNetwork(hidden=self.hidden, activation=self.activation)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, data: dict) -> DenseConfig:
        return cls(**{**data, "hidden": tuple(data["hidden"])})


class DenseNetwork(nn.Module):
    """Dense layers with an activation between them and one linear output.

    Maps windows of shape ``(batch, window_size)`` to forecasts of shape
    ``(batch,)``. ``masks``, when given, contains one array of shape ``(units,)``
    per hidden layer that multiplies that layer's activations.
    """

    hidden: tuple[int, ...]
    activation: str = "relu"

    @nn.compact
    def __call__(self, windows, masks=None):
        activate = ACTIVATIONS[self.activation]
        x = windows
        for layer, units in enumerate(self.hidden):
            dense = nn.Dense(
                units,
                kernel_init=_KERNEL_INIT,
                bias_init=_BIAS_INIT,
                name=f"hidden_{layer}",
            )
            x = activate(dense(x))
            if masks is not None:
                x = x * masks[layer]
        output = nn.Dense(
            1, kernel_init=_KERNEL_INIT, bias_init=_BIAS_INIT, name="output"
        )
        return output(x)[..., 0]


def init_stack(
    config: DenseConfig,
    seeds: Sequence[int],
    widths: Sequence[Sequence[int]] | None = None,
):
    """Initialise one model per seed, stacked along a leading axis.

    Args:
        config: the architecture; with ``widths`` its ``hidden`` sizes are the
            padded (maximum) widths.
        seeds: one integer seed per model.
        widths: optional true hidden widths per model, each no wider than
            ``config.hidden``.

    Returns:
        ``(params, masks)``: the parameter tree with a leading axis of
        ``len(seeds)``, and a tuple of float32 arrays of shape
        ``(len(seeds), units)``, one per hidden layer, or ``None`` when no
        widths were given.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise SeqcastError("a model stack needs at least one seed")
    if widths is None:
        models = [init_params(config, seed) for seed in seeds]
        return _stack_on_device(models), None

    widths = [tuple(int(u) for u in w) for w in widths]
    if len(widths) != len(seeds):
        raise SeqcastError(
            f"got {len(widths)} width settings for {len(seeds)} seeds; "
            "give one per model"
        )
    for width in widths:
        if len(width) != len(config.hidden) or any(
            not 1 <= u <= m for u, m in zip(width, config.hidden, strict=True)
        ):
            raise SeqcastError(
                f"hidden widths {width} do not fit inside the padded widths "
                f"{config.hidden}, because each layer needs 1 to the padded size"
            )
    template = _param_shapes(config)
    padded = []
    for seed, width in zip(seeds, widths, strict=True):
        narrow = dataclasses.replace(config, hidden=width)
        padded.append(_pad_params(init_params(narrow, seed), template))
    params = _stack_on_device(padded)
    masks = tuple(
        jax.device_put(
            np.array([np.arange(units) < w[layer] for w in widths], np.float32)
        )
        for layer, units in enumerate(config.hidden)
    )
    return params, masks


@functools.lru_cache(maxsize=64)
def _param_shapes(config: DenseConfig):
    sample = jax.ShapeDtypeStruct((1, config.window_size), jnp.float32)
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    return jax.eval_shape(config.module().init, key, sample)


def init_params(config: DenseConfig, seed: int):
    """Initialise one model as Keras does: Glorot-uniform kernels, zero biases.

    The layer shapes come from the Flax module. The values are drawn with
    NumPy's generator seeded with ``seed``, which needs no compilation.
    Each kernel of shape ``(fan_in, fan_out)`` is uniform in
    ``[-limit, limit]`` with ``limit = sqrt(6 / (fan_in + fan_out))``.
    """
    rng = np.random.default_rng(int(seed))

    def draw(path, shape):
        if path[-1].key == "kernel":
            fan_in, fan_out = shape.shape
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            values = rng.uniform(-limit, limit, size=shape.shape)
            return values.astype(np.float32)
        return np.zeros(shape.shape, np.float32)

    return jax.tree_util.tree_map_with_path(draw, _param_shapes(config))


def _stack_on_device(models):
    """Stack NumPy parameter trees along a new model axis and move them to the
    device in one transfer, which compiles nothing."""
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *models)
    return jax.device_put(stacked)


def _pad_params(params, template):
    def pad(small, big):
        widths = [(0, b - s) for s, b in zip(small.shape, big.shape, strict=True)]
        return np.pad(small, widths)

    return jax.tree.map(pad, params, template)


def apply_stack(config: DenseConfig, params, windows, masks=None):
    """Forecast with every model of a stack.

    Args:
        config: the architecture.
        params: stacked parameters, leading axis ``models``.
        windows: float32 array of shape ``(batch, window_size)`` shared by all
            models.
        masks: optional width masks from :func:`init_stack`.

    Returns:
        Forecasts of shape ``(models, batch)``.
    """
    module = config.module()
    if masks is None:
        return jax.vmap(lambda p: module.apply(p, windows))(params)
    return jax.vmap(lambda p, m: module.apply(p, windows, m))(params, masks)


def stack_size(params) -> int:
    """Return the number of models in a parameter stack."""
    return int(jax.tree.leaves(params)[0].shape[0])


def select_models(params, indices):
    """Return the sub-stack of the models at ``indices``."""
    indices = jnp.asarray(indices)
    return jax.tree.map(lambda leaf: leaf[indices], params)
