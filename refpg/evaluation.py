"""Exact policy evaluation on finite MDPs (SCOPE M2).

Infinite horizon, by linear solves (derivations/evaluation.md):

    V   = (I - gamma P_pi)^{-1} r_pi                                   (E1)
    Q   = r + gamma P V,   A = Q - V = sum_a' pi(a') (Q(., a) - Q(., a'))  (E2)
    eta = rho0 . V                                                     (E3)
    rho = (I - gamma P_pi^T)^{-1} rho0,  sum_s rho(s) = 1/(1-gamma)    (E4)
    d   = (1 - gamma) rho                                              (E5)

Finite horizon ``H``, by backward recursion (time-indexed):

    V_H = 0,  Q_t = r + gamma P V_{t+1},  V_t = sum_a pi_t Q_t         (E6)
    p_0 = rho0,  p_{t+1} = p_t P_{pi_t}                                (E7)
    J_H = rho0 . V_0 = sum_t gamma^t p_t . r_{pi_t}                    (E8)

Return moments (mean and variance of the return, for calibrated Monte-Carlo
tests), by the variance Bellman equation:

    W = (I - gamma^2 P_pi)^{-1} c,  c(s) = E[(r + gamma V(s') - V(s))^2 | s]   (E10)
    Var[G] = rho0 . W + rho0 . (V - eta)^2                                    (E11)

Every routine accepts a ``complex128`` policy table so that complex-step
derivatives of ``eta`` reach machine precision. ``A`` is computed by the
pairwise form of (E2), which is exact to rounding relative to ``|Q|`` times the
probability of the other actions: ``Q - V`` cancels when one action has
probability close to 1, and the advantage of that action is then lost
(derivations/evaluation.md#policy-evaluation).

``gamma = 1`` without a horizon (episodic MDPs) solves on the non-terminal
states only; ``rho`` is then the expected number of visits (zero on terminal
states), ``sum rho`` the expected episode length and ``d = rho / sum rho``.
A policy that does not reach a terminal state with probability one from
every state is *improper*: ``ValueError`` says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lu_factor, lu_solve

from .mdp import FiniteMDP
from .validation import as_float_array, check_positive_int, check_probabilities

__all__ = ["Evaluation", "FiniteHorizonEvaluation", "check_policy_table",
           "policy_transition", "policy_reward", "evaluate", "state_values",
           "action_values", "advantages", "expected_return", "discounted_visitation",
           "evaluate_finite_horizon", "ReturnMoments", "return_moments", "centred_action_values"]


def _check_mdp(mdp):
    if not isinstance(mdp, FiniteMDP):
        raise TypeError(f"mdp must be a FiniteMDP; got {type(mdp).__name__}")
    return mdp


def check_policy_table(mdp, pi, *, name="pi", time_indexed=False):
    """Validate a policy table ``pi: (S, A)`` (or ``(H, S, A)`` if ``time_indexed``).

    Rows must be probability vectors (real part, so complex-step tables pass).
    Returns the table as float64 or complex128. derivations/evaluation.md#setting
    """
    _check_mdp(mdp)
    S, A = mdp.n_states, mdp.n_actions
    arr = as_float_array(name, pi, allow_complex=True)
    if time_indexed and arr.ndim == 3:
        if arr.shape[1:] != (S, A):
            raise ValueError(f"{name} must have shape (H, S, A) = (H, {S}, {A}); got {arr.shape}")
    elif arr.shape != (S, A):
        want = f"(S, A) = ({S}, {A})" + (" or (H, S, A)" if time_indexed else "")
        raise ValueError(f"{name} must have shape {want}; got {arr.shape}")
    check_probabilities(f"{name} rows", arr, axis=-1)
    return arr


def policy_transition(mdp, pi):
    """``P_pi[s, s'] = sum_a pi(a|s) P[s, a, s']``, shape (S, S). derivations/evaluation.md#policy-evaluation"""
    pi = check_policy_table(mdp, pi)
    return np.einsum("sa,sat->st", pi, mdp.P)


def policy_reward(mdp, pi):
    """``r_pi[s] = sum_a pi(a|s) r(s, a)``, shape (S,). derivations/evaluation.md#policy-evaluation"""
    pi = check_policy_table(mdp, pi)
    return np.einsum("sa,sa->s", pi, mdp.r)


