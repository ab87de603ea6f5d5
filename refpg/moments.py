"""Exact mean and covariance of policy-gradient estimators (SCOPE G9).

Two routes (derivations/moments.md):

* Enumeration (M1-M3). ``enumerate_trajectories`` lists every trajectory of a
  small finite-horizon MDP with positive probability, as one ``Batch`` with its
  probabilities; ``exact_moments`` applies ANY estimator (a function of a batch)
  to it and returns the exact mean and covariance, for batches of one episode or,
  for batch-level estimators (average-return baselines, normalised advantages),
  of ``n_episodes`` episodes by enumerating ordered tuples.

      E[g] = sum_tau p(tau) g(tau),  Cov[g] = sum_tau p(tau) (g - E g)(g - E g)^T

* Dynamic programming (M4-M9), for the standard estimators (REINFORCE,
  reward-to-go with ``gamma^t`` or uniform weights, constant / per-component /
  optimal / state-value baselines, the average-return baselines of REINFORCE):
  backward recursions over states carrying the conditional moments of the future
  return and of the future score sums, ``O(H S^2 (K d)^2)`` instead of
  ``O((S A)^H)``.

``time_indexed_gradient`` is the closed-form mean of the reward-to-go estimator
under either weighting and, off-policy, of the first-order approximation (IS5).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .batch import Batch
from .evaluation import centred_action_values, check_policy_table, evaluate_finite_horizon
from .mdp import FiniteMDP
from .policies.base import SoftmaxPolicy
from .policy_gradient import exact_finite_horizon_gradient
from .validation import as_float_array, check_positive_int

__all__ = ["EstimatorMoments", "enumerate_trajectories", "exact_moments",
           "exact_bias_and_covariance", "dp_moments", "exact_optimal_baseline",
           "time_indexed_gradient"]

#: default cap on enumerated trajectories (memory ~ M * H * 8 bytes per field).
MAX_TRAJECTORIES = 2_000_000
#: default cap on estimator calls for batch-level estimators (M^N tuples).
MAX_EVALUATIONS = 50_000


@dataclass(frozen=True)
class EstimatorMoments:
    """Exact first two moments of an estimator of a ``(d,)`` vector.

    ``mean: (d,)``, ``covariance: (d, d)`` of the estimator computed from a batch
    of ``n_episodes`` episodes; ``method`` is ``"enumeration"``,
    ``"dynamic programming"`` or ``"closed form"``; ``n_trajectories`` counts the
    enumerated trajectories (None for DP). When a reference gradient is known,
    ``gradient: (d,)`` holds it and ``bias = mean - gradient``.
    derivations/moments.md#exact-moments-by-enumeration
    """

    mean: np.ndarray
    covariance: np.ndarray
    n_episodes: int
    method: str
    n_trajectories: int | None = None
    gradient: np.ndarray | None = None
    bias: np.ndarray | None = None

    @property
    def variance(self):
        """Per-component variance ``diag(covariance)``: ``(d,)``."""
        return np.diag(self.covariance).copy()

    def with_gradient(self, gradient):
        """A copy with ``gradient`` set and ``bias = mean - gradient``."""
        g = as_float_array("gradient", gradient, shape=self.mean.shape)
        return EstimatorMoments(self.mean, self.covariance, self.n_episodes, self.method,
                                self.n_trajectories, g, self.mean - g)


# --------------------------------------------------------------------------- helpers
def _check_mdp(mdp):
    if not isinstance(mdp, FiniteMDP):
        raise TypeError(f"mdp must be a FiniteMDP; got {type(mdp).__name__}")
    return mdp


def _horizon(mdp, horizon):
    H = mdp.horizon if horizon is None else horizon
    if H is None:
        raise ValueError("horizon must be given (mdp.horizon is None)")
    return check_positive_int("horizon", H)


def _check_policy(mdp, policy):
    if not isinstance(policy, SoftmaxPolicy) or policy.n_states is None:
        raise TypeError(f"policy must be a tabular-capable SoftmaxPolicy; got {policy!r}")
    if (policy.n_states, policy.n_actions) != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"policy is for (S, A) = ({policy.n_states}, {policy.n_actions}) "
                         f"but mdp has ({mdp.n_states}, {mdp.n_actions})")
    return policy


def _real_table(mdp, pi, name="pi"):
    pi = check_policy_table(mdp, pi, name=name)
    if np.iscomplexobj(pi):
        raise TypeError(f"{name} must be real (it defines the sampling distribution)")
    return pi


# --------------------------------------------------------------------------- enumeration
def enumerate_trajectories(mdp, pi, horizon=None, *, max_trajectories=MAX_TRAJECTORIES):
    """Every trajectory of positive probability under ``pi: (S, A)``: ``(Batch, p)`` (M1).

    Episodes start from ``s_0 ~ rho0``, follow ``a_t ~ pi(.|s_t)``,
    ``s_{t+1} ~ P(.|s_t, a_t)`` and stop exactly as ``refpg.sampling.sample_from_table``
    stops them: *terminated* when ``s_{t+1}`` is terminal, *truncated* at
    ``t = H - 1``; a terminal start state gives an episode of length 0. The batch
    is ``(M, H)`` with ``log_probs = log pi(a_t|s_t)``; ``p: (M,)`` holds
    ``p(tau) = rho0(s_0) prod_t pi(a_t|s_t) P(s_{t+1}|s_t, a_t)`` and sums to 1.
    ``ValueError`` when more than ``max_trajectories`` would be listed.
    derivations/moments.md#enumerating-trajectories
    """
    _check_mdp(mdp)
    pi = _real_table(mdp, pi)
    H = _horizon(mdp, horizon)
    cap = check_positive_int("max_trajectories", max_trajectories)
    S, A = mdp.n_states, mdp.n_actions
    P, term = np.asarray(mdp.P), mdp.terminal
    # live prefixes: states s_0..s_t (n, t+1), actions a_0..a_{t-1} (n, t), probability (n,)
    path = np.flatnonzero(mdp.rho0 > 0)[:, None]
    acts = np.zeros((path.shape[0], 0), np.int64)
    prob = mdp.rho0[path[:, 0]].astype(float)
    done = []                                     # (path, actions, prob, length)
    for t in range(H + 1):
        stop = term[path[:, -1]] | (t == H)      # entered a terminal state, or t = H
        if stop.any():
            done.append((path[stop], acts[stop], prob[stop], t))
        path, acts, prob = path[~stop], acts[~stop], prob[~stop]
        if path.size == 0:
            break
        branch = pi[path[:, -1]][:, :, None] * P[path[:, -1]]        # (n, A, S)
        idx, a, s2 = np.nonzero(branch > 0)
        if sum(len(x[2]) for x in done) + idx.size > cap:
            raise ValueError(f"enumerating trajectories of horizon {H} needs more than "
                             f"max_trajectories = {cap} (at t = {t}); reduce the horizon, "
                             f"the MDP or raise the cap")
        prob = prob[idx] * branch[idx, a, s2]
        path = np.concatenate([path[idx], s2[:, None]], axis=1)
        acts = np.concatenate([acts[idx], a[:, None]], axis=1)
    M = sum(len(x[2]) for x in done)
    f = {k: np.zeros((M, H), np.int64) for k in ("states", "actions", "next_states")}
    f.update({k: np.zeros((M, H)) for k in ("rewards", "log_probs")})
    f.update({k: np.zeros((M, H), bool) for k in ("terminated", "truncated", "mask")})
    p = np.zeros(M)
    log_pi = np.log(np.where(pi > 0, pi, 1.0))
    row = 0
    for hs, ha, pr, L in done:
        sl = slice(row, row + len(pr))
        p[sl] = pr
        if L == 0:              # terminal start state: s_0 kept in the padding
            f["states"][sl, 0] = f["next_states"][sl, 0] = hs[:, 0]
        else:
            f["states"][sl, :L], f["actions"][sl, :L] = hs[:, :L], ha
            f["next_states"][sl, :L] = hs[:, 1:]
            f["rewards"][sl, :L] = mdp.r[hs[:, :L], ha]
            f["log_probs"][sl, :L] = log_pi[hs[:, :L], ha]
            f["mask"][sl, :L] = True
            f["terminated"][sl, L - 1] = term[hs[:, L]]
            f["truncated"][sl, L - 1] = ~term[hs[:, L]]
        row += len(pr)
    return Batch(**f, n_states=S, n_actions=A), p


def _check_output(name, value, d=None, rows=None):
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must return a real numeric array; got dtype {arr.dtype}")
    arr = arr.astype(float)
    want = (rows, d) if rows is not None else (d,)
    if arr.ndim != len(want) or any(w is not None and w != g for w, g in zip(want, arr.shape)):
        raise ValueError(f"{name} must return shape {tuple('*' if w is None else w for w in want)}"
                         f"; got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} returned a non-finite value at index {bad}")
    return arr


def _weighted_moments(values, p):
    mean = p @ values
    centred = values - mean
    cov = (centred * p[:, None]).T @ centred
    return mean, 0.5 * (cov + cov.T)


def exact_moments(estimator, mdp, pi, horizon=None, *, n_episodes=1, per_episode=False,
                  symmetric=False, gradient=None, max_evaluations=MAX_EVALUATIONS,
                  max_trajectories=MAX_TRAJECTORIES):
    """Exact mean and covariance of ANY estimator by enumeration: ``EstimatorMoments`` (M2, M3).

    The batches are drawn by ``pi: (S, A)`` (the behaviour policy for off-policy
    estimators). ``per_episode=True``: ``estimator(batch) -> (M, d)`` returns one
    row per episode and the batch estimator is the mean of ``n_episodes`` i.i.d.
    rows, so ``Cov = Cov_1 / n_episodes`` (M2; one call on the whole enumerated
    batch). ``per_episode=False``: ``estimator(batch) -> (d,)`` is called on every
    ordered tuple of ``n_episodes`` enumerated trajectories, with probability the
    product (M3): ``M^n_episodes`` calls (about 1-2 ms each), refused with
    ``ValueError`` above ``max_evaluations``. ``symmetric=True`` declares the
    estimator invariant to the order of the rows: each multiset is evaluated
    once with weight ``N! / prod(c_j!) prod p`` (M3b), ``C(M + N - 1, N)`` calls.
    ``gradient: (d,)`` fills ``bias = mean - gradient``.
    derivations/moments.md#exact-moments-by-enumeration
    """
    if not callable(estimator):
        raise TypeError(f"estimator must be callable (a function of a Batch); got {estimator!r}")
    N = check_positive_int("n_episodes", n_episodes)
    cap = check_positive_int("max_evaluations", max_evaluations)
    batch, p = enumerate_trajectories(mdp, pi, horizon, max_trajectories=max_trajectories)
    M = p.size
    if per_episode:
        values = _check_output("estimator", estimator(batch), rows=M)
        mean, cov = _weighted_moments(values, p)
        cov = cov / N
    else:
        if symmetric:
            count = math.comb(M + N - 1, N)
            tuples = itertools.combinations_with_replacement(range(M), N)
            what = f"C(M + N - 1, N) = {count} multisets"
        else:
            count = M ** N
            tuples = itertools.product(range(M), repeat=N)
            what = f"M^N = {M}^{N} = {count} ordered tuples"
        if count > cap:
            raise ValueError(f"a batch-level estimator with n_episodes = {N} needs {what} "
                             f"(M = {M} trajectories) > max_evaluations = {cap}; use "
                             f"per_episode=True if the estimator is a mean over episodes, "
                             f"symmetric=True if it ignores the order of the rows, or a "
                             f"smaller MDP, horizon or n_episodes")
        fields_ = ("states", "actions", "rewards", "log_probs", "next_states", "terminated",
                   "truncated", "mask")
        arrays = {f: getattr(batch, f) for f in fields_}
        values, probs = [], []
        d = None
        for tup in tuples:
            idx = np.array(tup)
            b = Batch(**{f: arrays[f][idx] for f in fields_}, n_states=batch.n_states,
                      n_actions=batch.n_actions)
            v = _check_output("estimator", estimator(b), d=d)
            d = v.shape[0]
            values.append(v)
            weight = np.prod(p[idx])
            if symmetric:        # number of orderings of the multiset: N! / prod(c_j!)
                _, counts = np.unique(idx, return_counts=True)
                weight *= math.factorial(N) // math.prod(math.factorial(int(c)) for c in counts)
            probs.append(weight)
        mean, cov = _weighted_moments(np.array(values), np.array(probs))
    out = EstimatorMoments(mean, cov, N, "enumeration", M)
    return out if gradient is None else out.with_gradient(gradient)


def exact_bias_and_covariance(estimator, mdp, policy, theta, horizon=None, *, behaviour=None,
                              n_episodes=1, per_episode=False, symmetric=False,
                              max_evaluations=MAX_EVALUATIONS):
    """``exact_moments`` against the exact ``grad J_H`` of ``pi_theta``: bias and covariance.

    Batches come from ``behaviour: (S, A)`` if given (off-policy), else from
    ``pi_theta``; ``gradient`` is ``exact_finite_horizon_gradient`` (PG3) and
    ``bias = mean - gradient``. ``estimator`` as in ``exact_moments``.
    derivations/moments.md#exact-moments-by-enumeration
    """
    _check_mdp(mdp)
    _check_policy(mdp, policy)
    H = _horizon(mdp, horizon)
    pi = policy.probs_table(theta) if behaviour is None else behaviour
    grad = exact_finite_horizon_gradient(mdp, policy, theta, H)
    return exact_moments(estimator, mdp, pi, H, n_episodes=n_episodes, per_episode=per_episode,
                         symmetric=symmetric, gradient=grad, max_evaluations=max_evaluations)


# --------------------------------------------------------------------------- closed form
def time_indexed_gradient(mdp, policy, theta, horizon=None, *, weighting="discounted",
                          behaviour=None):
    """``sum_t w_t sum_s p^b_t(s) sum_a pi_theta(a|s) grad log pi_theta(a|s) Q^b_t(s, a)``: ``(d,)``.

    With ``behaviour=None`` (``b = pi_theta``): ``weighting="discounted"``
    (``w_t = gamma^t``) gives ``grad J_H`` (PG3) and ``"uniform"`` (``w_t = 1``)
    the mean of the practical reward-to-go estimator (G4, M10). With a behaviour
    table ``(S, A)``: the mean of the first-order off-policy estimator (IS5),
    whose bias is this minus ``grad J_H``. Complex-safe in ``theta``.
    derivations/moments.md#closed-form-means
    """
    _check_mdp(mdp)
    _check_policy(mdp, policy)
    H = _horizon(mdp, horizon)
    if weighting not in ("discounted", "uniform"):
        raise ValueError(f"weighting must be 'discounted' or 'uniform'; got {weighting!r}")
    pi = policy.probs_table(theta)
    pib = pi if behaviour is None else _real_table(mdp, behaviour, "behaviour")
    fh = evaluate_finite_horizon(mdp, pib, H)
    w = mdp.gamma ** np.arange(H) if weighting == "discounted" else np.ones(H)
    Qbar = centred_action_values(fh.Q, pi)       # Q^b - sum_a pi_theta Q^b, no cancellation
    cot = np.einsum("t,ts,sa,tsa->sa", w, fh.p, pi, Qbar)
    return policy.vjp_table(theta, cot)


# --------------------------------------------------------------------------- DP
def _dp_reward_to_go(mdp, pi, psi, H, alphas, betas, ws):
    """Backward recursion (M5-M8) for channels ``Phi^k = sum_t psi_t w^k_t (a^k G_t - b^k_t(s_t))``.

    ``alphas: (K,)``, ``betas: (K, H, S)``, ``ws: (K, H)``; ``psi: (S, A, d)`` (0 on
    terminal states). Returns ``E[Phi]: (K, d)`` and ``E[Phi Phi^T]: (K, d, K, d)``.
    """
    P, r, gamma = np.asarray(mdp.P), np.asarray(mdp.r), mdp.gamma
    S, A, d = psi.shape
    K = alphas.shape[0]
    P_pi = np.einsum("sa,sat->st", pi, P)
    m1 = np.zeros(S)
    m2 = np.zeros(S)
    f = np.zeros((S, K, d))
    h = np.zeros((S, K, d))
    Mm = np.zeros((S, K * d, K * d))
    pipsi = pi[:, :, None] * psi                                   # (S, A, d)
    outer2 = np.einsum("sad,sae->sade", pipsi, psi).reshape(S, A, d * d)   # pi psi psi^T
    pipsi_t = pipsi.transpose(0, 2, 1).copy()                      # (S, d, A)
    for t in range(H - 1, -1, -1):
        PV = P @ m1                                                # (S, A)
        Pm2 = P @ m2
        Pf = np.tensordot(P, f, axes=(2, 0))                       # (S, A, K, d)
        Ph = np.tensordot(P, h, axes=(2, 0))
        e = ws[:, t][None, None, :] * (alphas[None, None, :] * r[:, :, None]
                                       - betas[:, t, :].T[:, None, :])    # (S, A, K)
        q = ws[:, t] * alphas * gamma                              # (K,)
        Ec = e + q[None, None, :] * PV[:, :, None]
        Ecc = (e[:, :, :, None] * e[:, :, None, :]
               + (e[:, :, :, None] * q[None, None, None, :]
                  + q[None, None, :, None] * e[:, :, None, :]) * PV[:, :, None, None]
               + (q[:, None] * q[None, :])[None, None] * Pm2[:, :, None, None])
        Hc = r[:, :, None] * e + (r[:, :, None] * q + gamma * e) * PV[:, :, None] \
            + gamma * q[None, None, :] * Pm2[:, :, None]
        X = e[:, :, :, None, None] * Pf[:, :, None, :, :] \
            + q[None, None, :, None, None] * Ph[:, :, None, :, :]  # (S, A, K, K, d)
        new_m1 = np.einsum("sa,sa->s", pi, r + gamma * PV)
        new_m2 = np.einsum("sa,sa->s", pi, r * r + 2 * gamma * r * PV + gamma ** 2 * Pm2)
        new_f = np.einsum("sad,sak->skd", pipsi, Ec) + np.einsum("sa,sakd->skd", pi, Pf)
        new_h = (np.einsum("sad,sak->skd", pipsi, Hc)
                 + np.einsum("sa,sakd->skd", pi * r, Pf) + gamma * np.einsum("sa,sakd->skd", pi, Ph))
        # pi psi psi^T E[c^j c^k] and pi psi E[c^j Phi'^k]^T as batched matrix products
        T1 = np.matmul(Ecc.reshape(S, A, K * K).transpose(0, 2, 1), outer2)   # (S, KK, dd)
        T1 = T1.reshape(S, K, K, d, d).transpose(0, 1, 3, 2, 4)             # (S, j, d, k, e)
        T2 = np.matmul(pipsi_t, X.reshape(S, A, K * K * d))                 # (S, d, KKe)
        T2 = T2.reshape(S, d, K, K, d).transpose(0, 2, 1, 3, 4)             # (S, j, d, k, e)
        T1 = T1 + T2 + T2.transpose(0, 3, 4, 1, 2)
        new_M = T1.reshape(S, K * d, K * d) + (P_pi @ Mm.reshape(S, -1)).reshape(S, K * d, K * d)
        m1, m2, f, h, Mm = new_m1, new_m2, new_f, new_h, new_M
    rho0 = np.asarray(mdp.rho0)
    mean = np.einsum("s,skd->kd", rho0, f)
    second = np.einsum("s,sxy->xy", rho0, Mm).reshape(K, d, K, d)
    return mean, second


def _dp_reinforce(mdp, pi, psi, H):
    """Backward recursion (M9) for ``E[Z G^k]``, ``E[Z Z^T G^k]``, ``E[G^k]``, k = 0, 1, 2.

    ``Z_t = sum_{u>=t} psi_u``, ``G_t`` the reward-to-go. Returns ``(m, z, Z2)`` at
    ``t = 0`` averaged over ``rho0``: ``m: (3,)``, ``z: (3, d)``, ``Z2: (3, d, d)``.
    """
    P, r, gamma = np.asarray(mdp.P), np.asarray(mdp.r), mdp.gamma
    S, A, d = psi.shape
    binom = ((1,), (1, 1), (1, 2, 1))
    m = np.zeros((3, S))
    m[0] = 1.0
    z = np.zeros((3, S, d))
    Z2 = np.zeros((3, S, d * d))
    rpow = [np.ones_like(r), r, r * r]
    Pw = [np.einsum("sa,sa,sat->st", pi, rp, P) for rp in rpow]   # (S, S) per power
    pipsi = pi[:, :, None] * psi
    pipsi_t = pipsi.transpose(0, 2, 1).copy()
    outer = np.einsum("sad,sae->sade", pipsi, psi).reshape(S, A, d * d)
    for t in range(H - 1, -1, -1):
        Pm = np.tensordot(P, m, axes=(2, 1)).transpose(2, 0, 1)     # (3, S, A)
        Pz = np.tensordot(P, z, axes=(2, 1)).transpose(2, 0, 1, 3)  # (3, S, A, d)
        new_m = np.empty_like(m)
        new_z = np.empty_like(z)
        new_Z2 = np.empty_like(Z2)
        for k in range(3):
            # Wm = sum_i C(k,i) gamma^i r^(k-i) E[G'^i],  Wz = ... E[Z' G'^i]   (per (s, a))
            Wm = sum(binom[k][i] * gamma ** i * rpow[k - i] * Pm[i] for i in range(k + 1))
            Wz = sum((binom[k][i] * gamma ** i * rpow[k - i])[:, :, None] * Pz[i]
                     for i in range(k + 1))
            new_m[k] = np.einsum("sa,sa->s", pi, Wm)
            new_z[k] = np.einsum("sad,sa->sd", pipsi, Wm) + np.einsum("sa,sad->sd", pi, Wz)
            cross = np.matmul(pipsi_t, Wz)                             # (S, d, d)
            new_Z2[k] = (np.matmul(Wm[:, None, :], outer)[:, 0]
                         + (cross + cross.transpose(0, 2, 1)).reshape(S, d * d))
            for i in range(k + 1):
                new_Z2[k] += binom[k][i] * gamma ** i * (Pw[k - i] @ Z2[i])
        m, z, Z2 = new_m, new_z, new_Z2
    rho0 = np.asarray(mdp.rho0)
    return rho0 @ m.T, np.einsum("s,ksd->kd", rho0, z), \
        np.einsum("s,ksx->kx", rho0, Z2).reshape(3, d, d)


def _optimal(num, den):
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _setup(mdp, policy, theta, horizon, estimator, weighting):
    """Validated ``(H, pi, psi, w)``; ``psi: (S, A, d)`` is zeroed on terminal states."""
    _check_mdp(mdp)
    _check_policy(mdp, policy)
    H = _horizon(mdp, horizon)
    if estimator not in ("reinforce", "reward_to_go"):
        raise ValueError(f"estimator must be 'reinforce' or 'reward_to_go'; got {estimator!r}")
    if weighting not in ("discounted", "uniform"):
        raise ValueError(f"weighting must be 'discounted' or 'uniform'; got {weighting!r}")
    theta = policy.check_theta(theta)
    if np.iscomplexobj(theta):
        raise TypeError("the DP moments need a real theta")
    pi = np.asarray(policy.probs_table(theta), dtype=float)
    psi = np.array(policy.grad_log_prob_table(theta), dtype=float)
    psi[mdp.terminal] = 0.0          # no step is ever taken in a terminal state
    w = mdp.gamma ** np.arange(H) if weighting == "discounted" else np.ones(H)
    return H, pi, psi, w


def _raw_moments(mdp, pi, psi, H, estimator, w, beta, need_z):
    """``E U, E Z, E UU^T, E UZ^T, E ZZ^T`` and ``(E R, E R^2)`` (REINFORCE) or None.

    ``U`` is the estimator with the state baseline ``beta: (H, S)`` (reward-to-go only)
    and ``Z`` the multiplier of a constant baseline (M6-M9).
    """
    if estimator == "reinforce":
        mR, zG, A_ = _dp_reinforce(mdp, pi, psi, H)     # U = Z R: E UZ^T = E ZZ^T R, ...
        return zG[1], zG[0], A_[2], A_[1], A_[0], (mR[1], mR[2])
    S, d = psi.shape[0], psi.shape[2]
    if not need_z:
        mean, sec = _dp_reward_to_go(mdp, pi, psi, H, np.array([1.0]), beta[None], w[None])
        zero = np.zeros((d, d))
        return mean[0], np.zeros(d), sec[0, :, 0, :], zero, zero, None
    mean, sec = _dp_reward_to_go(mdp, pi, psi, H, np.array([1.0, 0.0]),
                                 np.stack([beta, -np.ones((H, S))]), np.stack([w, w]))
    return mean[0], mean[1], sec[0, :, 0, :], sec[0, :, 1, :], sec[1, :, 1, :], None


def dp_moments(mdp, policy, theta, horizon=None, *, estimator="reward_to_go",
               weighting="discounted", baseline=0.0, state_values=None, n_episodes=1):
    """Exact mean and covariance of a standard estimator by dynamic programming (M4-M9c).

    The estimator of ``refpg.estimators`` on a batch of ``n_episodes`` episodes of
    ``pi_theta``: ``estimator="reinforce"`` (G2) or ``"reward_to_go"`` (G3/G4 with
    ``weighting``). ``baseline``: scalar; ``(d,)`` per component; ``"optimal"``
    (the EXACT ``exact_optimal_baseline``, not the plug-in); for REINFORCE also
    ``"mean"`` / ``"leave_one_out"`` (closed form M9c from the single-episode
    moments). ``state_values: (H', S)``, ``H' >= H``: the baseline ``b_t(s_t)``
    (reward-to-go only). Cost ``O(H S (S + A) (K d)^2)`` with ``K <= 2`` channels:
    polynomial in the horizon. Returns ``EstimatorMoments`` with
    ``gradient = grad J_H`` and ``bias``.
    derivations/moments.md#dynamic-programming
    """
    H, pi, psi, w = _setup(mdp, policy, theta, horizon, estimator, weighting)
    N = check_positive_int("n_episodes", n_episodes)
    S, A, d = psi.shape
    grad = exact_finite_horizon_gradient(mdp, policy, theta, H)
    kind = _baseline_kind(baseline, state_values)
    beta = np.zeros((H, S))
    if kind == "state":
        if estimator == "reinforce":
            raise ValueError("state_values applies to estimator='reward_to_go'")
        v = as_float_array("state_values", state_values, ndim=2)
        if v.shape[0] < H or v.shape[1] != S:
            raise ValueError(f"state_values must be (H', S) with H' >= H = {H}, S = {S}; "
                             f"got {v.shape}")
        beta = v[:H]
    if kind in ("mean", "leave_one_out"):
        if estimator != "reinforce":
            raise ValueError(f"baseline={kind!r} with estimator='reward_to_go' has no DP route "
                             f"here; use refpg.moments.exact_moments (enumeration)")
        if kind == "leave_one_out" and N < 2:
            raise ValueError(f"baseline='leave_one_out' needs n_episodes >= 2; got {N}")
    if kind == "scalar" and estimator == "reward_to_go":
        beta = np.full((H, S), float(baseline))       # folded into the channel (M6)
    need_z = kind in ("optimal", "vector")
    EU, EZ, EUU, EUZ, EZZ, R = _raw_moments(mdp, pi, psi, H, estimator, w, beta, need_z)
    if kind in ("mean", "leave_one_out"):
        if N == 1:                                     # Z (R - R) = 0
            return _record(np.zeros(d), np.zeros((d, d)), N, "closed form", grad)
        mu, var = R[0], R[1] - R[0] ** 2
        mm = np.outer(EU, EU)
        cov = (EUU - 2 * mu * EUZ + EZZ * (mu ** 2 + var / (N - 1)) - mm + mm / (N - 1)) / N
        shrink = (N - 1) / N if kind == "mean" else 1.0
        return _record(shrink * EU, shrink ** 2 * cov, N, "closed form", grad)
    if kind == "optimal":
        b = _optimal(np.diag(EUZ).copy(), np.diag(EZZ).copy())
    elif kind == "vector":
        b = _as_vector(baseline, d)
    elif kind == "scalar" and estimator == "reinforce":
        b = np.full(d, float(baseline))
    else:
        b = np.zeros(d)                                # already in beta
    mean = EU - b * EZ
    second = EUU - EUZ * b[None, :] - b[:, None] * EUZ.T + b[:, None] * EZZ * b[None, :]
    return _record(mean, (second - np.outer(mean, mean)) / N, N, "dynamic programming", grad)


def _record(mean, cov, N, method, grad):
    cov = 0.5 * (cov + cov.T)
    return EstimatorMoments(mean, cov, N, method, None, grad, mean - grad)


def _as_vector(baseline, d):
    b = as_float_array("baseline", baseline)
    if b.shape != (d,):
        raise ValueError(f"a per-component baseline must have shape (d,) = ({d},); got {b.shape}")
    return b


def _baseline_kind(baseline, state_values):
    if baseline is None:
        baseline = 0.0
    if state_values is not None:
        if not (np.ndim(baseline) == 0 and not isinstance(baseline, str)
                and float(baseline) == 0.0):
            raise ValueError("give either baseline or state_values, not both")
        return "state"
    if isinstance(baseline, str):
        if baseline not in ("optimal", "mean", "leave_one_out"):
            raise ValueError(f"baseline must be a scalar, a (d,) array, 'optimal', 'mean' or "
                             f"'leave_one_out'; got {baseline!r}")
        return baseline
    if np.ndim(baseline) == 0:
        if isinstance(baseline, bool) or not np.isfinite(float(baseline)):
            raise ValueError(f"baseline must be a finite scalar; got {baseline!r}")
        return "scalar"
    return "vector"


def exact_optimal_baseline(mdp, policy, theta, horizon=None, *, estimator="reinforce",
                           weighting="discounted"):
    """The exact variance-optimal constant baseline per component: ``(d,)`` (B3).

    ``b_k = E[U_k Z_k] / E[Z_k^2]`` with ``U`` the estimator without baseline and
    ``Z = sum_t w_t psi_t``; for REINFORCE ``b_k = E[Z_k^2 R] / E[Z_k^2]``. From the
    DP moments (M6-M9); ``b_k = 0`` where ``E[Z_k^2] = 0``.
    derivations/estimators.md#the-optimal-constant-baseline
    """
    H, pi, psi, w = _setup(mdp, policy, theta, horizon, estimator, weighting)
    _, _, _, EUZ, EZZ, _ = _raw_moments(mdp, pi, psi, H, estimator, w,
                                        np.zeros((H, psi.shape[0])), True)
    return _optimal(np.diag(EUZ).copy(), np.diag(EZZ).copy())
