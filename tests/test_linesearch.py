"""Backtracking line search (refpg.linesearch, derivations/linesearch.md).

Independent route: on a quadratic model, ``KL(theta_old + f s) = f^2 k_1`` and
``L(theta_old + f s) - L(theta_old) = f a - f^2 b`` with known ``k_1, a, b``, so the
first accepted fraction has a closed form (derivations/linesearch.md#a-closed-form-check);
plus postconditions of (LS2), NaN handling and every peer option.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from refpg.linesearch import AcceptanceRule, backtracking_line_search


def _quadratic(seed, d=4):
    rng = np.random.default_rng(seed)
    theta_old = rng.standard_normal(d)
    s = rng.standard_normal(d)
    B = rng.standard_normal((d, d))
    F = B @ B.T + np.eye(d)                    # KL model, positive definite
    H = np.eye(d) * 0.5                        # concave surrogate
    g = rng.standard_normal(d)
    if g @ s < 0:
        g = -g                                 # s is an ascent direction

    def surrogate(th):
        x = th - theta_old
        return float(g @ x - 0.5 * x @ H @ x)

    def kl(th):
        x = th - theta_old
        return float(0.5 * x @ F @ x)

    k1 = 0.5 * s @ F @ s
    a, b = g @ s, 0.5 * s @ H @ s
    return theta_old, s, surrogate, kl, k1, a, b


@settings(max_examples=25)
@given(seed=st.integers(0, 2 ** 31), max_kl=st.floats(1e-4, 10.0),
       shrink=st.sampled_from([0.5, 0.8]))
def test_first_accepted_fraction_matches_the_closed_form(seed, max_kl, shrink):
    theta_old, s, surrogate, kl, k1, a, b = _quadratic(seed)
    res = backtracking_line_search(theta_old, s, surrogate, kl, max_kl=max_kl, shrink=shrink,
                                   max_backtracks=200)
    # closed form: f = shrink^k is accepted iff f^2 k1 <= delta and f a - f^2 b > 0,
    # i.e. f <= sqrt(delta / k1) and f < a / b
    f_max = min(math.sqrt(max_kl / k1), a / b * (1 - 1e-12))
    k_star = 0 if f_max >= 1 else math.ceil(math.log(f_max) / math.log(shrink) - 1e-12)
    assert res.accepted
    # boundary cases within rounding of the log may shift k by one; exclude them
    exact_boundary = abs(math.log(f_max) / math.log(shrink) - round(
        math.log(f_max) / math.log(shrink))) < 1e-9
    if not exact_boundary:
        assert res.n_backtracks == k_star
    # postconditions of (LS2) on the returned point, recomputed
    assert kl(res.theta) <= max_kl and surrogate(res.theta) - surrogate(theta_old) > 0
    assert_allclose(res.theta, theta_old + res.step_fraction * s, rtol=1e-15, atol=1e-15)
    assert all(not t.accepted for t in res.trials[:-1]) and res.trials[-1].accepted


def test_nothing_accepted_returns_the_old_parameters_unchanged():
    theta_old = np.array([1.0, 2.0])
    res = backtracking_line_search(theta_old, np.array([1.0, 0.0]),
                                   lambda th: -float(th[0]), lambda th: 0.0, max_kl=0.01,
                                   max_backtracks=5)
    assert not res.accepted
    assert np.array_equal(res.theta, theta_old) and res.theta is not theta_old
    assert res.step_fraction == 0.0 and res.kl == 0.0 and res.improvement == 0.0
    assert res.n_backtracks == 5 and len(res.trials) == 6
    assert "unchanged" in res.reason
    kept = backtracking_line_search(theta_old, np.array([1.0, 0.0]),
                                    lambda th: -float(th[0]), lambda th: 0.0, max_kl=0.01,
                                    max_backtracks=5, on_failure="keep_last")
    assert not kept.accepted
    assert_allclose(kept.theta, theta_old + 0.5 ** 5 * np.array([1.0, 0.0]), rtol=0, atol=0)


def test_nan_rejects_in_every_comparison():
    theta_old = np.zeros(1)
    step = np.ones(1)

    def nan_at_full(th):             # NaN at the full step, fine after one backtrack
        return float("nan") if th[0] > 0.75 else float(th[0])

    res = backtracking_line_search(theta_old, step, nan_at_full, lambda th: 0.0, max_kl=1.0)
    assert res.accepted and res.n_backtracks == 1
    assert "not finite" in res.trials[0].reason
    res = backtracking_line_search(theta_old, step, lambda th: float(th[0]),
                                   lambda th: float("nan"), max_kl=1.0, max_backtracks=3)
    assert not res.accepted
    for rule in (AcceptanceRule(kl_comparison="lt"), AcceptanceRule(check_kl=False),
                 AcceptanceRule(improvement_comparison="ge", min_improvement_ratio=0.1)):
        res = backtracking_line_search(theta_old, step,
                                       lambda th: 0.0 if th[0] == 0 else float("nan"),
                                       lambda th: float("nan"), max_kl=1.0, max_backtracks=2,
                                       rule=rule, expected_improvement=1.0)
        assert not res.accepted
    res = backtracking_line_search(theta_old, step,
                                   lambda th: 0.0 if th[0] == 0 else float("inf"),
                                   lambda th: 0.0, max_kl=1.0, max_backtracks=1)
    assert not res.accepted


def test_peer_acceptance_rules():
    theta_old = np.zeros(1)
    step = np.ones(1)
    at_bound = lambda th: 0.01                                   # noqa: E731
    up = lambda th: float(th[0])                                 # noqa: E731
    flat = lambda th: 0.0                                        # noqa: E731
    # KL exactly at delta: accepted by "<=" (refpg, rllab, spinningup), not by "<" (sb3-contrib)
    assert backtracking_line_search(theta_old, step, up, at_bound, max_kl=0.01).accepted
    lt = AcceptanceRule(kl_comparison="lt")
    assert not backtracking_line_search(theta_old, step, up, at_bound, max_kl=0.01, rule=lt,
                                        max_backtracks=2).accepted
    # zero improvement: rejected by "> 0" (refpg), accepted by ">= 0" (baselines, pfrl)
    assert not backtracking_line_search(theta_old, step, flat, lambda th: 0.0, max_kl=0.01,
                                        max_backtracks=2).accepted
    ge = AcceptanceRule(improvement_comparison="ge")
    assert backtracking_line_search(theta_old, step, flat, lambda th: 0.0, max_kl=0.01,
                                    rule=ge).accepted
    # baselines' slack: KL <= 1.5 delta
    slack = AcceptanceRule(kl_slack=1.5)
    r = backtracking_line_search(theta_old, step, up, lambda th: 0.014, max_kl=0.01, rule=slack)
    assert r.accepted and r.n_backtracks == 0
    # modular_rl: ratio actual/expected > 0.1, KL never checked (a KL of 100 passes)
    mrl = AcceptanceRule(check_kl=False, min_improvement_ratio=0.1)
    r = backtracking_line_search(theta_old, step, lambda th: 0.05 * th[0], lambda th: 100.0,
                                 max_kl=0.01, rule=mrl, expected_improvement=1.0)
    assert not r.accepted                                         # ratio 0.05 at every f
    r = backtracking_line_search(theta_old, step, lambda th: 0.2 * th[0], lambda th: 100.0,
                                 max_kl=0.01, rule=mrl, expected_improvement=1.0)
    assert r.accepted and r.kl == 100.0


def test_invalid_options_raise():
    th = np.zeros(2)
    with pytest.raises(ValueError, match="shrink"):
        backtracking_line_search(th, th, lambda t: 0.0, lambda t: 0.0, max_kl=0.1, shrink=1.0)
    with pytest.raises(ValueError, match="max_kl"):
        backtracking_line_search(th, th, lambda t: 0.0, lambda t: 0.0, max_kl=0.0)
    with pytest.raises(ValueError, match="kl_comparison"):
        AcceptanceRule(kl_comparison="<=")
    with pytest.raises(ValueError, match="checks nothing"):
        AcceptanceRule(check_kl=False, improvement_comparison="none")
    with pytest.raises(ValueError, match="not finite"):
        backtracking_line_search(th, th, lambda t: float("nan"), lambda t: 0.0, max_kl=0.1)
    with pytest.raises(TypeError, match="real scalar"):
        backtracking_line_search(th, th, lambda t: np.zeros(2), lambda t: 0.0, max_kl=0.1)
