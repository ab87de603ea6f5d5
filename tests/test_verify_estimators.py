"""refpg.verify.estimators and refpg.verify.stats: the estimator verifiers (V2).

Independent routes: a from-scratch loop implementation of every named estimator
(explicit double sums for the returns, no refpg code), refpg.estimators itself,
dynamic programming against enumeration for the exact means and variances, tuple
enumeration for the U-statistic laws, closed-form Chernoff exponents (binary KL) and
exact binomial tails for the thresholds, and many seeds for the false-alarm rate.
"""
import itertools

import numpy as np
import pytest

from refpg import estimators as E
from refpg import moments as M
from refpg.evaluation import evaluate_finite_horizon
from refpg.mdp import random_mdp
from refpg.policies.tabular import TabularSoftmaxPolicy
from refpg.policy_gradient import exact_finite_horizon_gradient
from refpg.sampling import sample_batch
from refpg.verify import estimators as VE
from refpg.verify import stats as VS
from refpg.verify.estimators import (EstimatorClaim, exact_estimator_mean,
                                     golden_estimator_vectors, reference_estimate,
                                     verify_estimator)
from refpg.verify.stats import (chernoff_threshold, estimator_units, mean_test,
                                verify_estimator_mean)
from refpg.verify.vectors import to_json

CLAIMS = ([("reinforce", "discounted", b)
           for b in ("none", "constant:0.5", "mean", "leave_one_out")]
          + [("reward_to_go", w, b) for w in ("discounted", "uniform")
             for b in ("none", "constant:-0.3", "mean", "leave_one_out", "value")])


# ------------------------------------------------------------------ an independent implementation
def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _episodes(layout, states, actions, rewards, mask, values):
    """Per-episode tuples (s, a, r, v) of 1-D arrays from any layout."""
    if layout == "episodes":
        vs = values if values is not None else [None] * len(states)
        return [(np.asarray(s), np.asarray(a), np.asarray(r), v)
                for s, a, r, v in zip(states, actions, rewards, vs)]
    arrs = [states, actions, rewards, mask] + ([values] if values is not None else [])
    if layout == "time_major":
        arrs = [np.asarray(x).T for x in arrs]
    s, a, r, m = arrs[:4]
    v = arrs[4] if values is not None else None
    out = []
    for i in range(len(s)):
        L = int(np.sum(m[i]))
        out.append((s[i][:L], a[i][:L], r[i][:L], None if v is None else v[i][:L]))
    return out


def _constant(baseline):
    return float(baseline.split(":")[1]) if baseline.startswith("constant") else 0.0


def loop_estimator(estimator="reward_to_go", weighting="discounted", baseline="none",
                   layout="batch_major", sign="ascent", reduction="episodes"):
    """Every named estimator written from its definition with Python loops (no refpg)."""
    def f(logits, states, actions, rewards, mask, gamma, values=None):
        eps = _episodes(layout, states, actions, rewards, mask, values)
        N = len(eps)
        pi = _softmax(np.asarray(logits, dtype=float))
        T = max(len(e[2]) for e in eps)

        def G(r, t):                                   # sum_{t' >= t} gamma^(t'-t) r_t'
            return sum(gamma ** (u - t) * r[u] for u in range(t, len(r)))

        R = [G(e[2], 0) for e in eps]
        Gt = [[G(e[2], t) if t < len(e[2]) else 0.0 for t in range(T)] for e in eps]
        grad = np.zeros_like(pi)
        for i, (s, a, r, v) in enumerate(eps):
            others = [j for j in range(N) if j != i]
            for t in range(len(r)):
                if estimator == "reinforce":
                    if baseline == "mean":
                        b = sum(R) / N
                    elif baseline == "leave_one_out":
                        b = sum(R[j] for j in others) / (N - 1)
                    else:
                        b = _constant(baseline)
                    c = R[i] - b
                else:
                    if baseline == "mean":
                        b = sum(Gt[j][t] for j in range(N)) / N
                    elif baseline == "leave_one_out":
                        b = sum(Gt[j][t] for j in others) / (N - 1)
                    elif baseline == "value":
                        b = v[t]
                    else:
                        b = _constant(baseline)
                    c = (gamma ** t if weighting == "discounted" else 1.0) * (Gt[i][t] - b)
                for k in range(pi.shape[1]):          # d log softmax(z_s)_a / d z_{s,k}
                    grad[s[t], k] += c * ((k == a[t]) - pi[s[t], k])
        n = sum(len(e[2]) for e in eps) if reduction == "steps" else N
        return (-grad if sign == "loss" else grad) / n
    return f


