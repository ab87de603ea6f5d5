"""refpg.strategies: the strategies make valid objects across their range, validate their
arguments with InvalidArgument, and shrink the way derivations/strategies.md says.

Validity is checked by independent means: FiniteMDP's own validation, the row sums and
supports of P, exact evaluation succeeding (properness for gamma = 1), and hypothesis's
``find`` for the minimal (fully shrunk) examples.
"""
import numpy as np
import pytest
from hypothesis import find, given, settings, strategies as st
from hypothesis.errors import InvalidArgument

from refpg import FiniteMDP
from refpg.evaluation import check_policy_table, evaluate, evaluate_finite_horizon
from refpg.policies import LinearSoftmaxPolicy, MLPSoftmaxPolicy, SoftmaxPolicy, \
    TabularSoftmaxPolicy
from refpg.strategies import (OBSERVATION_KINDS, TABULAR_KINDS, Case, hard_cases, mdps,
                              named_cases, policies, policy_and_theta, policy_tables,
                              probability_vectors, thetas)


@given(mdps(n_states=st.integers(1, 6), n_actions=st.integers(1, 3), terminal=st.integers(0, 2),
            sparsity=st.floats(0.0, 0.95), horizon=st.none() | st.integers(1, 5)))
def test_mdps_are_valid_and_within_their_bounds(mdp):
    assert isinstance(mdp, FiniteMDP)
    S, A = mdp.n_states, mdp.n_actions
    assert 1 <= S <= 6 and 1 <= A <= 3 and 0.0 <= mdp.gamma <= 0.99
    assert mdp.horizon is None or 1 <= mdp.horizon <= 5
    np.testing.assert_allclose(mdp.P.sum(axis=-1), 1.0, rtol=0, atol=1e-14)  # normalised rows
    assert np.all(mdp.P >= 0) and np.all(np.isfinite(mdp.r)) and np.all(np.abs(mdp.r) <= 1.0)
    n_term = int(mdp.terminal.sum())
    assert n_term <= min(2, S - 1)
    np.testing.assert_array_equal(mdp.terminal[S - n_term:], True)   # the last ones
    assert np.all(mdp.rho0[mdp.terminal] == 0)
    if n_term:
        first = S - n_term
        assert np.all(mdp.P[~mdp.terminal, :, first] > 0)   # every row can terminate
        # hence every policy with full support is proper: gamma = 1 evaluation works
        ev = evaluate(mdp.replace(gamma=1.0), np.full((S, A), 1.0 / A))
        assert np.all(np.isfinite(ev.V))


@given(mdps(n_states=5, n_actions=2, sparsity=0.0))
def test_sparsity_zero_gives_dense_transitions(mdp):
    assert np.all(mdp.P > 0)


@given(mdps(n_states=5, n_actions=2, sparsity=0.8))
def test_high_sparsity_keeps_at_least_one_next_state(mdp):
    assert np.all((mdp.P > 0).sum(axis=-1) >= 1)


@given(mdps(gamma=1.0, horizon=4))
def test_gamma_one_with_a_horizon(mdp):
    assert mdp.gamma == 1.0 and mdp.horizon == 4
    fh = evaluate_finite_horizon(mdp, np.full((mdp.n_states, mdp.n_actions), 1 / mdp.n_actions))
    assert np.isfinite(fh.J)


@given(st.data())
def test_policies_over_an_mdp_are_tabular_capable_and_evaluable(data):
    mdp = data.draw(mdps())
    policy, theta = data.draw(policy_and_theta(mdp, scale=5.0))
    assert isinstance(policy, SoftmaxPolicy)
    assert (policy.n_states, policy.n_actions) == (mdp.n_states, mdp.n_actions)
    assert theta.shape == (policy.n_params,) and np.all(np.abs(theta) <= 5.0)
    check_policy_table(mdp, policy.probs_table(theta))
    assert np.isfinite(evaluate(mdp, policy.probs_table(theta)).eta)


@given(st.data())
def test_policies_without_an_mdp_cover_every_kind_and_respect_kinds(data):
    kind = data.draw(st.sampled_from(TABULAR_KINDS + OBSERVATION_KINDS))
    policy = data.draw(policies(kinds=kind))
    expected = {"tabular": TabularSoftmaxPolicy, "linear": LinearSoftmaxPolicy,
                "mlp": MLPSoftmaxPolicy, "linear_obs": LinearSoftmaxPolicy,
                "mlp_obs": MLPSoftmaxPolicy}[kind]
    assert type(policy) is expected
    assert (policy.n_states is None) == (kind in OBSERVATION_KINDS)
    theta = data.draw(thetas(policy))
    obs = (np.arange(policy.n_states) if policy.n_states is not None
           else np.ones((2, policy.obs_dim)))
    np.testing.assert_allclose(policy.probs(theta, obs).sum(axis=-1), 1.0, rtol=0, atol=1e-15)


@given(st.data())
def test_thetas_are_bounded_finite_vectors(data):
    policy = data.draw(policies())
    scale = data.draw(st.sampled_from([1e-3, 1.0, 1e3]))
    theta = data.draw(thetas(policy, scale=scale))
    assert theta.shape == (policy.n_params,) and theta.dtype == np.float64
    assert np.all(np.isfinite(theta)) and np.all(np.abs(theta) <= scale)
    theta = data.draw(thetas(policy, scale=st.just(2.0)))
    assert np.all(np.abs(theta) <= 2.0)


