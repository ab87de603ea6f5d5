"""Tests for refpg.mdp: validation of FiniteMDP and seeded random MDPs.

Every rejection must be a ValueError/TypeError whose message names the
offending argument (derivations/mdp.md#the-finite-mdp); random_mdp must be
bit-reproducible per seed and produce what its docstring promises
(derivations/mdp.md#random-mdps).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refpg.mdp import FiniteMDP, random_mdp


def _good(S=3, A=2):
    """A valid MDP's fields (uniform transitions), to perturb one at a time."""
    return dict(P=np.full((S, A, S), 1.0 / S), r=np.zeros((S, A)), rho0=np.full(S, 1.0 / S),
                gamma=0.9)


def _absorbing(S=3, A=2):
    """Valid fields with the last state terminal (absorbing, zero reward)."""
    f = _good(S, A)
    f["P"][S - 1] = 0.0
    f["P"][S - 1, :, S - 1] = 1.0
    f["terminal"] = np.arange(S) == S - 1
    return f


def test_valid_mdp_is_accepted_and_read_only():
    mdp = FiniteMDP(**_good())
    assert (mdp.n_states, mdp.n_actions) == (3, 2)
    assert mdp.P.dtype == np.float64 and mdp.r.dtype == np.float64
    assert not mdp.terminal.any()
    for arr in (mdp.P, mdp.r, mdp.rho0, mdp.terminal):
        with pytest.raises(ValueError):
            arr[0] = 0  # stored read-only: numpy refuses in-place writes


def test_inputs_are_copied_not_aliased():
    f = _good()
    mdp = FiniteMDP(**f)
    f["P"][0, 0, 0] = 5.0  # mutating the caller's array must not reach the MDP
    assert mdp.P[0, 0, 0] == pytest.approx(1.0 / 3.0, rel=1e-15)


# One row per failure mode: (field overrides, exception type, text the message must contain).
BAD = [
    ("P rows do not sum to 1", dict(P=np.full((3, 2, 3), 0.3)), ValueError, "P"),
    ("P negative entry", dict(P=np.array([[[1.5, -0.5, 0.0]] * 2] * 3)), ValueError, "P"),
    ("P NaN", dict(P=np.where(np.arange(3) == 0, np.nan, 0.5)[None, None, :]
                   * np.ones((3, 2, 3))), ValueError, "P"),
    ("P inf", dict(P=np.full((3, 2, 3), np.inf)), ValueError, "P"),
    ("P rank 2", dict(P=np.full((3, 3), 1 / 3)), ValueError, "P"),
    ("P not (S, A, S)", dict(P=np.full((3, 2, 4), 0.25)), ValueError, "P"),
    ("P complex", dict(P=np.full((3, 2, 3), 1 / 3 + 0j)), TypeError, "P"),
    ("P strings", dict(P=np.full((3, 2, 3), "a")), TypeError, "P"),
    ("r wrong shape", dict(r=np.zeros((2, 3))), ValueError, "r"),
    ("r NaN", dict(r=np.array([[0.0, np.nan]] * 3)), ValueError, "r"),
    ("rho0 wrong shape", dict(rho0=np.full(4, 0.25)), ValueError, "rho0"),
    ("rho0 sum", dict(rho0=np.array([0.5, 0.2, 0.2])), ValueError, "rho0"),
    ("rho0 negative", dict(rho0=np.array([1.2, -0.2, 0.0])), ValueError, "rho0"),
    ("rho0 NaN", dict(rho0=np.array([np.nan, 0.5, 0.5])), ValueError, "rho0"),
    ("gamma negative", dict(gamma=-0.1), ValueError, "gamma"),
    ("gamma above 1", dict(gamma=1.01), ValueError, "gamma"),
    ("gamma NaN", dict(gamma=float("nan")), ValueError, "gamma"),
    ("gamma string", dict(gamma="0.9"), TypeError, "gamma"),
    ("gamma = 1 without horizon or terminal", dict(gamma=1.0), ValueError, "gamma"),
    ("terminal wrong dtype", dict(terminal=np.array([0, 0, 1])), ValueError, "terminal"),
    ("terminal wrong shape", dict(terminal=np.array([False, True])), ValueError, "terminal"),
    ("terminal not absorbing", dict(terminal=np.array([False, False, True])), ValueError,
     "terminal"),
    ("horizon zero", dict(horizon=0), ValueError, "horizon"),
    ("horizon float", dict(horizon=2.5), TypeError, "horizon"),
    ("horizon bool", dict(horizon=True), TypeError, "horizon"),
]


