"""The sampled TRPO surrogate: single-path and vine estimation (SCOPE N7, N8).

Schulman et al. (2015), eq. (14), with an importance distribution ``q``
(derivations/surrogate.md):

    maximise  E_{s~rho_old, a~q}[ pi_theta(a|s) / q(a|s) Q_old(s, a) ]          (S1)
    s.t.      E_{s~rho_old}[ KL(pi_old(.|s) || pi_theta(.|s)) ] <= delta

With a finite horizon ``H`` the estimators below are unbiased for

    M_H(theta) = sum_{t<H} kappa_t sum_s p_t(s) sum_a pi_theta(a|s) X_t(s, a)    (S2)

where ``p_t`` is the law of ``s_t`` under ``pi_old``, ``X_t = Q_t`` (or
``A_t = Q_t - V_t``) the time-indexed action value of ``pi_old`` with ``H - t``
steps to go, and ``kappa_t = gamma^t`` ("discounted") or ``1`` ("uniform",
every visited step weighted equally as practical code does). The Q and A
forms differ by ``sum_t kappa_t p_t . V_t``, a constant in ``theta``. With
discounted weights, ``M_H^A(theta) = L^H_old(theta) - J_H(pi_old)``, the
finite-horizon local approximation, and ``|M_H^A - (L_old(pi_theta) - eta)|
<= 2 gamma^H R (H + 1/(1-gamma)) / (1-gamma)`` with ``R = max |r|`` (S3).

Every sampled surrogate is a ``SampledSurrogate``

    L^(theta) = 1/N sum_i X_i(theta),   X_i = sum_{j in unit i} c_j pi_theta(a_j|s_j)/q_j Qhat_j   (S4)

(``N`` iid units: episodes for single path, episodes with their rollouts for
the vine) with the average-KL estimate ``sum_s W_s KL(pi_old(.|s) || pi_theta(.|s))``
(S5) over the sampled states and its Hessian-vector product at ``theta_old``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .batch import Batch
from .distributions import _softmax_log_ratio
from .evaluation import check_policy_table, evaluate_finite_horizon
from .mdp import FiniteMDP
from .policies.base import SoftmaxPolicy
from .returns import reward_to_go
from .validation import as_float_array, check_gamma, check_positive_int, check_rng

__all__ = ["SampledSurrogate", "single_path_surrogate", "vine_surrogate",
           "finite_horizon_surrogate", "truncation_bound", "coupled_rollouts"]

_WEIGHTINGS = ("discounted", "uniform")


def _check_policy(policy, mdp=None):
    if not isinstance(policy, SoftmaxPolicy) or policy.n_states is None:
        raise TypeError(f"policy must be a tabular-capable SoftmaxPolicy (observations are "
                        f"state indices); got {policy!r}")
    if mdp is not None:
        if not isinstance(mdp, FiniteMDP):
            raise TypeError(f"mdp must be a FiniteMDP; got {type(mdp).__name__}")
        if (policy.n_states, policy.n_actions) != (mdp.n_states, mdp.n_actions):
            raise ValueError(f"policy is for (S, A) = ({policy.n_states}, {policy.n_actions}) "
                             f"but mdp has ({mdp.n_states}, {mdp.n_actions})")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}")
    return value


def _log_ratio_table(policy, theta_new, theta_old):
    """``log pi_new - log pi_old: (S, A)`` from the logit change by (D8) of
    derivations/distributions.md (``refpg.distributions._softmax_log_ratio``), with the
    plain difference of log-probabilities only where its overflow guard applies."""
    states = policy._all_states()
    dlogp, ok, _ = _softmax_log_ratio(policy._logits(theta_new, states),
                                      policy._logits(theta_old, states))
    return np.where(ok, dlogp,
                    policy.log_probs_table(theta_new) - policy.log_probs_table(theta_old))


@dataclass(frozen=True, eq=False)
class SampledSurrogate:
    """A sampled surrogate (S4) with its average-KL estimate (S5).

    Terms ``j``: ``states, actions: (M,)`` int, ``log_q: (M,)`` log importance
    probabilities (``0`` for an exact sum over actions), ``q_values: (M,)``
    ``Qhat_j`` (or advantages), ``coef: (M,)`` ``c_j``, ``unit: (M,)`` the iid
    unit of term ``j`` in ``range(n_units)``; ``groups: (M,)`` or None: if set,
    each group is self-normalised (the vine's ratio estimator, biased) and
    ``coef`` must be constant within a group. ``kl_states: (n,)`` the sampled
    states of (S5) with ``kl_sample_weights: (n,)`` summing to 1 (their sums
    per state are ``kl_weights``, the ``W_s`` of (S5)); ``kl_direction``
    ``"old_new"`` (refpg) or ``"new_old"`` (sb3-contrib). ``n_env_steps``:
    transitions simulated to build it.
    derivations/surrogate.md#the-sampled-surrogate
    """

    policy: SoftmaxPolicy
    theta_old: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    log_q: np.ndarray
    q_values: np.ndarray
    coef: np.ndarray
    unit: np.ndarray
    n_units: int
    kl_states: np.ndarray
    kl_sample_weights: np.ndarray
    groups: np.ndarray | None = None
    kl_direction: str = "old_new"
    estimator: str = ""
    n_env_steps: int = 0

    def __post_init__(self):
        _check_policy(self.policy)
        object.__setattr__(self, "theta_old", self.policy.check_theta(self.theta_old,
                                                                      "theta_old"))
        _check_choice("kl_direction", self.kl_direction, ("old_new", "new_old"))
        n = check_positive_int("n_units", self.n_units)
        q = as_float_array("q_values", self.q_values, ndim=1)
        M = q.shape[0]
        if M == 0:
            raise ValueError("a sampled surrogate needs at least one term; got 0")
        arrays = {"q_values": q}
        for name in ("log_q", "coef"):
            arrays[name] = as_float_array(name, getattr(self, name), shape=(M,))
        w = as_float_array("kl_sample_weights", self.kl_sample_weights, ndim=1)
        arrays["kl_sample_weights"] = w
        ints = [("states", self.policy.n_states, M), ("actions", self.policy.n_actions, M),
                ("unit", n, M), ("kl_states", self.policy.n_states, w.shape[0])]
        if self.groups is not None:
            ints.append(("groups", M, M))
        for name, upper, size in ints:
            arr = np.asarray(getattr(self, name))
            if arr.shape != (size,) or arr.dtype.kind not in "iu" or (
                    size and (arr.min() < 0 or arr.max() >= upper)):
                raise ValueError(f"{name} must be ({size},) integers in [0, {upper})")
            arrays[name] = arr.astype(np.int64)
        if w.size == 0 or np.any(w < 0) or not abs(w.sum() - 1.0) <= 1e-12 * max(w.size, 1):
            raise ValueError(f"kl_sample_weights must be non-empty, >= 0 and sum to 1; "
                             f"sum = {w.sum()!r}")
        for name, arr in arrays.items():
            arr = np.array(arr, copy=True)
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    @property
    def kl_weights(self):
        """``W_s: (S,)``, the sample weights of (S5) summed per state."""
        out = np.zeros(self.policy.n_states)
        np.add.at(out, self.kl_states, self.kl_sample_weights)
        return out

    def subsample_kl(self, stride):
        """A copy whose (S5) keeps every ``stride``-th KL sample, reweighted to sum 1
        (baselines' ``arr[::5]`` Fisher-vector products). derivations/surrogate.md#the-average-kl"""
        stride = check_positive_int("stride", stride)
        w = self.kl_sample_weights[::stride]
        if not w.sum() > 0:
            raise ValueError("the subsampled KL weights are all zero")
        return replace(self, kl_states=self.kl_states[::stride], kl_sample_weights=w / w.sum())

    # ---------------------------------------------------------------- values
    def _ratios(self, theta):
        logp = self.policy.log_probs_table(theta)[self.states, self.actions]
        return np.exp(logp - self.log_q)

    def per_unit(self, theta):
        """``X_i(theta): (n_units,)`` of (S4); ``value = mean``.
        derivations/surrogate.md#the-sampled-surrogate"""
        rho = self._ratios(self.policy.check_theta(theta))
        if self.groups is None:
            contrib = self.coef * rho * self.q_values
            out = np.zeros(self.n_units, dtype=contrib.dtype)
            np.add.at(out, self.unit, contrib)
            return out
        G = int(self.groups.max()) + 1
        num = np.zeros(G, dtype=rho.dtype)
        den = np.zeros(G, dtype=rho.dtype)
        np.add.at(num, self.groups, rho * self.q_values)
        np.add.at(den, self.groups, rho)
        gcoef = np.zeros(G)
        gunit = np.zeros(G, dtype=np.int64)
        gcoef[self.groups] = self.coef
        gunit[self.groups] = self.unit
        out = np.zeros(self.n_units, dtype=num.dtype)
        np.add.at(out, gunit, gcoef * num / den)
        return out

    def per_unit_difference(self, theta):
        """``X_i(theta) - X_i(theta_old): (n_units,)``, formed without subtracting the two.

        With ``u_j = rho_j(theta) - rho_j(theta_old) = rho_j(theta_old)
        expm1(log pi_theta - log pi_old)`` (exact for nearby or nearly deterministic
        policies, where both ratios round to the same number): ``sum_j c_j u_j Qhat_j``,
        or per self-normalised group ``sum u (Qhat - L_old) / sum rho``.
        derivations/surrogate.md#the-sampled-surrogate"""
        theta = self.policy.check_theta(theta)
        dlogp = _log_ratio_table(self.policy, theta, self.theta_old)[self.states, self.actions]
        lp_old = self.policy.log_probs_table(self.theta_old)[self.states, self.actions]
        rho_old = np.exp(lp_old - self.log_q)
        u = rho_old * np.expm1(dlogp)
        out = np.zeros(self.n_units, dtype=u.dtype)
        if self.groups is None:
            np.add.at(out, self.unit, self.coef * u * self.q_values)
            return out
        G = int(self.groups.max()) + 1
        num_old = np.zeros(G)
        den_old = np.zeros(G)
        np.add.at(num_old, self.groups, rho_old * self.q_values)
        np.add.at(den_old, self.groups, rho_old)
        L_old = num_old / den_old
        num = np.zeros(G, dtype=u.dtype)
        den = np.zeros(G, dtype=u.dtype)
        np.add.at(num, self.groups, u * (self.q_values - L_old[self.groups]))
        np.add.at(den, self.groups, rho_old + u)
        gcoef = np.zeros(G)
        gunit = np.zeros(G, dtype=np.int64)
        gcoef[self.groups] = self.coef
        gunit[self.groups] = self.unit
        np.add.at(out, gunit, gcoef * num / den)
        return out

    def value(self, theta):
        """``L^(theta)`` of (S4) (complex-safe in ``theta``).
        derivations/surrogate.md#the-sampled-surrogate"""
        return np.mean(self.per_unit(theta))

    def improvement(self, theta):
        """``(L^(theta) - L^(theta_old), standard error)``; the error is the sample standard
        deviation of ``X_i(theta) - X_i(theta_old)`` over ``sqrt(N)`` (iid units).
        derivations/surrogate.md#the-sampled-surrogate"""
        diff = self.per_unit_difference(theta)
        se = float(np.std(diff, ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else np.inf
        return float(np.mean(diff)), se

    def gradient(self, theta):
        """``grad_theta L^(theta): (d,)``, as one vector-Jacobian product of the logits table.

        Per term ``c_j rho_j Qhat_j grad log pi(a_j|s_j)`` (self-normalised
        groups: ``rho_j (Qhat_j - L_g) / sum_g rho``).
        derivations/surrogate.md#the-sampled-surrogate
        """
        theta = self.policy.check_theta(theta)
        pi = self.policy.probs_table(theta)
        rho = self._ratios(theta)
        if self.groups is None:
            beta = self.coef * rho * self.q_values
        else:
            G = int(self.groups.max()) + 1
            num = np.zeros(G, dtype=rho.dtype)
            den = np.zeros(G, dtype=rho.dtype)
            np.add.at(num, self.groups, rho * self.q_values)
            np.add.at(den, self.groups, rho)
            Lg = num / den
            beta = self.coef * rho * (self.q_values - Lg[self.groups]) / den[self.groups]
        beta = beta / self.n_units
        S, A = pi.shape
        cot = np.zeros((S, A), dtype=np.result_type(pi.dtype, beta.dtype))
        np.add.at(cot, (self.states, self.actions), beta)
        wsum = np.zeros(S, dtype=cot.dtype)
        np.add.at(wsum, self.states, beta)
        cot = cot - wsum[:, None] * pi          # sum_j beta_j (e_{a_j} - pi(.|s_j))
        return self.policy.vjp_table(theta, cot)

    def kl(self, theta):
        """Average KL (S5): ``sum_s W_s KL(pi_old(.|s) || pi_theta(.|s))`` (or the reverse,
        per ``kl_direction``). derivations/surrogate.md#the-average-kl"""
        theta = self.policy.check_theta(theta)
        states = np.arange(self.policy.n_states)
        if self.kl_direction == "old_new":
            per = self.policy.kl(self.theta_old, theta, states)
        else:
            per = self.policy.kl(theta, self.theta_old, states)
        return self.kl_weights @ per

    def fisher_vector_product(self, v):
        """``F^ v: (d,)`` with ``F^ = sum_s W_s F(s)`` at ``theta_old``, the Hessian of (S5).

        derivations/surrogate.md#the-average-kl
        """
        return self.policy.fisher_vector_product(self.theta_old, v,
                                                 np.arange(self.policy.n_states),
                                                 weights=self.kl_weights)


def _check_batch(batch, policy, theta_old, tol=1e-8):
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a refpg Batch; got {type(batch).__name__}")
    if batch.states.ndim != 2 or batch.actions.ndim != 2:
        raise ValueError("batch must hold state and action indices (N, T)")
    m = batch.mask
    S, A = policy.n_states, policy.n_actions
    if m.any() and (batch.states[m].max() >= S or batch.actions[m].max() >= A):
        raise ValueError(f"batch states/actions exceed the policy's (S, A) = ({S}, {A})")
    logp = policy.log_probs_table(theta_old)[batch.states[m], batch.actions[m]]
    dev = np.abs(logp - batch.log_probs[m])
    if dev.size and not np.max(dev) <= tol:
        k = int(np.argmax(dev))
        raise ValueError(f"batch.log_probs are not log pi_old(a|s) (max deviation "
                         f"{float(dev[k]):.3e} > {tol:.0e}): single-path and vine "
                         f"estimation need trajectories sampled from pi_old")
    return m


def _kl_samples(batch, m, gamma, weighting):
    """(S5) samples: every valid step, weight ``kappa_t`` normalised (time-major order)."""
    T = batch.max_steps
    kappa = (gamma ** np.arange(T)) if weighting == "discounted" else np.ones(T)
    cols, rows = np.nonzero(m.T)                 # time-major, as peers' flat buffers
    w = kappa[cols]
    total = w.sum()
    if not total > 0:
        raise ValueError("batch has no valid step: the average KL is undefined")
    return dict(kl_states=batch.states[rows, cols], kl_sample_weights=w / total)


def single_path_surrogate(policy, theta_old, batch, gamma, *, baseline=None,
                          state_weighting="discounted", kl_weighting="discounted",
                          kl_direction="old_new"):
    """Single-path estimate (S4) from episodes ``batch`` of ``pi_old`` (``q = pi_old``).

    Term per valid step ``(i, t)``: ``c = kappa_t``, ``Qhat = G_t`` the
    discounted reward-to-go within the episode (no bootstrap at truncation:
    the estimand is the finite-horizon (S2)), minus ``baseline: (N, T)`` if
    given (A form). ``state_weighting`` ``"discounted"`` (``kappa_t =
    gamma^t``) or ``"uniform"``. KL weights (S5): ``kappa_t`` (per
    ``kl_weighting``) over visited steps, normalised. Raises if
    ``batch.log_probs`` are not ``log pi_old``.
    derivations/surrogate.md#single-path-estimation
    """
    _check_policy(policy)
    theta_old = policy.check_theta(theta_old, "theta_old")
    gamma = check_gamma(gamma)
    _check_choice("state_weighting", state_weighting, _WEIGHTINGS)
    _check_choice("kl_weighting", kl_weighting, _WEIGHTINGS)
    m = _check_batch(batch, policy, theta_old)
    G = reward_to_go(batch.rewards, gamma, mask=m)
    if baseline is not None:
        b = as_float_array("baseline", baseline, shape=batch.rewards.shape)
        G = G - np.where(m, b, 0.0)
    T = batch.max_steps
    kappa = (gamma ** np.arange(T)) if state_weighting == "discounted" else np.ones(T)
    rows = np.nonzero(m)[0]
    cols = np.nonzero(m)[1]
    return SampledSurrogate(policy=policy, theta_old=theta_old, states=batch.states[m],
                            actions=batch.actions[m], log_q=batch.log_probs[m],
                            q_values=G[m], coef=kappa[cols], unit=rows,
                            n_units=batch.n_episodes,
                            **_kl_samples(batch, m, gamma, kl_weighting),
                            kl_direction=kl_direction, estimator="single_path",
                            n_env_steps=int(m.sum()))


def _inverse_cdf(cdf, u):
    """(V1) ``i = #{k < K-1 : u >= cdf[k]}``, the first index whose cumulative probability
    exceeds ``u``; ``cdf: (..., K)``, ``u: (...)`` -> ``(...)`` int. ``u`` is scaled by the
    computed total ``cdf[..., -1]`` so that a trailing action whose probability rounds to
    0 is never drawn."""
    return np.sum((u * cdf[..., -1])[..., None] >= cdf[..., :-1], axis=-1)


def coupled_rollouts(mdp, pi, states, actions, horizons, uniforms):
    """Discounted returns of rollouts reset to ``(s_n, a_nk)``, driven by given uniforms (V2).

    ``states: (M,)``, ``actions: (M, K)``, ``horizons: (M,)`` steps per rollout
    (>= 1), ``uniforms: (M, K, L, 2)`` in ``[0, 1)`` with ``L >= max horizons``.
    Step ``j`` of rollout ``(n, k)`` takes action ``a_nk`` (``j = 0``) or the
    inverse CDF (V1) of ``pi(.|s)`` at ``uniforms[n, k, j, 0]``, earns
    ``r(s, a)`` and moves to the inverse CDF of ``P(.|s, a)`` at
    ``uniforms[n, k, j, 1]``; it stops on entering a terminal state or after
    ``horizons[n]`` steps. Common random numbers: pass the same uniforms for
    every ``k`` (``np.broadcast_to``). Returns ``(returns: (M, K), steps: (M, K))``.
    derivations/surrogate.md#the-coupling-of-common-random-numbers
    """
    pi = np.asarray(check_policy_table(mdp, pi), dtype=float)
    S, A = mdp.n_states, mdp.n_actions
    s0 = np.asarray(states, dtype=np.int64)
    a = np.asarray(actions, dtype=np.int64)
    h = np.asarray(horizons, dtype=np.int64)
    U = np.asarray(uniforms, dtype=float)
    M = s0.shape[0]
    if s0.ndim != 1 or a.ndim != 2 or a.shape[0] != M or h.shape != (M,):
        raise ValueError(f"states (M,), actions (M, K), horizons (M,) expected; got "
                         f"{s0.shape}, {a.shape}, {h.shape}")
    K = a.shape[1]
    L = int(h.max()) if M else 0
    if U.ndim != 4 or U.shape[:2] != (M, K) or U.shape[2] < L or U.shape[3] != 2:
        raise ValueError(f"uniforms must have shape (M, K, >= {L}, 2) = ({M}, {K}, {L}, 2); "
                         f"got {U.shape}")
    if M and (s0.min() < 0 or s0.max() >= S or a.min() < 0 or a.max() >= A or h.min() < 1):
        raise ValueError("states, actions must be valid indices and horizons >= 1")
    pic, Pc = np.cumsum(pi, axis=1), np.cumsum(mdp.P, axis=2)
    s = np.broadcast_to(s0[:, None], (M, K)).copy()
    alive = ~mdp.terminal[s]
    G = np.zeros((M, K))
    steps = np.zeros((M, K), np.int64)
    disc = 1.0
    for j in range(L):
        if j > 0:
            a = np.where(alive, _inverse_cdf(pic[s], U[:, :, j, 0]), 0)
        G += np.where(alive, disc * mdp.r[s, a], 0.0)
        steps += alive
        nxt = _inverse_cdf(Pc[s, a], U[:, :, j, 1])
        alive = alive & ~mdp.terminal[nxt] & (j + 1 < h)[:, None]
        s = np.where(alive, nxt, s)
        disc *= mdp.gamma
    return G, steps


def vine_surrogate(mdp, policy, theta_old, batch, rng, *, n_actions=None, q=None,
                   action_mode="all", rollout_probability=1.0,
                   common_random_numbers=True, state_weighting="discounted",
                   kl_weighting="discounted", kl_direction="old_new"):
    """Vine estimate (S4): a rollout set from ``batch``, several actions per state, one rollout each.

    ``batch``: episodes of ``pi_old`` on ``mdp`` (``(N, H)``, ``H =
    batch.max_steps`` the horizon they were sampled with). Each valid step
    ``(i, t)`` joins the rollout set with probability ``rollout_probability``
    (``p``; weight ``kappa_t / p`` keeps the estimate unbiased). From its state
    ``s``: ``action_mode="all"`` rolls out every action once (term
    ``pi_theta(a|s) Qhat``, exact sum over actions, paper Sec. 5.2);
    ``"sampled"`` draws ``n_actions`` (``K``) actions iid from ``q: (S, A)``
    (default ``pi_old``), term ``pi_theta/q Qhat / K`` (unbiased);
    ``"self_normalised"`` the paper's ratio estimator for large action spaces
    (biased). Each rollout resets the model to ``(s, a)`` and follows
    ``pi_old`` for ``H - t`` steps (``coupled_rollouts``); ``Qhat`` is its
    discounted return. With ``common_random_numbers`` the ``K`` rollouts of a
    state are driven by the same uniforms (V2), else by independent ones.
    derivations/surrogate.md#vine-estimation
    """
    _check_policy(policy, mdp)
    check_rng(rng)
    theta_old = policy.check_theta(theta_old, "theta_old")
    _check_choice("action_mode", action_mode, ("all", "sampled", "self_normalised"))
    _check_choice("state_weighting", state_weighting, _WEIGHTINGS)
    _check_choice("kl_weighting", kl_weighting, _WEIGHTINGS)
    p = float(rollout_probability)
    if not (0.0 < p <= 1.0):
        raise ValueError(f"rollout_probability must lie in (0, 1]; got {rollout_probability!r}")
    m = _check_batch(batch, policy, theta_old)
    S, A = mdp.n_states, mdp.n_actions
    if (batch.n_states, batch.n_actions) not in ((S, A), (None, None)):
        raise ValueError(f"batch is for (S, A) = ({batch.n_states}, {batch.n_actions}), "
                         f"mdp has ({S}, {A})")
    gamma = mdp.gamma
    pi_old = np.asarray(policy.probs_table(theta_old), dtype=float)
    H = batch.max_steps
    kappa = (gamma ** np.arange(H)) if state_weighting == "discounted" else np.ones(H)
    rows, cols = np.nonzero(m)
    if p < 1.0:
        keep = rng.random(rows.size) < p
        rows, cols = rows[keep], cols[keep]
    M = rows.size
    if M == 0:
        raise ValueError("the rollout set is empty (no valid step was selected); raise "
                         "rollout_probability or the number of episodes")
    st = batch.states[rows, cols]
    if action_mode == "all":
        K = A
        acts = np.broadcast_to(np.arange(A), (M, A))
        log_q = np.zeros((M, A))
        coef = np.broadcast_to((kappa[cols] / p)[:, None], (M, A))
    else:
        K = check_positive_int("n_actions", A if n_actions is None else n_actions)
        q = pi_old if q is None else np.asarray(check_policy_table(mdp, q, name="q"), float)
        acts = _inverse_cdf(np.cumsum(q, axis=1)[st][:, None, :], rng.random((M, K)))
        with np.errstate(divide="ignore"):
            log_q = np.log(q[st[:, None], acts])
        scale = K if action_mode == "sampled" else 1
        coef = np.broadcast_to((kappa[cols] / (p * scale))[:, None], (M, K))
    horizons = H - cols
    L = int(horizons.max())
    if common_random_numbers:
        U = np.broadcast_to(rng.random((M, 1, L, 2)), (M, K, L, 2))
    else:
        U = rng.random((M, K, L, 2))
    G, steps = coupled_rollouts(mdp, pi_old, st, acts, horizons, U)
    return SampledSurrogate(policy=policy, theta_old=theta_old,
                            states=np.repeat(st, K), actions=np.asarray(acts).ravel(),
                            log_q=np.asarray(log_q).ravel(), q_values=G.ravel(),
                            coef=np.asarray(coef).ravel(), unit=np.repeat(rows, K),
                            n_units=batch.n_episodes,
                            **_kl_samples(batch, m, gamma, kl_weighting),
                            groups=(np.repeat(np.arange(M), K)
                                    if action_mode == "self_normalised" else None),
                            kl_direction=kl_direction, estimator=f"vine/{action_mode}",
                            n_env_steps=int(m.sum() + steps.sum()))


# ------------------------------------------------------------------ exact counterparts
def _fh(mdp, policy, theta_old, horizon):
    _check_policy(policy, mdp)
    pi_old = policy.probs_table(theta_old)
    H = mdp.horizon if horizon is None else horizon
    if H is None:
        raise ValueError("horizon must be given (mdp.horizon is None)")
    H = check_positive_int("horizon", H)
    return pi_old, H, evaluate_finite_horizon(mdp, pi_old, H)


def finite_horizon_surrogate(mdp, policy, theta_old, theta, horizon=None, *, form="advantage",
                             state_weighting="discounted"):
    """Exact (S2): ``sum_{t<H} kappa_t sum_s p_t(s) sum_a pi_theta(a|s) X_t(s, a)``.

    ``X = A_t`` (``form="advantage"``) or ``Q_t`` (``"q"``) of ``pi_old`` with
    ``H - t`` steps to go, ``p_t`` the law of ``s_t`` under ``pi_old`` (backward
    and forward recursions, refpg.evaluation (E6)-(E7)). With discounted
    weights and the A form this is ``L^H_old(pi_theta) - J_H(pi_old)``. The
    expectation of ``single_path_surrogate`` and ``vine_surrogate`` (modes
    "all", "sampled"). Complex-safe in ``theta``.
    derivations/surrogate.md#the-exact-finite-horizon-surrogate
    """
    _check_choice("form", form, ("advantage", "q"))
    _check_choice("state_weighting", state_weighting, _WEIGHTINGS)
    _, H, fh = _fh(mdp, policy, theta_old, horizon)
    pi = policy.probs_table(theta)
    X = fh.A if form == "advantage" else fh.Q
    kappa = mdp.gamma ** np.arange(H) if state_weighting == "discounted" else np.ones(H)
    return np.einsum("t,ts,sa,tsa->", kappa, fh.p, pi, X)


def truncation_bound(mdp, horizon):
    """(S3): ``|M_H^A(theta) - (L_old(pi_theta) - eta(pi_old))|
    <= 2 gamma^H R (H + 1/(1-gamma)) / (1-gamma)``.

    ``R = max |r(s, a)|``; ``gamma < 1``. derivations/surrogate.md#finite-versus-infinite-horizon
    """
    if not isinstance(mdp, FiniteMDP):
        raise TypeError(f"mdp must be a FiniteMDP; got {type(mdp).__name__}")
    H = check_positive_int("horizon", horizon)
    g = mdp.gamma
    if g >= 1.0:
        raise ValueError("truncation_bound needs gamma < 1")
    R = float(np.max(np.abs(mdp.r)))
    return 2.0 * g ** H * R * (H + 1.0 / (1.0 - g)) / (1.0 - g)