@given(st.data())
def test_probability_vectors_and_policy_tables(data):
    n = data.draw(st.integers(1, 6))
    mp = data.draw(st.sampled_from([0.0, 0.01, 1.0 / n]))
    p = data.draw(probability_vectors(n, min_prob=mp))
    assert p.shape == (n,) and np.all(p >= mp * (1 - 1e-12))
    np.testing.assert_allclose(p.sum(), 1.0, rtol=0, atol=1e-14)
    mdp = data.draw(mdps())
    pi = data.draw(policy_tables(mdp, min_prob=0.05 / mdp.n_actions))
    check_policy_table(mdp, pi)   # rows are probability vectors
    assert np.all(pi > 0)


def test_hard_cases_are_valid_and_named():
    cases = hard_cases()
    assert {"deterministic-mdp", "absorbing-state", "gamma-0.99", "episodic-gamma-1",
            "finite-horizon-gamma-1", "near-deterministic-softmax", "logits-1e3",
            "single-action"} <= set(cases)
    for name, case in cases.items():
        assert isinstance(case, Case) and case.name == name
        assert case.theta.shape == (case.policy.n_params,)
        pi = case.policy.probs_table(case.theta)
        check_policy_table(case.mdp, pi)
        if case.mdp.horizon is None:
            assert np.isfinite(evaluate(case.mdp, pi).eta)
    assert np.all(np.isin(cases["deterministic-mdp"].mdp.P, [0.0, 1.0]))
    assert cases["gamma-0.99"].mdp.gamma == 0.99 and cases["episodic-gamma-1"].mdp.gamma == 1.0
    assert np.max(np.abs(cases["logits-1e3"].theta)) > 500
    assert cases["single-action"].mdp.n_actions == 1
    assert hard_cases()["logits-1e3"].theta.tobytes() == cases["logits-1e3"].theta.tobytes()


@settings(max_examples=10)
@given(named_cases())
def test_named_cases_draws_from_the_registry(case):
    assert case.name in hard_cases()


# --- shrinking (derivations/strategies.md) ---------------------------------------------------

def test_mdps_shrink_to_one_state_one_action_gamma_zero_uniform():
    m = find(mdps(), lambda m: True)
    assert (m.n_states, m.n_actions, m.gamma) == (1, 1, 0.0)
    m = find(mdps(), lambda m: m.n_states >= 3)
    assert (m.n_states, m.n_actions, m.gamma) == (3, 1, 0.0)
    np.testing.assert_allclose(m.P, 1 / 3, rtol=1e-15, atol=0)   # dense and uniform
    np.testing.assert_array_equal(m.r, 0.0)
    np.testing.assert_allclose(m.rho0, 1 / 3, rtol=1e-15, atol=0)


def test_policies_thetas_and_probability_vectors_shrink_to_the_simplest():
    m = find(mdps(n_states=2, n_actions=3), lambda m: True)
    assert isinstance(find(policies(m), lambda p: True), TabularSoftmaxPolicy)
    np.testing.assert_array_equal(find(thetas(TabularSoftmaxPolicy(2, 3)), lambda t: True), 0.0)
    np.testing.assert_allclose(find(probability_vectors(4), lambda p: True), 0.25,
                               rtol=1e-15, atol=0)


# --- argument validation ---------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    dict(n_states=0), dict(n_actions=-1), dict(n_states=2.5), dict(gamma=1.5),
    dict(gamma=-0.1), dict(gamma=1.0), dict(sparsity=1.0), dict(terminal=-1),
    dict(reward_scale=-1.0), dict(reward_scale=float("nan")), dict(horizon=0),
    dict(gamma="0.9")])
def test_mdps_rejects_bad_arguments_when_built(kwargs):
    with pytest.raises(InvalidArgument, match=next(iter(kwargs))):
        mdps(**kwargs)


def test_mdps_rejects_an_undiscounted_infinite_horizon_draw():
    s = mdps(gamma=st.just(1.0))   # cannot be checked until drawn
    with pytest.raises(InvalidArgument, match="gamma drew 1.0"):
        find(s, lambda m: True)
    mdps(gamma=1.0, terminal=1)       # these are fine
    mdps(gamma=1.0, horizon=3)


def test_other_strategies_reject_bad_arguments():
    mdp = find(mdps(n_states=2, n_actions=2), lambda m: True)
    with pytest.raises(InvalidArgument, match="kind"):
        policies(kinds=("tabular", "transformer"))
    with pytest.raises(InvalidArgument, match="observation vectors"):
        policies(mdp, kinds="mlp_obs")
    with pytest.raises(InvalidArgument, match="mdp"):
        policies("not an mdp")
    with pytest.raises(InvalidArgument, match="kinds"):
        policies(kinds=())
    with pytest.raises(InvalidArgument, match="scale"):
        thetas(TabularSoftmaxPolicy(1, 2), scale=0.0)
    with pytest.raises(InvalidArgument, match="scale"):
        thetas(TabularSoftmaxPolicy(1, 2), scale=float("inf"))
    with pytest.raises(InvalidArgument, match="policy"):
        thetas("policy")
    with pytest.raises(InvalidArgument, match="min_prob"):
        probability_vectors(4, min_prob=0.3)
    with pytest.raises(InvalidArgument, match="size"):
        probability_vectors(0)
    with pytest.raises(InvalidArgument, match="mdp"):
        policy_tables(None)
    with pytest.raises(InvalidArgument, match="min_prob"):
        policy_tables(mdp, min_prob=0.6)
