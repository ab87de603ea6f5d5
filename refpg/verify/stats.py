"""V2, statistical mode: a mean test with a proved false-alarm rate, and the verifier.

``verify_estimator_mean`` (the statistical mode of refpg.verify.estimators) calls the
user's estimator on many independent batches and tests the mean of its outputs
against the exact expectation of the named estimator with ``mean_test``.

The test compares the mean ``m`` of ``n`` independent *units* (episodes, or pairs of
episodes, derivations/verify_estimators.md#units-and-the-u-statistic-reduction) with
an exact mean ``mu``, component by component, when the EXACT distribution of one
unit is known as a finite list of atoms (values and probabilities, from
enumerating every trajectory of a small MDP). Each tail uses Chernoff's bound

    P(m_j - mu_j >= eps) <= exp(-n [lambda eps - Lambda_j(lambda)])   for every lambda > 0,
    Lambda_j(lambda) = log E exp(lambda (X_j - mu_j))                                    (VS1)

so the threshold

    eps_j(delta) = inf_{lambda > 0} (Lambda_j(lambda) + log(1/delta) / n) / lambda       (VS2)

has ``P(m_j - mu_j > eps_j) <= delta``; any ``lambda`` gives a valid threshold, so the
numerical minimisation affects only the power, never the false-alarm rate. With
``delta = alpha / n_tests`` over the ``n_tests`` one-sided tests (two per component
that is not constant), Bonferroni's union bound gives a false-alarm rate ``<= alpha``.
No central limit theorem, no Berry-Esseen margin: the bound is exact arithmetic on
the exact distribution (derivations/verify_estimators.md#the-false-alarm-rate).
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ..estimators import estimator_coefficients, score_contributions, scores
from ..evaluation import evaluate_finite_horizon
from ..mdp import random_mdp
from ..moments import enumerate_trajectories
from ..policies.tabular import TabularSoftmaxPolicy
from ..returns import episode_returns, reward_to_go
from ..sampling import sample_batch
from ..validation import as_float_array, check_gamma, check_positive_int
from .core import VerifyReport
from .estimators import (EstimatorClaim, _ascent_per_episode, _call_user, _check_user_fn,
                         _claim_state_values, _reference_for, _user_inputs,
                         exact_estimator_mean)

__all__ = ["chernoff_threshold", "MeanTest", "mean_test", "EstimatorUnits", "estimator_units",
           "EstimatorMeanReport", "verify_estimator_mean"]

#: pair atoms (M^2 of them) are refused above this many trajectories.
MAX_PAIR_TRAJECTORIES = 1500

#: grid of log-multipliers around the Gaussian guess, then golden-section refinement.
_GRID = np.linspace(-8.0, 8.0, 17)
_GOLDEN_STEPS = 25
#: relative safety margin on a threshold for float64 rounding in log-sum-exp.
_ROUNDING = 1e-12


def _log_mgf(values, log_p, lam):
    """``Lambda(lam) = log sum_k p_k exp(lam v_k)`` per column; ``values: (M, d)``, ``lam: (d,)``.
    """
    x = values * lam[None, :] + log_p[:, None]
    top = np.max(x, axis=0)
    return top + np.log(np.sum(np.exp(x - top[None, :]), axis=0))


def chernoff_threshold(values, probs, n_units, delta):
    """Chernoff threshold (VS2) of the upper tail of a mean of ``n_units`` i.i.d. units: ``(d,)``.

    ``values: (M, d)`` atoms of one unit, ``probs: (M,)`` their probabilities (sum 1).
    Returns ``eps`` with ``P(mean - E >= eps) <= delta`` for every column (``eps = 0``
    for a column that cannot exceed its mean). For the lower tail pass ``-values``.
    derivations/verify_estimators.md#the-false-alarm-rate
    """
    v = as_float_array("values", values)
    if v.ndim == 1:
        v = v[:, None]
    p = as_float_array("probs", probs, shape=(v.shape[0],))
    if np.any(p < 0) or abs(p.sum() - 1.0) > 1e-9:
        raise ValueError(f"probs must be >= 0 and sum to 1; sum = {p.sum()!r}")
    n = check_positive_int("n_units", n_units)
    if not (0.0 < float(delta) < 1.0):
        raise ValueError(f"delta must lie in (0, 1); got {delta!r}")
    keep = p > 0
    v, p = v[keep], p[keep]
    v = v - p @ v                                   # centred atoms
    log_p = np.log(p)
    c = np.log(1.0 / float(delta)) / n
    vmax = np.max(v, axis=0)
    sd = np.sqrt(p @ v ** 2)
    eps = np.maximum(vmax, 0.0)                     # the lambda -> infinity limit
    live = (vmax > 0) & (sd > 0)
    if not live.any():
        return eps
    vl = v[:, live]

    def bound(u):                                   # (VS2) at lambda = exp(u) per column
        lam = np.exp(u)
        return (_log_mgf(vl, log_p, lam) + c) / lam

    u0 = np.log(np.sqrt(2.0 * c) / sd[live])        # Gaussian optimum
    grid = u0[None, :] + _GRID[:, None]
    vals = np.array([bound(g) for g in grid])       # (G, d_live); unimodal in u
    k = np.argmin(vals, axis=0)
    cols = np.arange(vl.shape[1])
    lo = grid[np.maximum(k - 1, 0), cols]
    hi = grid[np.minimum(k + 1, len(_GRID) - 1), cols]
    best = vals[k, cols]
    r = (np.sqrt(5.0) - 1.0) / 2.0                 # golden section inside [lo, hi]
    a, b = lo, hi
    x1, x2 = b - r * (b - a), a + r * (b - a)
    f1, f2 = bound(x1), bound(x2)
    for _ in range(_GOLDEN_STEPS):
        left = f1 < f2                              # the minimum lies in [a, x2]
        a, b = np.where(left, a, x1), np.where(left, x2, b)
        xn = np.where(left, b - r * (b - a), a + r * (b - a))
        fn = bound(xn)
        x1, x2 = np.where(left, xn, x2), np.where(left, x1, xn)
        f1, f2 = np.where(left, fn, f2), np.where(left, f1, fn)
        best = np.minimum(best, fn)                 # every evaluated lambda is a valid bound
    out = eps.copy()
    out[live] = np.minimum(eps[live], best) * (1.0 + _ROUNDING)
    return out


@dataclass(frozen=True)
class MeanTest:
    """Verdict of ``mean_test``. derivations/verify_estimators.md#the-false-alarm-rate

    ``sample_mean``, ``exact_mean``, ``deviation = sample_mean - exact_mean``:
    ``(d,)``. The test rejects when some ``deviation_j > upper_j`` or
    ``-deviation_j > lower_j`` (thresholds (VS2) at ``alpha / n_tests`` plus
    ``slack``). ``n_tests`` one-sided tests (two per non-constant component);
    ``worst_index`` / ``worst_ratio``: the component with the largest
    ``|deviation| / threshold`` (> 1 on rejection). ``detectable_bias: (d,)``:
    a shift of the unit's distribution by at least this much in component ``j``
    is rejected with probability ``>= power`` (Chernoff on the other tail, (VS3));
    every bias vector with Euclidean norm ``>= detectable_bias_norm`` has such a
    component. ``unit_std``: the exact standard deviation of one unit;
    ``gaussian_threshold = z_{alpha/(2 n_tests)} * unit_std / sqrt(n)`` is what a
    CLT z-test would use (for comparison only: it has no proved error rate).
    """

    passed: bool
    sample_mean: np.ndarray
    exact_mean: np.ndarray
    deviation: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    alpha: float
    n_units: int
    n_tests: int
    worst_index: int
    worst_ratio: float
    detectable_bias: np.ndarray
    detectable_bias_norm: float
    power: float
    unit_std: np.ndarray
    gaussian_threshold: np.ndarray


def _quantise(v, p, rel=1e-12):
    """Merge atoms on a grid of width ``q = rel * max|v|``: ``(values, probs, q)``.

    Each atom moves by at most ``q / 2``; pair laws (``M^2`` atoms) shrink ~15-fold.
    """
    q = rel * max(float(np.max(np.abs(v))), np.finfo(float).tiny)
    k = np.round(v / q)
    keys, inverse = np.unique(k, return_inverse=True)
    return keys * q, np.bincount(inverse.ravel(), weights=p, minlength=keys.size), q


def mean_test(sample_mean, exact_mean, values, probs, n_units, *, alpha=1e-4, power=0.9,
              slack=0.0):
    """Chernoff-Bonferroni test of ``E[mean] = exact_mean`` with false-alarm rate ``<= alpha``.

    ``sample_mean: (d,)`` is the mean of ``n_units`` independent units, each
    distributed as the atoms ``values: (M, d)`` with ``probs: (M,)`` under the null
    hypothesis, up to a per-unit perturbation of at most ``slack`` (scalar or
    ``(d,)``, e.g. float32 rounding, which moves the mean by at most ``slack``).
    ``exact_mean: (d,)`` is the exact mean from an independent route (DP or closed
    form); its distance to the atoms' own mean is added to the slack. Per tail
    ``delta = alpha / n_tests`` (VS2); the detectable bias is (VS3)
    ``eps_j + 2 slack_j + eps'_j`` with ``eps'`` the threshold of the opposite tail at
    ``delta' = 1 - power``. Returns a ``MeanTest``.
    derivations/verify_estimators.md#the-false-alarm-rate
    """
    v = as_float_array("values", values, ndim=2)
    M, d = v.shape
    p = as_float_array("probs", probs, shape=(M,))
    m = as_float_array("sample_mean", sample_mean, shape=(d,))
    mu = as_float_array("exact_mean", exact_mean, shape=(d,))
    n = check_positive_int("n_units", n_units)
    if not (0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}")
    if not (0.0 < float(power) < 1.0):
        raise ValueError(f"power must lie in (0, 1); got {power!r}")
    s = np.array(np.broadcast_to(as_float_array("slack", slack), (d,)), dtype=float)
    if np.any(s < 0):
        raise ValueError("slack must be >= 0")
    atom_mean = p @ v
    centred = v - atom_mean
    std = np.sqrt(np.maximum(p @ centred ** 2, 0.0))
    varies = (np.max(centred, axis=0) > 0) | (np.min(centred, axis=0) < 0)
    n_tests = max(1, 2 * int(varies.sum()))
    delta = float(alpha) / n_tests
    miss = 1.0 - float(power)
    up, lo, up_miss, lo_miss = (np.zeros(d) for _ in range(4))
    for j in np.flatnonzero(varies):
        vj, pj, q = _quantise(v[:, j], p)       # atoms moved by <= q / 2: added to the slack
        s[j] += q / 2
        up[j] = chernoff_threshold(vj, pj, n, delta)[0]
        lo[j] = chernoff_threshold(-vj, pj, n, delta)[0]
        up_miss[j] = chernoff_threshold(-vj, pj, n, miss)[0]   # an upward shift is missed
        lo_miss[j] = chernoff_threshold(vj, pj, n, miss)[0]    # when the mean falls low
    s = s + np.abs(atom_mean - mu) * (1.0 + 1e-9)
    upper, lower = up + s, lo + s
    dev = m - mu
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(dev >= 0, dev / np.maximum(upper, 1e-300),
                         -dev / np.maximum(lower, 1e-300))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    worst = int(np.argmax(ratio))
    detect = np.maximum(up + up_miss, lo + lo_miss) + 2 * s
    z = NormalDist().inv_cdf(1.0 - delta)
    return MeanTest(bool(np.all(ratio <= 1.0)), m, mu, dev, upper, lower, float(alpha), n,
                    n_tests, worst, float(ratio[worst]), detect,
                    float(np.linalg.norm(detect)), float(power), std, z * std / np.sqrt(n))


# --------------------------------------------------------------------------- units
@dataclass(frozen=True)
class EstimatorUnits:
    """Exact law of one *unit* of a named estimator on a batch of ``n_episodes``.

    ``values: (M', d)`` and ``probs: (M',)`` are the atoms; a batch estimate is the
    mean of ``units_per_batch`` i.i.d. units (``kind="episode"``: the per-episode
    terms ``g_i``, ``N`` per batch) or is dominated in convex order by such a mean
    (``kind="pair"``: the symmetrised kernel ``h`` of the U-statistic,
    ``floor(N / 2)`` per batch). ``bound: (d,)``: no batch estimate has
    ``|g_j| > bound_j``. ``batch_mean``, ``batch_variance: (d,)``: exact mean and
    per-component variance of the batch estimate.
    derivations/verify_estimators.md#units-and-the-u-statistic-reduction
    """

    kind: str
    values: np.ndarray
    probs: np.ndarray
    units_per_batch: int
    bound: np.ndarray
    batch_mean: np.ndarray
    batch_variance: np.ndarray
    n_trajectories: int


def estimator_units(mdp, policy, theta, horizon=None, *, estimator="reward_to_go",
                    weighting="discounted", baseline=0.0, state_values=None, n_episodes=1):
    """The exact law of the units of a named estimator, by enumerating trajectories (VU1-VU5).

    Estimators and options as in ``refpg.estimators.estimator_coefficients``
    (``baseline``: a scalar, ``"mean"`` or ``"leave_one_out"``; ``state_values: (H', S)``).
    Per-episode estimators (constant or state baselines) have units ``g_x`` (VU1); the
    batch baselines are U-statistics of order 2 with kernel (VU3)
    ``h(x, y) = f/2 sum_t (B_x(t) - B_y(t)) (G_x(t) - G_y(t))`` (``B = w_t psi_t``,
    ``G`` the reward-to-go; REINFORCE: one "step" with ``B = sum_t psi_t``, ``G = R``;
    ``f = (N-1)/N`` for ``"mean"``, 1 for leave-one-out). Returns ``EstimatorUnits``.
    derivations/verify_estimators.md#units-and-the-u-statistic-reduction
    """
    N = check_positive_int("n_episodes", n_episodes)
    pi = policy.probs_table(theta)
    batch, p = enumerate_trajectories(mdp, pi, horizon)
    M = p.size
    gamma = check_gamma(mdp.gamma)
    pair = isinstance(baseline, str)
    if not pair:
        c = estimator_coefficients(batch, gamma, estimator=estimator, weighting=weighting,
                                   baseline=baseline, state_values=state_values)
        g = score_contributions(batch, policy, theta, c)
        mean = p @ g
        var = p @ (g - mean) ** 2
        return EstimatorUnits("episode", g, p, N, np.max(np.abs(g), axis=0), mean, var / N, M)
    if baseline not in ("mean", "leave_one_out"):
        raise ValueError(f"baseline must be a scalar, 'mean' or 'leave_one_out'; got {baseline!r}")
    if N < 2:
        raise ValueError(f"baseline={baseline!r} needs n_episodes >= 2; got {N}")
    if M > MAX_PAIR_TRAJECTORIES:
        raise ValueError(f"the pair law needs M^2 atoms and M = {M} > {MAX_PAIR_TRAJECTORIES} "
                         f"trajectories; use a smaller horizon or MDP")
    psi = scores(batch, policy, theta)                                  # (M, T, d)
    if estimator == "reinforce":
        B = psi.sum(axis=1)[:, None, :]
        G = episode_returns(batch.rewards, gamma, mask=batch.mask)[:, None]
    else:
        T = batch.max_steps
        w = gamma ** np.arange(T) if weighting == "discounted" else np.ones(T)
        B = psi * w[None, :, None]
        G = np.where(batch.mask, reward_to_go(batch.rewards, gamma, mask=batch.mask), 0.0)
    f = (N - 1) / N if baseline == "mean" else 1.0
    a = np.einsum("xtd,xt->xd", B, G)                                   # own term a_x
    cross = np.einsum("xtd,yt->xyd", B, G)                              # c_xy
    h = 0.5 * f * (a[:, None, :] + a[None, :, :] - cross - cross.transpose(1, 0, 2))
    pp = np.outer(p, p)
    mean = np.einsum("xy,xyd->d", pp, h)
    h1 = np.einsum("y,xyd->xd", p, h)                                   # E[h(x, Y)]
    zeta1 = p @ (h1 - mean) ** 2
    zeta2 = np.einsum("xy,xyd->d", pp, (h - mean) ** 2)
    var = (4 * (N - 2) * zeta1 + 2 * zeta2) / (N * (N - 1))             # (VU4)
    gmax = np.max(np.abs(G), axis=0)
    bound = f * (np.max(np.abs(a), axis=0) + np.max(np.einsum("xtd,t->xd", np.abs(B), gmax),
                                                       axis=0))
    return EstimatorUnits("pair", h.reshape(M * M, -1), pp.ravel(), N // 2, bound, mean, var, M)


# --------------------------------------------------------------------------- the statistical mode
@dataclass(frozen=True)
class EstimatorMeanReport(VerifyReport):
    """A ``VerifyReport`` of the statistical mode plus its ``MeanTest`` (None if no test ran).

    ``test.detectable_bias`` (flat ``(d,)``, refpg's convention), ``test.upper`` /
    ``test.lower`` thresholds, ``test.n_tests``. derivations/verify_estimators.md#statistical-mode
    """

    test: MeanTest | None = None

    def __str__(self):
        lines = super().__str__().splitlines()
        verdict = "PASSED" if self.passed else "FAILED"
        if self.test is None:
            lines[0] = f"refpg verify estimator_mean: {verdict} ({self.problem})"
        else:
            lines[0] = (f"refpg verify estimator_mean: {verdict} (mean of {self.n_cases} batch "
                        f"estimates; worst |mean - exact| / threshold = "
                        f"{self.test.worst_ratio:.3g}; {self.tolerance})")
        return "\n".join(lines)


def _statistical_model(seed, horizon, gamma):
    """The seeded test model: S = 4 (one terminal), A = 2, two successors per (s, a)."""
    rng = np.random.default_rng([seed, 5])
    mdp = random_mdp(rng, 4, 2, gamma=gamma, sparsity=0.5, n_terminal=1, horizon=horizon,
                     name="verify_estimator_mean model")
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(rng, scale=1.0)
    return mdp, policy, theta


def verify_estimator_mean(user_estimator, *, estimator="reward_to_go", weighting="discounted",
                          baseline="none", layout="batch_major", sign="ascent",
                          reduction="episodes", n_batches=2500, n_episodes=4, horizon=3,
                          gamma=0.7, alpha=1e-4, power=0.9, rtol=1e-5, seed=0):
    """Statistical mode: the mean of the user's estimates is the named estimator's exact mean.

    Same calling convention and options as ``verify_estimator``. On a fixed seeded
    tabular MDP (4 states, one terminal; 2 actions; ``horizon`` steps; ``gamma``)
    refpg draws ``n_batches`` independent batches of ``n_episodes`` episodes, calls the
    user's function on each, maps each output back to refpg's convention (undoing
    ``sign``, and ``reduction="steps"`` by the batch's ``sum_i L_i / N``), and tests the
    mean against the exact expected value ``exact_estimator_mean`` (VE3) with
    ``refpg.verify.stats.mean_test``: Chernoff thresholds from the EXACT law of the
    estimator's units (``estimator_units``, by enumerating every trajectory) and a
    Bonferroni union over the components, false-alarm rate ``<= alpha`` (proved, no CLT)
    under the null hypothesis that the user's function computes the named estimator up
    to ``rtol`` times its largest possible magnitude per batch (float32 passes). The
    report's notes give the smallest bias detected with probability ``>= power``, per
    component and in Euclidean norm. A batch output outside the named estimator's
    range (impossible under the null) also fails. ``expected``/``got`` in the report
    are in refpg's convention (ascent, mean over episodes), ``(S, A)``.
    derivations/verify_estimators.md#statistical-mode
    """
    _check_user_fn(user_estimator)
    claim = EstimatorClaim(estimator, weighting, baseline, layout, sign, reduction)
    K = check_positive_int("n_batches", n_batches, minimum=2)
    N = check_positive_int("n_episodes", n_episodes)
    H = check_positive_int("horizon", horizon)
    seed = check_positive_int("seed", seed, minimum=0)
    rtol = float(rtol)
    if not (0 <= rtol < 1):
        raise ValueError(f"rtol must lie in [0, 1); got {rtol!r}")
    for name, x in (("alpha", alpha), ("power", power)):
        if not (0.0 < float(x) < 1.0):
            raise ValueError(f"{name} must lie in (0, 1); got {x!r}")
    if claim.baseline_kind in ("mean", "leave_one_out") and N < 2:
        raise ValueError(f"baseline={baseline!r} needs n_episodes >= 2; got {N}")
    mdp, policy, theta = _statistical_model(seed, H, check_gamma(gamma))
    S, A = mdp.n_states, mdp.n_actions
    sv = _claim_state_values(claim, mdp, policy, theta, H)
    units = estimator_units(mdp, policy, theta, H, estimator=estimator, weighting=weighting,
                            baseline=claim.refpg_baseline(), state_values=sv, n_episodes=N)
    mu = exact_estimator_mean(mdp, policy, theta, H, estimator=estimator, weighting=weighting,
                              baseline=baseline, n_episodes=N)
    slack = rtol * units.bound
    big = sample_batch(mdp, policy, theta, K * N, np.random.default_rng([seed, 6]), horizon=H)
    V = evaluate_finite_horizon(mdp, policy.probs_table(theta), H).V
    t = np.broadcast_to(np.arange(H), big.mask.shape)
    all_values = np.where(big.mask, V[t, big.states], 0.0)
    logits = theta.reshape(S, A)
    conventions = dict(claim.describe(), n_batches=K, n_episodes=N, horizon=H, gamma=mdp.gamma,
                       alpha=alpha, power=power, rtol=rtol, seed=seed)
    departures = claim.departures()
    estimates = np.empty((K, S * A))
    for k in range(K):
        rows = slice(k * N, (k + 1) * N)
        inputs = {"logits": logits, "states": big.states[rows], "actions": big.actions[rows],
                  "rewards": big.rewards[rows], "mask": big.mask[rows],
                  "values": all_values[rows], "gamma": mdp.gamma}
        out = _call_user(user_estimator, inputs, claim)
        problem = out.problem
        if not problem:
            g = _ascent_per_episode(out.value, claim, inputs["mask"])
            over = np.abs(g) > units.bound + slack + 1e-300
            if over.any():
                j = int(np.flatnonzero(over)[0])
                where = tuple(int(i) for i in np.unravel_index(j, (S, A)))
                problem = (f"out of range: component {where} is "
                           f"{g[j]:.6g} in refpg's convention, but the named estimator never "
                           f"exceeds {units.bound[j]:.6g} in magnitude on this model")
            estimates[k] = g
        if problem:
            ref = _reference_for(inputs, claim)
            return EstimatorMeanReport(
                "estimator_mean", False, K, 1, float("inf"), "range / call",
                case=f"batch {k} of {K} (seed {seed})", inputs=_user_inputs(inputs, claim),
                expected=ref, got=out.value, problem=problem, conventions=conventions,
                departures=departures,
                notes=("expected/got in the user's convention for this batch",))
    test = mean_test(estimates.mean(axis=0), mu, units.values, units.probs,
                     K * units.units_per_batch, alpha=alpha, power=power, slack=slack)
    var_ratio = estimates.var(axis=0, ddof=1) / np.where(units.batch_variance > 0,
                                                          units.batch_variance, np.nan)
    worst = tuple(int(i) for i in np.unravel_index(test.worst_index, (S, A)))
    with np.printoptions(precision=4, suppress=True, linewidth=100):
        notes = (
            f"null hypothesis: every batch output equals the named estimator's within "
            f"rtol * bound = {rtol:g} * bound; then P(false alarm) <= alpha = {alpha:g} "
            f"(Chernoff bound on the exact law of {K * units.units_per_batch} "
            f"{units.kind} units from {units.n_trajectories} enumerated trajectories, "
            f"Bonferroni over {test.n_tests} one-sided tests)",
            f"smallest bias detected with probability >= {power:g}: per component "
            f"{test.detectable_bias.reshape(S, A)}; every bias of Euclidean norm >= "
            f"{test.detectable_bias_norm:.4g}",
            f"thresholds (upper) {test.upper.reshape(S, A)}; a CLT z-test would use "
            f"{test.gaussian_threshold.reshape(S, A)} (no proved error rate)",
            f"sample / exact variance of the batch estimates per component: "
            f"{var_ratio.reshape(S, A)} (about 1 for the named estimator; the proof assumes "
            f"the named estimator's law)",
            f"worst component {worst}: |mean - exact| / threshold = {test.worst_ratio:.3g}",
            "expected/got: exact mean and sample mean in refpg's convention (ascent, mean "
            "over episodes)")
    tol = (f"Chernoff-Bonferroni, alpha={alpha:g}; thresholds {float(np.min(test.upper)):.3g}"
           f"..{float(np.max(test.upper)):.3g}")
    if test.passed:
        return EstimatorMeanReport("estimator_mean", True, K, 0, float(np.max(np.abs(
            test.deviation))), tol, expected=mu.reshape(S, A), got=test.sample_mean.reshape(S, A),
            conventions=conventions, departures=departures, notes=notes, test=test)
    j = test.worst_index
    threshold = (test.upper if test.deviation[j] > 0 else test.lower)[j]
    model = {"P": np.asarray(mdp.P), "r": np.asarray(mdp.r), "rho0": np.asarray(mdp.rho0),
             "terminal": np.asarray(mdp.terminal), "gamma": mdp.gamma, "horizon": H,
             "logits": logits}
    problem = (f"the mean of the estimates differs from the exact expected value in component "
               f"{worst}: mean - exact = {test.deviation[j]:+.4g}, threshold {threshold:.4g}")
    return EstimatorMeanReport("estimator_mean", False, K, 1, float(np.max(np.abs(
        test.deviation))), tol, case=f"mean of {K} batches (seed {seed})", inputs=model,
        expected=mu.reshape(S, A), got=test.sample_mean.reshape(S, A), problem=problem,
        worst_index=worst, conventions=conventions, departures=departures, notes=notes,
        test=test)