def _small_model(seed=11, S=3, A=2, H=3, gamma=0.8, sparsity=0.5):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, S, A, gamma=gamma, n_terminal=1, horizon=H, sparsity=sparsity)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    return mdp, policy, policy.init_params(rng, scale=1.0)


# --------------------------------------------------------------------------- deterministic mode
def test_reference_estimate_is_refpgs_named_estimator():
    rng = np.random.default_rng(3)
    mdp, policy, theta, inp = VE._sampled_inputs(rng, 4, 3, 6, 0.9, 1, 7, 1.0)
    batch = sample_batch(mdp, policy, theta, 7, np.random.default_rng(4), horizon=6)
    V = evaluate_finite_horizon(mdp, policy.probs_table(theta), 6).V
    t = np.broadcast_to(np.arange(6), batch.mask.shape)
    values = np.where(batch.mask, V[t, batch.states], 0.0)
    args = (theta.reshape(4, 3), batch.states, batch.actions, batch.rewards, batch.mask, 0.9)
    named = {
        ("reinforce", "discounted", "leave_one_out"):
            E.reinforce(batch, policy, theta, 0.9, baseline="leave_one_out"),
        ("reward_to_go", "uniform", "value"):
            E.reinforce_reward_to_go(batch, policy, theta, 0.9, weighting="uniform",
                                     state_values=V),
        ("reward_to_go", "discounted", "mean"):
            E.reinforce_reward_to_go(batch, policy, theta, 0.9, baseline="mean"),
    }
    for (est, w, b), g in named.items():
        got = reference_estimate(*args, values=values, estimator=est, weighting=w, baseline=b)
        # same sums, different code path (state_values table vs per-step values): rounding only
        np.testing.assert_allclose(got.ravel(), g, rtol=1e-13, atol=1e-14)
    c = E.estimator_coefficients(batch, 0.9, estimator="reward_to_go", weighting="uniform")
    steps = E.pseudo_loss_gradient(batch, policy, theta, c, reduction="steps")
    got = reference_estimate(*args, weighting="uniform", sign="loss", reduction="steps")
    np.testing.assert_allclose(got.ravel(), steps, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("claim", CLAIMS, ids=["-".join(c) for c in CLAIMS])
def test_independent_loop_implementation_passes_in_every_layout(claim):
    est, w, b = claim
    for layout, sign, reduction in (("batch_major", "ascent", "episodes"),
                                    ("time_major", "loss", "steps"),
                                    ("episodes", "ascent", "steps")):
        opts = dict(estimator=est, weighting=w, baseline=b, layout=layout, sign=sign,
                    reduction=reduction)
        rep = verify_estimator(loop_estimator(**opts), **opts)
        assert rep.passed, str(rep)
        assert rep.worst_error < 1e-12       # two float64 routes: rounding only


def test_loop_implementation_agrees_with_reference_to_rounding():
    rng = np.random.default_rng(5)
    inp = VE._sampled_inputs(rng, 3, 2, 5, 0.9, 1, 6, 1.0)[3]
    for est, w, b in CLAIMS:
        ref = reference_estimate(inp["logits"], inp["states"], inp["actions"], inp["rewards"],
                                 inp["mask"], inp["gamma"], values=inp["values"], estimator=est,
                                 weighting=w, baseline=b)
        got = loop_estimator(est, w, b)(inp["logits"], inp["states"], inp["actions"],
                                        inp["rewards"], inp["mask"], inp["gamma"], inp["values"])
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)  # float64 rounding only


