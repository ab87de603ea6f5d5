"""The linear recurrence (R0) and its solvers (refpg.recurrence,
derivations/returns.md#the-linear-recurrence-and-its-scan).

Independent route: the recurrence ``y_t = x_t + c_t y_{t+1}`` evaluated by a plain Python
loop written here, for general coefficients (signed, larger than 1, zero, complex), not
only the ``constant * boolean`` ones of the returns (tests/test_returns.py covers those
against explicit per-episode sums). Tolerance: both sides are float64 sums of at most T
products; the scan and the chunked solve sum in a different order (a balanced tree over
blocks), so they agree to ``1e-12`` of the largest partial sum.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from refpg import returns
from refpg.recurrence import linear_recurrence


def plain(x, c):
    y = np.zeros_like(np.asarray(x) + np.asarray(c))
    for i in range(x.shape[0]):
        acc = 0.0
        for t in range(x.shape[1] - 1, -1, -1):
            acc = x[i, t] + c[i, t] * acc
            y[i, t] = acc
    return y


def test_matches_a_loop_for_general_coefficients():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 37))
    c = rng.uniform(-1.2, 1.2, (3, 37))
    want = plain(x, c)
    for method in ("scan", "loop", "chunked", "auto"):
        assert_allclose(linear_recurrence(x, c, method=method), want, rtol=1e-12,
                        atol=1e-12 * np.abs(want).max())


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), N=st.integers(1, 5), T=st.integers(1, 70),
       zeros=st.sampled_from([0.0, 0.2, 0.7]), method=st.sampled_from(["scan", "loop",
                                                                        "chunked", "auto"]),
       time_major=st.booleans())
def test_every_method_and_layout_matches_the_loop(seed, N, T, zeros, method, time_major):
    """Lengths around and beyond the chunk size (16): blocks, the scan over block starts and
    the leading T mod 16 columns all run; zeros in c cut the recurrence like episode ends."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T))
    c = rng.uniform(-1.0, 1.0, (N, T)) * (rng.random((N, T)) >= zeros)
    want = plain(x, c)
    if time_major:
        got = linear_recurrence(np.ascontiguousarray(x.T), np.ascontiguousarray(c.T),
                                method=method, time_major=True).T
    else:
        got = linear_recurrence(x, c, method=method)
    assert_allclose(got, want, rtol=0, atol=1e-12 * max(1.0, np.abs(want).max()))


def test_complex_coefficients_and_inputs():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 40)) + 1j * rng.standard_normal((2, 40))
    c = 0.9 * np.exp(1j * rng.uniform(0, 2 * np.pi, (2, 40)))
    want = plain(x, c)
    for method in ("scan", "loop", "chunked"):
        assert_allclose(linear_recurrence(x, c, method=method), want, rtol=0,
                        atol=1e-12 * np.abs(want).max())


def test_is_re_exported_by_returns_and_rejects_bad_input():
    assert returns.linear_recurrence is linear_recurrence
    assert_array_equal(linear_recurrence(np.ones((1, 3)), np.zeros((1, 3))), np.ones((1, 3)))
    with pytest.raises(ValueError, match="c must have the shape"):
        linear_recurrence(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="method"):
        linear_recurrence(np.ones((2, 3)), np.ones((2, 3)), method="fast")
    with pytest.raises(ValueError, match="finite"):
        linear_recurrence(np.full((1, 2), np.nan), np.ones((1, 2)))


@pytest.mark.parametrize("T", [16, 32, 40])
def test_complex_inputs_with_real_coefficients(T):
    # found by the session-4 audit: with T a multiple of the chunk size the block products
    # stayed real and the complex carry could not be written into them
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, T)) + 1j * rng.standard_normal((2, T))
    c = rng.uniform(-1.0, 1.0, (2, T))
    want = plain(x, c)
    for method in ("scan", "loop", "chunked", "auto"):
        assert_allclose(linear_recurrence(x, c, method=method), want, rtol=0,
                        atol=1e-12 * np.abs(want).max())


def test_products_of_coefficients_that_overflow():
    # |c| = 2 over 2048 steps: the scan's and the blocks' products overflow (inf * 0 = NaN)
    # where the loop's sums stay small (x is 0 after t = 5). "auto" falls back to the loop;
    # an explicit scan or chunked solve says so instead of returning NaN.
    x = np.zeros((1, 2048))
    x[0, :5] = 1.0
    c = np.full((1, 2048), 2.0)
    want = plain(x, c)
    assert_array_equal(linear_recurrence(x, c), want)
    assert_array_equal(linear_recurrence(x, c)[0, :3], [31.0, 15.0, 7.0])
    for method in ("scan", "chunked"):
        with pytest.raises(ValueError, match="overflowed"):
            linear_recurrence(x, c, method=method)
    big = np.full((1, 3), 1e300)
    with pytest.warns(RuntimeWarning, match="overflowed"):
        assert not np.isfinite(linear_recurrence(big, big, method="loop")).all()