def _reaches_terminal(mdp, pi):
    """Non-terminal states from which no terminal state is reachable under ``pi``."""
    S = mdp.n_states
    adj = np.einsum("sa,sat->st", np.real(pi) > 0, mdp.P > 0) > 0
    good = mdp.terminal.copy()
    while True:
        new = good | (adj & good[None, :]).any(axis=1)
        if np.array_equal(new, good):
            break
        good = new
    return np.flatnonzero(~good[:S])


@dataclass(frozen=True)
class Evaluation:
    """Exact infinite-horizon quantities of one policy (E1-E5).

    ``V: (S,)``, ``Q: (S, A)``, ``A: (S, A)``, ``eta``: scalar, ``rho: (S,)``
    unnormalised discounted visitation, ``d: (S,)`` normalised visitation.
    For ``gamma = 1`` (episodic) ``rho`` counts expected visits and ``d = rho /
    sum(rho)``; ``d`` is all zeros when ``rho0`` sits on terminal states only
    (episodes of length 0, nothing to normalise). derivations/evaluation.md#policy-evaluation
    """

    V: np.ndarray
    Q: np.ndarray
    A: np.ndarray
    eta: complex | float
    rho: np.ndarray
    d: np.ndarray


def evaluate(mdp, pi):
    """Exact ``V, Q, A, eta, rho, d`` of the stationary policy ``pi: (S, A)``.

    Equations (E1)-(E5) of derivations/evaluation.md#policy-evaluation; one
    dense LU factorisation of ``I - gamma P_pi`` serves both ``V`` and (by a
    transposed solve) ``rho``: O(S^3), fine for S up to a few thousand.
    Complex-safe (the transposed solve is a plain transpose, not a conjugate
    one).
    """
    pi = check_policy_table(mdp, pi)
    S = mdp.n_states
    gamma = mdp.gamma
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = np.einsum("sa,sa->s", pi, mdp.r)
    live = _live_states(mdp, pi)
    lu = _factor(np.eye(int(live.sum())) - gamma * P_pi[np.ix_(live, live)])
    V = np.zeros(S, dtype=lu[0].dtype)
    V[live] = lu_solve(lu, r_pi[live])
    rho = np.zeros(S, dtype=lu[0].dtype)
    rho[live] = lu_solve(lu, mdp.rho0[live].astype(lu[0].dtype), trans=1)
    if gamma < 1.0 and not live.all():
        # discounted time in absorbing terminal states (E4 restricted to them):
        # rho(T) = (rho0(T) + gamma sum_{s live} rho(s) P_pi(s, T)) / (1 - gamma)
        term = ~live
        rho[term] = (mdp.rho0[term] + gamma * (rho[live] @ P_pi[np.ix_(live, term)])) \
            / (1.0 - gamma)
    Q = mdp.r + gamma * (mdp.P @ V)
    A = centred_action_values(Q, pi)
    eta = mdp.rho0 @ V
    if gamma < 1.0:
        d = (1.0 - gamma) * rho
    else:
        length = np.sum(rho)
        d = rho / length if np.real(length) > 0 else np.zeros_like(rho)
    return Evaluation(V=V, Q=Q, A=A, eta=eta, rho=rho, d=d)


def centred_action_values(Q, pi):
    """``A(., a) = sum_a' pi(a') (Q(., a) - Q(., a'))``, i.e. ``Q - sum_a' pi Q``: ``Q.shape``.

    ``Q: (..., S, A)``, ``pi: (S, A)`` or ``(..., S, A)`` (broadcast). The pairwise
    form (E2) has no cancellation: each term is a difference of action values
    times the probability of the *other* action, so when ``pi(a) -> 1`` the
    advantage ``(1 - pi(a)) (Q(a) - Q(a'))`` of ``a`` keeps its relative
    accuracy, which ``Q - V`` loses (``V`` rounds to ``Q(a)``). Complex-safe.
    derivations/evaluation.md#policy-evaluation
    """
    out = np.empty(np.broadcast_shapes(Q.shape, pi.shape), dtype=np.result_type(Q, pi))
    for a in range(Q.shape[-1]):
        out[..., a] = np.einsum("...b,...b->...", pi, Q[..., a:a + 1] - Q)
    return out