def test_wrong_claim_fails_shrinks_and_names_the_matching_convention():
    user = loop_estimator("reward_to_go", "uniform", "none")
    rep = verify_estimator(user)                      # claims discounted weighting
    assert not rep.passed and rep.problem == "mismatch"
    assert rep.shrunk_from is not None and np.asarray(rep.inputs["rewards"]).shape[1] <= 2
    assert any("weighting=uniform" in n for n in rep.notes), rep.notes
    rep = verify_estimator(loop_estimator(sign="loss"))
    assert any("sign=loss" in n for n in rep.notes), rep.notes
    rep.to_json()


def test_float32_code_fails_at_1e_8_and_passes_at_1e_5_and_in_the_statistical_mode():
    good = loop_estimator()

    def f32(logits, states, actions, rewards, mask, gamma):
        out = good(np.float32(logits), states, actions, np.float32(rewards), mask,
                   np.float32(gamma))
        return (out + np.float32(0)).astype(np.float32)

    # float32 relative rounding ~6e-8 per operation: above 1e-8, far below 1e-5
    assert not verify_estimator(f32).passed
    rep = verify_estimator(f32, rtol=1e-5)
    assert rep.passed and any("rtol = 1e-05" in d for d in rep.departures)
    assert verify_estimator_mean(f32, n_batches=300).passed


@pytest.mark.parametrize("bad, words", [
    (lambda *a: 1 / 0, "raised ZeroDivisionError"),
    (lambda *a: np.zeros(3), "shape"),
    (lambda *a: np.full(a[0].shape, np.nan), "non-finite"),
    (lambda *a: np.array([["x"]]), "non-numeric"),
    (lambda *a: None, "non-numeric"),
    (lambda *a: a[0].ravel(), "shape"),
])
def test_broken_user_functions_give_failed_reports_never_exceptions(bad, words):
    for rep in (verify_estimator(bad), verify_estimator_mean(bad, n_batches=10)):
        assert not rep.passed and words in rep.problem, rep.problem
        str(rep)
        rep.to_json()


def test_a_function_that_mutates_its_inputs_cannot_corrupt_the_cases():
    good = loop_estimator(baseline="value")

    def vandal(logits, states, actions, rewards, mask, gamma, values):
        out = good(logits, states, actions, rewards, mask, gamma, values)
        for x in (logits, states, actions, rewards, mask, values):
            x[...] = 0
        return out

    assert verify_estimator(vandal, baseline="value").passed
    assert verify_estimator_mean(vandal, baseline="value", n_batches=200).passed


def test_options_are_validated_by_refpg():
    f = loop_estimator()
    for kw in (dict(estimator="gae"), dict(baseline="constant:x"), dict(baseline="median"),
               dict(layout="flat"), dict(sign="descent"), dict(reduction="tokens"),
               dict(estimator="reinforce", baseline="value"),
               dict(estimator="reinforce", weighting="uniform"), dict(rtol=0.0)):
        with pytest.raises(ValueError):
            verify_estimator(f, **kw)
    with pytest.raises(ValueError):
        verify_estimator_mean(f, baseline="leave_one_out", n_episodes=1)
    with pytest.raises(TypeError):
        verify_estimator("not callable")
    assert EstimatorClaim(baseline="constant:1e-3").baseline_value == 1e-3


