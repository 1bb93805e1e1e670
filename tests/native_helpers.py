"""Helpers shared by the native kernel tests: which ISAs run here, and an elementwise bound check."""

from __future__ import annotations

import functools

import numpy as np
import pytest

U = 2.0**-24  # unit roundoff of float32


@functools.cache
def supported_isas() -> tuple[str, ...]:
    from mobilebert_lite import _C

    return tuple(_C.runtime_info()["supported_isas"])


def require(isa: str) -> None:
    """Skip (with the reason) unless this CPU and build can run `isa`."""
    if isa not in supported_isas():
        from mobilebert_lite import _C

        info = _C.runtime_info()
        pytest.skip(f"{isa} not available (compiled: {info['compiled_isas']}, supported: {info['supported_isas']})")


def assert_within(got, ref, bound, what):
    """|got - ref| <= bound elementwise (NaN fails); reports the first offender and the worst error."""
    assert got.dtype == np.float32 and got.shape == ref.shape, what
    err = np.abs(got.astype(np.float64) - ref)
    bound = np.broadcast_to(bound, err.shape)
    bad = ~(err <= bound)
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        pytest.fail(
            f"{what}: {int(bad.sum())}/{bad.size} elements out of tolerance; first at {i}: got {got[i]!r}, "
            f"ref {ref[i]!r}, |err| {err[i]:.3g} > {bound[i]:.3g}; max |err| {np.nanmax(err):.3g}"
        )