def _live_states(mdp, pi):
    """States on which (E1) is solved: the non-terminal ones (``V = 0`` exactly on terminals).

    For ``gamma = 1`` this also rejects MDPs without terminal states and
    improper policies (derivations/evaluation.md#episodic-tasks-gamma--1).
    """
    if mdp.gamma < 1.0:
        return ~mdp.terminal
    if not mdp.terminal.any():
        raise ValueError("gamma = 1 evaluation needs terminal states (episodic MDP); "
                         "use evaluate_finite_horizon for a finite horizon")
    stuck = _reaches_terminal(mdp, pi)
    if stuck.size:
        raise ValueError(f"pi is improper: with gamma = 1 no terminal state is reachable "
                         f"from state(s) {stuck[:10].tolist()}; its return is undefined")
    return ~mdp.terminal


def _factor(M):
    """LU factors of ``M`` (one factorisation serves ``M x = b`` and ``M^T y = c``)."""
    lu = lu_factor(M, check_finite=False)
    diag = np.diagonal(lu[0])
    if diag.size and np.min(np.abs(diag)) == 0.0:  # pragma: no cover - excluded by theory
        raise ValueError("I - gamma P_pi is singular; cannot evaluate this policy")
    return lu


def state_values(mdp, pi):
    """``V_pi: (S,)`` by (E1). derivations/evaluation.md#policy-evaluation"""
    return evaluate(mdp, pi).V


def action_values(mdp, pi):
    """``Q_pi: (S, A)`` by (E2). derivations/evaluation.md#policy-evaluation"""
    return evaluate(mdp, pi).Q


def advantages(mdp, pi):
    """``A_pi = Q_pi - V_pi: (S, A)`` by (E2), in its pairwise form (no cancellation). derivations/evaluation.md#policy-evaluation"""
    return evaluate(mdp, pi).A


def expected_return(mdp, pi):
    """``eta(pi) = E[sum_t gamma^t r(s_t, a_t)]`` by (E3). derivations/evaluation.md#policy-evaluation"""
    return evaluate(mdp, pi).eta


def discounted_visitation(mdp, pi, *, normalized=False):
    """``rho_pi: (S,)`` (E4), or ``d_pi = (1-gamma) rho_pi`` (E5) if ``normalized``.

    derivations/evaluation.md#discounted-visitation
    """
    ev = evaluate(mdp, pi)
    return ev.d if normalized else ev.rho


@dataclass(frozen=True)
class FiniteHorizonEvaluation:
    """Exact time-indexed quantities for horizon ``H`` (E6-E8).

    ``V: (H+1, S)`` with ``V[H] = 0``; ``Q, A: (H, S, A)``; ``J``: scalar
    ``J_H``; ``p: (H, S)`` state distribution of ``s_t``; ``rho: (S,)``
    ``= sum_t gamma^t p_t``. derivations/evaluation.md#finite-horizon
    """

    V: np.ndarray
    Q: np.ndarray
    A: np.ndarray
    J: complex | float
    p: np.ndarray
    rho: np.ndarray


def evaluate_finite_horizon(mdp, pi, horizon=None):
    """Backward recursion (E6) and forward state distributions (E7) for ``J_H`` (E8).

    ``pi`` is ``(S, A)`` (stationary) or ``(H, S, A)`` (time-indexed);
    ``horizon`` defaults to ``mdp.horizon``. Any ``gamma`` in [0, 1].
    derivations/evaluation.md#finite-horizon
    """
    pi = check_policy_table(mdp, pi, time_indexed=True)
    if horizon is None:
        horizon = pi.shape[0] if pi.ndim == 3 else mdp.horizon
        if horizon is None:
            raise ValueError("horizon must be given (mdp.horizon is None and pi is not time-indexed)")
    H = check_positive_int("horizon", horizon)
    if pi.ndim == 3 and pi.shape[0] != H:
        raise ValueError(f"pi has {pi.shape[0]} time steps but horizon = {H}")
    pis = pi if pi.ndim == 3 else np.broadcast_to(pi, (H,) + pi.shape)
    S, A = mdp.n_states, mdp.n_actions
    dtype = np.result_type(pis.dtype, np.float64)
    V = np.zeros((H + 1, S), dtype=dtype)
    Q = np.zeros((H, S, A), dtype=dtype)
    for t in range(H - 1, -1, -1):
        Q[t] = mdp.r + mdp.gamma * (mdp.P @ V[t + 1])
        V[t] = np.einsum("sa,sa->s", pis[t], Q[t])
    p = np.zeros((H, S), dtype=dtype)
    p[0] = mdp.rho0
    for t in range(H - 1):
        p[t + 1] = np.einsum("s,sa,sat->t", p[t], pis[t], mdp.P)
    rho = np.einsum("t,ts->s", mdp.gamma ** np.arange(H), p)
    J = mdp.rho0 @ V[0]
    return FiniteHorizonEvaluation(V=V, Q=Q, A=centred_action_values(Q, pis), J=J, p=p,
                                   rho=rho)


