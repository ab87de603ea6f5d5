"""Walker/Vose alias tables (refpg.alias, derivations/sampling.md#walker-alias-tables).

Exactness is checked by enumerating the columns of a table (written here, independently
of ``AliasTable.distribution``) against the probabilities it was built from, within the
rounding bound ``K 2^-52`` of the note. Sampling from a table (S4) is checked by
chi-square in tests/test_sampling.py.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from refpg.alias import alias_table


def enumerate_columns(table):
    """The law of an alias table, by enumerating its K columns (written here, independently)."""
    R, K = table.support.shape
    out = np.zeros((R, table.n_outcomes))
    for i in range(R):
        for k in range(K):
            out[i, table.support[i, k]] += table.threshold[i, k] / K
            out[i, table.support[i, table.alias[i, k]]] += (1.0 - table.threshold[i, k]) / K
    return out


@settings(max_examples=60)
@given(seed=st.integers(0, 2**32 - 1), R=st.integers(1, 5), M=st.integers(1, 40),
       zeros=st.floats(0.0, 0.9), spike=st.booleans())
def test_alias_table_reproduces_the_distribution_exactly(seed, R, M, zeros, spike):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(M, 0.3), size=R) * (rng.random((R, M)) >= zeros)
    if spike:
        p[:, 0] += 50.0          # one very heavy outcome
    p[:, -1] += (p.sum(axis=1) == 0)
    p /= p.sum(axis=1, keepdims=True)
    table = alias_table(p)
    K = table.n_columns
    assert K == int((p > 0).sum(axis=1).max())
    assert np.all((table.threshold >= 0) & (table.threshold <= 1))
    assert np.all((table.alias >= 0) & (table.alias < K))
    # every column that can be drawn returns an outcome of positive probability
    own = table.threshold > 0
    alias_used = table.threshold < 1
    rows = np.broadcast_to(np.arange(R)[:, None], (R, K))
    assert np.all(p[rows[own], table.support[own]] > 0)
    alias_out = np.take_along_axis(table.support, table.alias, axis=1)
    assert np.all(p[rows[alias_used], alias_out[alias_used]] > 0)
    # exactness: float64 sums of K terms of size 1/K, error <= K * 2^-52 (the note)
    assert_allclose(enumerate_columns(table), p, rtol=0, atol=K * 2.0 ** -52)
    assert_allclose(table.distribution(), p, rtol=0, atol=K * 2.0 ** -52)


@pytest.mark.parametrize("kind", ["ties", "wide", "spiky", "two-step"])
def test_alias_table_closed_form_sweep_on_wide_rows_and_exact_ties(kind):
    """The sweep is computed from cumulative sums (derivations/sampling.md#walker-alias-tables):
    exercise many columns, weights exactly 1 (ties between a light's deficit and a heavy's
    excess), one dominant outcome, and products of two laws (the shape of a two-step table)."""
    rng = np.random.default_rng(["ties", "wide", "spiky", "two-step"].index(kind))
    if kind == "ties":          # multiples of 1/8: w = K p hits 1 and the sums tie exactly
        p = rng.integers(0, 4, (6, 16)).astype(float)
    elif kind == "wide":
        p = rng.dirichlet(np.full(600, 0.2), size=4)
    elif kind == "spiky":
        p = rng.random((5, 300)) ** 30
        p[:, 7] += 1e6
    else:
        a = rng.dirichlet(np.ones(24), size=3)
        p = (a[:, :, None] * a[rng.integers(0, 3, 24)][None]).reshape(3, -1)
    p[:, 0] += p.sum(axis=1) == 0
    p /= p.sum(axis=1, keepdims=True)
    table = alias_table(p)
    assert np.all((table.threshold >= 0) & (table.threshold <= 1))
    assert_allclose(enumerate_columns(table), p, rtol=0, atol=table.n_columns * 2.0 ** -52)


def test_alias_table_of_a_point_mass_and_of_a_uniform():
    t = alias_table([[0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert_array_equal(enumerate_columns(t), [[0, 1, 0], [1 / 3, 1 / 3, 1 / 3]])


@pytest.mark.parametrize("bad, match", [
    ([[0.5, 0.6]], "sum to 1"), ([[1.5, -0.5]], "non-negative"), ([[np.nan, 1.0]], "finite"),
    ([0.5, 0.5], "dimension"), (np.zeros((1, 0)), "at least one"),
])
def test_alias_table_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        alias_table(bad)
