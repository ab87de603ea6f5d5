"""Shared fixtures of the estimator tests (tests/test_estimators.py, tests/test_off_policy.py).

Not a test module (pytest collects ``test_*.py`` only): the hypothesis strategy of small
random problems and the two ways an exact mean is compared, against enumeration (rounding
tolerance) and against Monte Carlo (a z-bound from the exact covariance).
"""
import numpy as np
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import norm

from refpg import TabularSoftmaxPolicy, random_mdp
from refpg.policies import LinearSoftmaxPolicy


@st.composite
def problems(draw, max_states=3, max_actions=3, max_horizon=4, linear=True):
    """A small random MDP (S <= 3, A <= 3, H <= 4), a policy and theta.

    Shrinks toward S = A = H = 1. The policy is tabular softmax or (``linear``) a
    linear softmax on random features with k != S*A, so ``d`` is not ``S A``.
    """
    seed = draw(st.integers(0, 2 ** 32 - 1))
    S = draw(st.integers(1, max_states))
    A = draw(st.integers(1, max_actions))
    H = draw(st.integers(1, max_horizon))
    gamma = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))
    n_terminal = draw(st.integers(0, S - 1))
    sparsity = draw(st.sampled_from([0.0, 0.5]))
    kind = draw(st.sampled_from(["tabular", "linear"] if linear else ["tabular"]))
    scale = draw(st.sampled_from([0.3, 1.0, 2.0]))
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, S, A, gamma=gamma, n_terminal=n_terminal, sparsity=sparsity,
                     horizon=H)
    if kind == "tabular":
        policy = TabularSoftmaxPolicy.for_mdp(mdp)
    else:
        policy = LinearSoftmaxPolicy(rng.standard_normal((S, A, 2)))
    theta = policy.init_params(rng, scale=scale)
    return mdp, policy, theta, H


def assert_exact_mean(contrib, batch, p, desired, what):
    # exact enumeration in float64: rounding of a probability-weighted sum is relative to
    # the sum of the magnitudes of its terms, so the tolerance is 1e-12 of that scale.
    mean = p @ contrib
    scale = float(np.max(p @ np.abs(contrib))) + 1e-300
    assert_allclose(mean, desired, rtol=0, atol=1e-12 * scale, err_msg=what)


def z_bound(d, alpha=1e-6):
    """Per-component two-sided z with Bonferroni over d components: family-wise false-alarm
    rate alpha = 1e-6 for a Gaussian mean (CLT; n >= 10^4 episodes here)."""
    return norm.isf(alpha / (2 * d))


def assert_mc_mean(samples, exact_mean, exact_cov, what):
    n, d = samples.shape
    sd = np.sqrt(np.maximum(np.diag(exact_cov), 0.0) / n)
    dev = samples.mean(axis=0) - exact_mean
    z = z_bound(d)
    # components with zero exact variance are constant: they must agree to rounding
    tol = np.where(sd > 0, z * sd, 1e-12 * (1 + np.abs(exact_mean)))
    assert np.all(np.abs(dev) <= tol), (what, dev / np.where(sd > 0, sd, 1), z)


def mc_problem():
    mdp = random_mdp(np.random.default_rng(21), 3, 2, gamma=0.9, n_terminal=1, horizon=4)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(np.random.default_rng(22), scale=1.0)
    return mdp, policy, theta


def decimal_gradient(mdp, theta, horizon, digits=60):
    """``grad J_H`` of a tabular softmax policy in ``digits``-digit decimal arithmetic.

    Brute force over every trajectory (``rho0``, ``P``, ``r`` read exactly from their
    float64 values): ``sum_tau p(tau) R(tau) sum_t (e_{a_t} - pi_{s_t})`` (G1-G2), with
    ``pi`` the softmax of ``theta`` computed with ``Decimal.exp``. No refpg code and
    no float64 rounding: the reference for near-deterministic policies, where float64
    routes lose the advantage of the likely action to cancellation. Tiny MDPs only
    (``(S A)^H`` trajectories per start state); terminal states are not modelled.
    """
    import itertools
    from decimal import Decimal, localcontext

    S, A = mdp.n_states, mdp.n_actions
    with localcontext() as ctx:
        ctx.prec = digits
        D = lambda x: Decimal(float(x))                                     # noqa: E731
        z = [[D(theta[s * A + a]) for a in range(A)] for s in range(S)]
        pi = [[z[s][a].exp() / sum(z[s][b].exp() for b in range(A)) for a in range(A)]
              for s in range(S)]
        grad = [Decimal(0)] * (S * A)
        for s0 in range(S):
            for seq in itertools.product(range(A), range(S), repeat=horizon):
                states = [s0] + [seq[2 * i + 1] for i in range(horizon)]
                acts = [seq[2 * i] for i in range(horizon)]
                p = D(mdp.rho0[s0])
                for t in range(horizon):
                    p *= pi[states[t]][acts[t]] * D(mdp.P[states[t], acts[t], states[t + 1]])
                if p == 0:
                    continue
                R = sum(D(mdp.gamma) ** t * D(mdp.r[states[t], acts[t]]) for t in range(horizon))
                for t in range(horizon):
                    s, a = states[t], acts[t]
                    for b in range(A):
                        grad[s * A + b] += p * R * ((1 if b == a else 0) - pi[s][b])
        return np.array([float(g) for g in grad])