@dataclass(frozen=True)
class ReturnMoments:
    """Exact mean and variance of the return ``G`` (E9-E11).

    ``mean = E[G]`` and ``variance = Var[G]`` with ``s_0 ~ rho0``; ``V`` and
    ``W`` are the per-state mean and variance ``E[G | s_0 = s]``,
    ``Var[G | s_0 = s]``: shape ``(S,)`` for the infinite (or episodic)
    return, ``(H+1, S)`` (time-indexed, ``V[H] = W[H] = 0``) for a horizon.
    derivations/evaluation.md#return-variance
    """

    mean: complex | float
    variance: complex | float
    V: np.ndarray
    W: np.ndarray


def return_moments(mdp, pi, horizon=None):
    """Exact ``E[G]`` and ``Var[G]`` of ``G = sum_{t<H} gamma^t r(s_t, a_t)`` under ``pi: (S, A)``.

    ``horizon=None``: the infinite-horizon return (``gamma < 1``) or the
    episodic one (``gamma = 1``, proper ``pi``); otherwise the truncated
    return of ``horizon`` steps (``pi`` may then be ``(H, S, A)``). The
    per-state variance solves the variance Bellman equation (E10)

        W(s) = sum_a pi(a|s) sum_s' P[s, a, s'] ((r(s, a) + gamma V(s') - V(s))^2 + gamma^2 W(s'))

    (a linear solve with ``I - gamma^2 P_pi``, or a backward recursion over
    ``t``), and ``Var[G] = rho0 . W + rho0 . (V - eta)^2`` (E11); no
    difference of large second moments is formed. The reward of a step is
    ``r(s_t, a_t)`` exactly, as refpg's samplers produce it; an environment
    whose rewards are random given ``(s, a)`` has a larger variance.
    Complex-safe. derivations/evaluation.md#return-variance
    """
    pi = check_policy_table(mdp, pi, time_indexed=True)
    if horizon is None and pi.ndim == 2:
        gamma = mdp.gamma
        V = evaluate(mdp, pi).V
        live = _live_states(mdp, pi)
        # c(s) = sum_a pi sum_s' P (r + gamma V(s') - V(s))^2
        dev = mdp.r[:, :, None] + gamma * V[None, None, :] - V[:, None, None]
        c = np.einsum("sa,sat,sat->s", pi, mdp.P, dev * dev)
        P_pi = np.einsum("sa,sat->st", pi, mdp.P)
        W = np.zeros_like(V)
        lu = _factor(np.eye(int(live.sum())) - gamma * gamma * P_pi[np.ix_(live, live)])
        W[live] = lu_solve(lu, c[live].astype(lu[0].dtype))
    else:
        fh = evaluate_finite_horizon(mdp, pi, horizon)
        H = fh.V.shape[0] - 1
        pis = pi if pi.ndim == 3 else np.broadcast_to(pi, (H,) + pi.shape)
        gamma = mdp.gamma
        V = fh.V
        W = np.zeros_like(V)
        for t in range(H - 1, -1, -1):
            dev = mdp.r[:, :, None] + gamma * V[t + 1][None, None, :] - V[t][:, None, None]
            W[t] = np.einsum("sa,sat,sat->s", pis[t], mdp.P,
                             dev * dev + gamma * gamma * W[t + 1][None, None, :])
    V0 = V if V.ndim == 1 else V[0]
    W0 = W if W.ndim == 1 else W[0]
    mean = mdp.rho0 @ V0
    spread = V0 - mean
    variance = mdp.rho0 @ W0 + mdp.rho0 @ (spread * spread)
    return ReturnMoments(mean=mean, variance=variance, V=V, W=W)
