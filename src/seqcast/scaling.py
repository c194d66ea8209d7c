"""Scaling of a series before training, learned from the training split only.

A network trained with small learning rates on values in the hundreds barely
moves from its initialisation, so a series such as atmospheric CO2 (about 330
ppm) needs scaling. The scaler is fitted on the values before the split, so no
statistic of the validation data leaks into training, and forecasts are mapped
back to the original units before any metric is computed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from seqcast.errors import SeqcastError

SCALE_METHODS = ("none", "standard", "minmax")


@dataclasses.dataclass(frozen=True)
class Scaler:
    """An affine map ``scaled = (value - center) / scale``.

    Attributes:
        method: ``"none"``, ``"standard"`` (mean 0, standard deviation 1) or
            ``"minmax"`` (minimum 0, maximum 1), as fitted on training values.
        center: the value subtracted.
        scale: the divisor, always positive.

    Example:
        >>> scaler = Scaler.fit([1.0, 2.0, 3.0], "minmax")
        >>> scaler.transform([1.0, 3.0]).tolist()
        [0.0, 1.0]
    """

    method: str = "none"
    center: float = 0.0
    scale: float = 1.0

    @classmethod
    def fit(cls, values, method: str) -> Scaler:
        """Fit ``method`` on ``values``, the part of a series before the split."""
        if method not in SCALE_METHODS:
            raise SeqcastError(
                f"unknown scaling {method!r}, so use one of {', '.join(SCALE_METHODS)}"
            )
        values = np.asarray(values, np.float64)
        if method == "none":
            return cls()
        if method == "standard":
            center, scale = values.mean(), values.std()
        else:
            center, scale = values.min(), values.max() - values.min()
        if not scale > 0:
            raise SeqcastError(
                f"cannot scale with {method!r} because the training values are "
                "constant, so use --scale none"
            )
        return cls(method, float(center), float(scale))

    def transform(self, values) -> np.ndarray:
        """Map values to the scaled units, as float32."""
        values = np.asarray(values, np.float32)
        if self.method == "none":
            return values
        return ((values - self.center) / self.scale).astype(np.float32)

    def inverse_transform(self, values) -> np.ndarray:
        """Map scaled values back to the original units, as float32."""
        values = np.asarray(values, np.float32)
        if self.method == "none":
            return values
        return (values * self.scale + self.center).astype(np.float32)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