@pytest.mark.parametrize("overrides, exc, text", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_rejected_naming_the_argument(overrides, exc, text):
    fields = _good()
    fields.update(overrides)
    with pytest.raises(exc) as info:
        FiniteMDP(**fields)
    assert text in str(info.value), str(info.value)


def test_terminal_state_with_reward_is_rejected():
    f = _absorbing()
    f["r"] = np.zeros((3, 2))
    f["r"][2, 1] = 1.0
    with pytest.raises(ValueError, match="terminal.*zero reward"):
        FiniteMDP(**f)


def test_terminal_and_gamma_one_are_accepted_when_absorbing():
    f = _absorbing()
    f["gamma"] = 1.0
    mdp = FiniteMDP(**f)
    assert mdp.terminal.tolist() == [False, False, True]
    # gamma = 1 with a horizon but no terminal state is also well defined
    assert FiniteMDP(**dict(_good(), gamma=1.0, horizon=5)).horizon == 5


def test_reward_of_next_state_is_reduced_by_expectation():
    rng = np.random.default_rng(3)
    S, A = 4, 3
    P = rng.dirichlet(np.ones(S), size=(S, A))
    r3 = rng.standard_normal((S, A, S))
    mdp = FiniteMDP(P=P, r=r3, rho0=np.full(S, 0.25), gamma=0.5)
    # explicit double loop: r(s, a) = sum_s' P(s'|s, a) r(s, a, s') (CONVENTIONS.md)
    expected = np.array([[sum(P[s, a, t] * r3[s, a, t] for t in range(S)) for a in range(A)]
                         for s in range(S)])
    np.testing.assert_allclose(mdp.r, expected, rtol=1e-13, atol=1e-15)  # sums of 4 products


def test_actions_first_layout_is_rejected_when_shapes_differ():
    # pymdptoolbox / mushroom-rl store P as (A, S, S); with A != S refpg cannot read it as (S, A, S)
    S, A = 4, 2
    P_ass = np.full((A, S, S), 1.0 / S)
    with pytest.raises(ValueError, match="P must have shape"):
        FiniteMDP(P=P_ass, r=np.zeros((S, A)), rho0=np.full(S, 1 / S), gamma=0.9)


def test_replace_validates_again():
    mdp = FiniteMDP(**_good())
    assert mdp.replace(gamma=0.5).gamma == 0.5
    with pytest.raises(ValueError, match="gamma"):
        mdp.replace(gamma=2.0)


# ------------------------------------------------------------------------- random MDPs

@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), S=st.integers(1, 6), A=st.integers(1, 4),
       sparsity=st.floats(0.0, 0.95), n_terminal_frac=st.floats(0.0, 0.99))
def test_random_mdp_is_bit_reproducible_and_well_formed(seed, S, A, sparsity, n_terminal_frac):
    n_terminal = int(n_terminal_frac * S) if S > 1 else 0
    n_terminal = min(n_terminal, S - 1)
    m1 = random_mdp(np.random.default_rng(seed), S, A, sparsity=sparsity, n_terminal=n_terminal)
    m2 = random_mdp(np.random.default_rng(seed), S, A, sparsity=sparsity, n_terminal=n_terminal)
    for f in ("P", "r", "rho0", "terminal"):
        np.testing.assert_array_equal(getattr(m1, f), getattr(m2, f))  # bit-identical
    # rows are distributions over exactly k = max(1, round((1 - sparsity) S)) next states
    k = max(1, int(round((1.0 - sparsity) * S)))
    live = ~m1.terminal
    support = (m1.P > 0).sum(axis=2)
    assert np.all(support[live] <= k)  # Dirichlet(1) draws are > 0 a.s., so == k in practice
    np.testing.assert_allclose(m1.P.sum(axis=2), 1.0, rtol=0, atol=1e-12)  # float64 sums
    assert int(m1.terminal.sum()) == n_terminal
    assert np.all(m1.rho0[m1.terminal] == 0)


def test_random_mdp_different_seeds_differ():
    m1 = random_mdp(np.random.default_rng(0), 4, 3)
    m2 = random_mdp(np.random.default_rng(1), 4, 3)
    assert not np.array_equal(m1.P, m2.P)


def test_random_mdp_depends_only_on_its_generator():
    rng = np.random.default_rng(7)
    a = random_mdp(rng, 3, 2)
    b = random_mdp(rng, 3, 2)  # a continued stream gives a new MDP, not a repeat
    assert not np.array_equal(a.P, b.P)
    c = random_mdp(np.random.default_rng(7), 3, 2)
    np.testing.assert_array_equal(a.P, c.P)


RANDOM_BAD = [
    ("rng not a Generator", dict(rng=np.random.RandomState(0)), TypeError, "rng"),
    ("rng seed int", dict(rng=0), TypeError, "rng"),
    ("n_states zero", dict(n_states=0), ValueError, "n_states"),
    ("n_actions float", dict(n_actions=2.0), TypeError, "n_actions"),
    ("sparsity 1", dict(sparsity=1.0), ValueError, "sparsity"),
    ("sparsity NaN", dict(sparsity=float("nan")), ValueError, "sparsity"),
    ("reward_scale negative", dict(reward_scale=-1.0), ValueError, "reward_scale"),
    ("reward_scale inf", dict(reward_scale=float("inf")), ValueError, "reward_scale"),
    ("n_terminal all states", dict(n_terminal=3), ValueError, "n_terminal"),
    ("n_terminal float", dict(n_terminal=1.5), TypeError, "n_terminal"),
    ("gamma 1 without terminal", dict(gamma=1.0), ValueError, "gamma"),
    ("gamma above 1", dict(gamma=1.5), ValueError, "gamma"),
]


@pytest.mark.parametrize("overrides, exc, text", [b[1:] for b in RANDOM_BAD],
                         ids=[b[0] for b in RANDOM_BAD])
def test_random_mdp_rejects_bad_arguments(overrides, exc, text):
    kwargs = dict(rng=np.random.default_rng(0), n_states=3, n_actions=2)
    kwargs.update(overrides)
    with pytest.raises(exc) as info:
        random_mdp(**kwargs)
    assert text in str(info.value), str(info.value)


def test_random_mdp_with_terminal_states_supports_gamma_one():
    mdp = random_mdp(np.random.default_rng(0), 5, 2, gamma=1.0, n_terminal=1)
    assert mdp.gamma == 1.0 and mdp.terminal[-1]
    np.testing.assert_array_equal(mdp.P[4, :, 4], 1.0)
    np.testing.assert_array_equal(mdp.r[4], 0.0)