# --------------------------------------------------------------------------- exact laws
@pytest.mark.parametrize("claim", CLAIMS, ids=["-".join(c) for c in CLAIMS])
def test_exact_means_dp_or_closed_form_equal_enumeration(claim):
    est, w, b = claim
    mdp, policy, theta = _small_model()
    c = EstimatorClaim(est, w, b)
    sv = evaluate_finite_horizon(mdp, policy.probs_table(theta), 3).V if b == "value" else None
    u = estimator_units(mdp, policy, theta, 3, estimator=est, weighting=w,
                        baseline=c.refpg_baseline(), state_values=sv, n_episodes=3)
    mu = exact_estimator_mean(mdp, policy, theta, 3, estimator=est, weighting=w, baseline=b,
                              n_episodes=3)
    # DP / closed form against enumeration of every trajectory: float64 rounding only
    np.testing.assert_allclose(u.batch_mean, mu, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(u.probs @ u.values, mu, rtol=1e-12, atol=1e-14)
    if b in ("none", "value") or b.startswith("constant") or est == "reinforce":
        dp = M.dp_moments(mdp, policy, theta, 3, estimator=est, weighting=w,
                          baseline=c.refpg_baseline(), state_values=sv, n_episodes=3)
        np.testing.assert_allclose(u.batch_variance, dp.variance, rtol=1e-11, atol=1e-14)
    grad = exact_finite_horizon_gradient(mdp, policy, theta, 3)
    if w == "discounted" and b != "mean":          # unbiased for grad J_H (G2, G3, B1, B2)
        np.testing.assert_allclose(mu, grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("weighting", ["discounted", "uniform"])
def test_u_statistic_variance_equals_tuple_enumeration(weighting):
    mdp, policy, theta = _small_model(seed=3, H=2)
    pi = policy.probs_table(theta)
    for b in ("mean", "leave_one_out"):
        u = estimator_units(mdp, policy, theta, 2, weighting=weighting, baseline=b, n_episodes=2)
        ex = M.exact_moments(lambda bt: E.reinforce_reward_to_go(
            bt, policy, theta, mdp.gamma, weighting=weighting, baseline=b), mdp, pi,
            n_episodes=2, symmetric=True, max_evaluations=10 ** 5)
        np.testing.assert_allclose(u.batch_mean, ex.mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(u.batch_variance, ex.variance, rtol=1e-11, atol=1e-14)


def test_hoeffding_reduction_bounds_the_exact_tail_of_a_three_episode_u_statistic():
    # N = 3: the batch estimate is an average of 3 dependent pair kernels, bounded by ONE
    # pair unit (floor(3/2) = 1). Exact law of the batch estimate by all M^3 ordered triples.
    mdp, policy, theta = _small_model(seed=2, S=2, A=2, H=2, sparsity=0.0)
    u = estimator_units(mdp, policy, theta, 2, baseline="leave_one_out", n_episodes=3)
    batch, p = M.enumerate_trajectories(mdp, policy.probs_table(theta), 2)
    assert p.size <= 12
    vals, probs = [], []
    fields = ("states", "actions", "rewards", "log_probs", "next_states", "terminated",
              "truncated", "mask")
    for idx in itertools.product(range(p.size), repeat=3):
        idx = list(idx)
        b = type(batch)(**{f: getattr(batch, f)[idx] for f in fields})
        vals.append(E.reinforce_reward_to_go(b, policy, theta, mdp.gamma,
                                             baseline="leave_one_out"))
        probs.append(np.prod(p[idx]))
    vals, probs = np.array(vals), np.array(probs)
    mu = probs @ vals
    np.testing.assert_allclose(mu, u.batch_mean, rtol=1e-12, atol=1e-14)
    for delta in (0.5, 0.2, 0.05):
        for sgn in (1, -1):
            eps = chernoff_threshold(sgn * u.values, u.probs, 1, delta)
            # the test rejects on a strict excess; 1e-15 absorbs rounding in vals - mu
            tail = probs @ (sgn * (vals - mu) > eps[None, :] + 1e-15)
            assert np.all(tail <= delta), (delta, sgn, tail)


# --------------------------------------------------------------------------- the threshold
def test_chernoff_threshold_is_the_binary_kl_inverse_and_bounds_the_exact_binomial_tail():
    from scipy import optimize, stats
    for q, n, delta in ((0.3, 500, 1e-5), (0.05, 2000, 1e-4), (0.5, 50, 0.1)):
        eps = chernoff_threshold(np.array([0.0, 1.0]), np.array([1 - q, q]), n, delta)[0]

        def kl(a):
            return a * np.log(a / q) + (1 - a) * np.log((1 - a) / (1 - q))

        # closed form: n KL(q + eps || q) = log(1/delta) (Chernoff-Hoeffding for Bernoulli)
        e2 = optimize.brentq(lambda e: n * kl(q + e) - np.log(1 / delta), 1e-12, 1 - q - 1e-12)
        np.testing.assert_allclose(eps, e2, rtol=1e-8)   # golden-section in log-lambda
        assert stats.binom.sf(np.ceil(n * (q + eps)) - 1, n, q) <= delta


def test_chernoff_threshold_gaussian_limit_and_degenerate_columns():
    z = np.linspace(-6, 6, 4001)
    p = np.exp(-z ** 2 / 2)
    p /= p.sum()
    v = np.stack([z, np.zeros_like(z), np.where(z > 0, -1.0, 0.0)], axis=1)
    eps = chernoff_threshold(v, p, 100, 1e-4)
    sd = np.sqrt(p @ z ** 2)
    # Gaussian: eps = sd sqrt(2 log(1/delta) / n); discretised normal, truncated at 6 sd
    np.testing.assert_allclose(eps[0], sd * np.sqrt(2 * np.log(1e4) / 100), rtol=2e-3)
    assert eps[1] == 0.0                          # constant column
    assert 0 < eps[2] <= -p @ v[:, 2]             # never above the largest deviation, 1/2
    assert chernoff_threshold(v[:, 2:], p, 10 ** 6, 1e-4)[0] < 0.01   # shrinks with n


def _named_batch_estimates(mdp, policy, theta, K, N, rng, baseline):
    """K batch estimates of reward-to-go (uniform) in one vectorised pass."""
    H = mdp.horizon
    big = sample_batch(mdp, policy, theta, K * N, rng, horizon=H)
    if baseline == "leave_one_out":
        G = np.where(big.mask, E.reward_to_go(big.rewards, mdp.gamma, mask=big.mask), 0.0)
        Gk = G.reshape(K, N, H)
        b = ((Gk.sum(axis=1, keepdims=True) - Gk) / (N - 1)).reshape(K * N, H)
        c = np.where(big.mask, G - b, 0.0)
    else:
        c = E.estimator_coefficients(big, mdp.gamma, weighting="uniform")
    g = E.score_contributions(big, policy, theta, c)
    return g.reshape(K, N, -1).mean(axis=1), big


@pytest.mark.parametrize("baseline, n_seeds", [("none", 300), ("leave_one_out", 100)])
def test_false_alarm_rate_over_many_seeds(baseline, n_seeds):
    """Correct estimator, many independent seeds.

    What this can show: the implementation of the test is not anti-conservative at
    levels we can resolve. At alpha = 1e-4 no alarm is expected (0.03 in 300 seeds);
    zero alarms only bounds the rate by ~1% (3/300, 95%), so the same test is also run
    at alpha = 0.3, where the realised rate must stay below 0.3, and the squared
    CLT z-scores must average 1 (the exact variance is right). What it cannot show:
    the rate 1e-4 itself, which rests on the proof (Chernoff + Bonferroni).
    """
    mdp, policy, theta = VS._statistical_model(0, 3, 0.7)
    K, N = 400, 4
    u = estimator_units(mdp, policy, theta, 3, weighting="uniform",
                        baseline="leave_one_out" if baseline != "none" else 0.0, n_episodes=N)
    mu = exact_estimator_mean(mdp, policy, theta, 3, weighting="uniform", baseline=baseline,
                              n_episodes=N)
    n = K * u.units_per_batch
    # the thresholds do not depend on the sample: compute them once per alpha, and check on
    # the first seeds that mean_test's own decision is the same rule
    t4 = mean_test(mu, mu, u.values, u.probs, n)
    t03 = mean_test(mu, mu, u.values, u.probs, n, alpha=0.3)

    def rejects(t, m):
        return bool(np.any(m - mu > t.upper) or np.any(mu - m > t.lower))

    alarms, alarms_03, z2 = 0, 0, []
    for seed in range(n_seeds):
        est, big = _named_batch_estimates(mdp, policy, theta, K, N,
                                          np.random.default_rng(1000 + seed), baseline)
        if seed == 0:    # the vectorised route is the named estimator, batch by batch
            for k in (0, 1, K - 1):
                rows = slice(k * N, (k + 1) * N)
                ref = reference_estimate(theta.reshape(4, 2), big.states[rows],
                                         big.actions[rows], big.rewards[rows], big.mask[rows],
                                         mdp.gamma, weighting="uniform", baseline=baseline)
                np.testing.assert_allclose(est[k], ref.ravel(), rtol=1e-12, atol=1e-14)
        m = est.mean(axis=0)
        if seed < 10:
            assert mean_test(m, mu, u.values, u.probs, n).passed != rejects(t4, m)
            assert mean_test(m, mu, u.values, u.probs, n, alpha=0.3).passed != rejects(t03, m)
        alarms += rejects(t4, m)
        alarms_03 += rejects(t03, m)
        ok = u.batch_variance > 0
        z2.append((m - mu)[ok] ** 2 / (u.batch_variance[ok] / K))
    assert alarms == 0
    # Binomial(n_seeds, 0.3): mean 0.3 n; the realised rate of a valid test is <= 0.3
    assert alarms_03 <= 0.3 * n_seeds
    # E z^2 = 1 per component; 300 (100) seeds: s.e. ~0.08 (0.14), bounds at ~4 s.e.
    np.testing.assert_allclose(np.mean(z2, axis=0), 1.0, atol=0.6 if n_seeds < 200 else 0.35)
    # the proved thresholds are at most ~35% above the CLT ones: the price of rigour
    ok = t4.gaussian_threshold > 0
    assert np.all(t4.upper[ok] <= 1.35 * t4.gaussian_threshold[ok])


def test_power_statement_shifted_estimator_is_rejected():
    """A named estimator shifted by the detectable bias in one component is rejected
    with probability >= 0.9 (S3); here the realised power over 60 seeds."""
    mdp, policy, theta = VS._statistical_model(1, 3, 0.7)
    K, N = 400, 4
    u = estimator_units(mdp, policy, theta, 3, weighting="uniform", baseline=0.0, n_episodes=N)
    mu = exact_estimator_mean(mdp, policy, theta, 3, weighting="uniform", n_episodes=N)
    t = mean_test(mu, mu, u.values, u.probs, K * N)
    det = t.detectable_bias
    j = int(np.argmax(det))
    rejected = 0
    for seed in range(60):
        est, _ = _named_batch_estimates(mdp, policy, theta, K, N,
                                        np.random.default_rng(2000 + seed), "none")
        shift = np.zeros_like(mu)
        shift[j] = det[j] * (-1) ** seed
        m = est.mean(axis=0) + shift
        if seed < 5:
            assert mean_test(m, mu, u.values, u.probs, K * N).passed == (
                not (np.any(m - mu > t.upper) or np.any(mu - m > t.lower)))
        rejected += bool(np.any(m - mu > t.upper) or np.any(mu - m > t.lower))
    # power >= 0.9 proved; Binomial(60, 0.9) falls below 48 with probability < 0.2%
    assert rejected >= 48


def test_correct_estimators_pass_the_statistical_mode():
    for opts in (dict(), dict(estimator="reinforce", baseline="mean", layout="episodes"),
                 dict(weighting="uniform", baseline="leave_one_out", sign="loss",
                      reduction="steps", layout="time_major"),
                 dict(baseline="value", gamma=1.0)):
        gamma = opts.pop("gamma", 0.7)
        rep = verify_estimator_mean(loop_estimator(**opts), gamma=gamma, n_batches=600, **opts)
        assert rep.passed, str(rep)
        assert rep.test is not None and rep.test.n_tests >= 2
        assert np.all(rep.test.detectable_bias >= rep.test.upper)


def test_statistical_mode_rejects_the_mean_baseline_claimed_as_leave_one_out():
    rep = verify_estimator_mean(loop_estimator(baseline="mean"), baseline="leave_one_out",
                                n_episodes=2)
    assert not rep.passed and "differs from the exact expected value" in rep.problem
    # the exact bias is -mean/2 (B2): beyond the detectable bias (power >= 0.9) somewhere
    bias = -rep.expected.ravel() / 2
    assert np.any(np.abs(bias) > rep.test.detectable_bias)


def test_out_of_range_output_fails_with_the_batch():
    good = loop_estimator()

    def spiky(logits, states, actions, rewards, mask, gamma):
        out = good(logits, states, actions, rewards, mask, gamma)
        if states[0, 0] == 2 and actions[0, 0] == 1:
            out = out * 1e3
        return out

    rep = verify_estimator_mean(spiky)
    assert not rep.passed and "out of range" in rep.problem
    assert rep.inputs["states"].shape[0] == 4


# --------------------------------------------------------------------------- golden vectors
def test_golden_vectors_are_deterministic_and_match_independent_routes():
    d1, l1, v1 = golden_estimator_vectors()
    d2, l2, v2 = golden_estimator_vectors()
    assert to_json({"v": v1}) == to_json({"v": v2})          # bit-identical regeneration
    names = [v["name"] for v in v1]
    assert len(set(names)) == len(names) >= 12
    for v in v1:
        inp = v["inputs"]
        c = v["conventions"]
        got = loop_estimator(c["estimator"], c["weighting"], c["baseline"], sign=c["sign"],
                             reduction=c["reduction"])(
            np.array(inp["logits"]), np.array(inp["states"]), np.array(inp["actions"]),
            np.array(inp["rewards"]), np.array(inp["mask"]), inp["gamma"],
            np.array(inp["values"]))
        np.testing.assert_allclose(got, v["expected"]["estimate"], rtol=v["tolerance"]["rtol"],
                                   atol=v["tolerance"]["atol"])
        if "expected_gradient" not in v["expected"]:
            continue
        # the exact expectation against grad J_H (PG3) where the estimator is unbiased
        from refpg.mdp import FiniteMDP
        mdp = FiniteMDP(P=np.array(inp["P"]), r=np.array(inp["r"]), rho0=np.array(inp["rho0"]),
                        gamma=inp["gamma"], terminal=np.array(inp["terminal"]),
                        horizon=inp["horizon"])
        policy = TabularSoftmaxPolicy.for_mdp(mdp)
        theta = np.array(inp["logits"]).ravel()
        if c["weighting"] == "discounted" and c["baseline"] != "mean":
            ref = exact_finite_horizon_gradient(mdp, policy, theta)
        elif c["weighting"] == "uniform":
            f = 0.75 if c["baseline"] == "mean" else 1.0        # (N-1)/N, N = 4
            ref = f * M.time_indexed_gradient(mdp, policy, theta, weighting="uniform")
        else:
            ref = 0.75 * exact_finite_horizon_gradient(mdp, policy, theta)
        np.testing.assert_allclose(np.ravel(v["expected"]["expected_gradient"]), ref,
                                   rtol=1e-10, atol=1e-12)
