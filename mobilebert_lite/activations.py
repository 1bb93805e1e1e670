"""NumPy versions of every activation transformers' ACT2FN offers for MobileBERT's `hidden_act`.

Each takes and returns float32 arrays; the transcendental parts are evaluated in float64 so the float32 result
is correctly rounded or within an ulp of PyTorch's. `prelu` and `xielu` are excluded: they carry trainable
parameters that no MobileBERT checkpoint has.
"""

from __future__ import annotations

import math

import numpy as np

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function, float64, relative error < 1.2e-7 everywhere (Chebyshev fit)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    r = t * np.exp(poly)
    return np.where(x >= 0, r, 2.0 - r)


def _gelu_erf(x):
    # 0.5 x (1 + erf(x/sqrt2)) = 0.5 x erfc(-x/sqrt2): the erfc form keeps relative accuracy for negative x.
    return 0.5 * x * erfc(-x / math.sqrt(2.0))


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


def _gelu_fast(x):
    return 0.5 * x * (1.0 + np.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _laplace(x, mu=0.707107, sigma=0.282095):
    z = (x - mu) / (sigma * math.sqrt(2.0))
    return 1.0 - 0.5 * erfc(z)


# name -> function on float64 arrays. Names and formulas follow transformers.activations.ACT2CLS.
_FUNCTIONS64 = {
    "gelu": _gelu_erf,
    "gelu_python": _gelu_erf,
    "gelu_10": lambda x: np.clip(_gelu_erf(x), -10.0, 10.0),
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_python_tanh": _gelu_tanh,
    "gelu_accurate": _gelu_tanh,
    "gelu_fast": _gelu_fast,
    "quick_gelu": lambda x: x * _sigmoid(1.702 * x),
    "hardswish": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "laplace": _laplace,
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "linear": lambda x: x,
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "relu": lambda x: np.maximum(x, 0.0),
    "relu2": lambda x: np.square(np.maximum(x, 0.0)),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "sigmoid": _sigmoid,
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "sqrtsoftplus": lambda x: np.sqrt(_softplus(x)),
    "tanh": np.tanh,
}
# Piecewise-linear ones are exact in float32; no need for the float64 round trip.
_EXACT_IN_FLOAT32 = {"relu", "relu6", "linear", "leaky_relu"}

ACTIVATIONS = frozenset(_FUNCTIONS64)


def apply_activation(name: str, x: np.ndarray) -> np.ndarray:
    """Apply activation `name` to a float32 array, returning float32."""
    try:
        fn = _FUNCTIONS64[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None
    if name in _EXACT_IN_FLOAT32:
        return fn(x).astype(np.float32, copy=False)
    return fn(x.astype(np.float64)).astype(np.float32)
