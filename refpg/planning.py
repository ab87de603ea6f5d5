"""Optimal control of finite MDPs: value iteration, policy iteration, backward induction (SCOPE M2).

Bellman optimality operator (derivations/planning.md#the-bellman-optimality-equation):

    (T V)(s) = max_a Q_V(s, a),   Q_V = r + gamma P V                  (O1)
    V* = T V*,   pi*(s) in argmax_a Q*(s, a)                           (O2)

Value iteration (derivations/planning.md#value-iteration) iterates
``V_{k+1} = T V_k`` from ``V_0 = 0`` and stops at the first ``k`` with

    gamma / (1 - gamma) ||V_{k+1} - V_k||_inf <= atol + rtol ||V_{k+1}||_inf   (O3)

because ``||V_{k+1} - V*||_inf <= gamma / (1 - gamma) ||V_{k+1} - V_k||_inf``.
Every result reports the a-posteriori bound ``||V - V*||_inf <=
||T V - V||_inf / (1 - gamma)`` (O4) and, for the greedy policy,
``||V_greedy - V*||_inf <= 2 ||T V - V||_inf / (1 - gamma)`` (O5).

Policy iteration (derivations/planning.md#policy-iteration) alternates exact
evaluation (a linear solve, refpg.evaluation) and greedy improvement that keeps
the current action unless another is better by more than a rounding tolerance;
it stops when the policy is stable, after finitely many steps.

Backward induction (derivations/planning.md#backward-induction) solves the
finite-horizon problem exactly for any ``gamma`` in [0, 1]:

    V_H = 0,  Q_t = r + gamma P V_{t+1},  V_t = max_a Q_t,  pi_t = argmax_a Q_t   (O6)

``gamma = 1`` without a horizon is the stochastic shortest path problem
(derivations/planning.md#episodic-tasks-gamma--1): value iteration then has no
contraction bound (``error_bound = inf``) and policy iteration needs a proper
starting policy, which refpg constructs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluation import _check_mdp, evaluate
from .validation import as_float_array, as_index_array, check_positive_int

__all__ = ["OptimalControl", "FiniteHorizonControl", "bellman_optimality_backup",
           "greedy_actions", "deterministic_policy", "proper_actions", "value_iteration",
           "policy_iteration", "backward_induction"]


@dataclass(frozen=True)
class OptimalControl:
    """Result of ``value_iteration`` or ``policy_iteration``.

    ``V: (S,)`` the returned value estimate; ``Q: (S, A)`` ``= r + gamma P V``;
    ``actions: (S,)`` int, a greedy action per state (the first maximiser of
    ``Q``); ``pi: (S, A)`` the same policy as a one-hot table; ``iterations``:
    backups (VI) or improvement steps (PI); ``residual``: the Bellman
    optimality residual ``||T V - V||_inf`` (O4); ``error_bound``: a
    guaranteed bound on ``||V - V*||_inf`` (``residual / (1 - gamma)``,
    ``inf`` for ``gamma = 1``); ``policy_error_bound``: a bound on
    ``||V_greedy - V*||_inf`` (O5); ``converged``: the stopping rule was met
    (VI) or the policy became stable (PI); ``method``: ``"value_iteration"``
    or ``"policy_iteration"``. derivations/planning.md#value-iteration
    """

    V: np.ndarray
    Q: np.ndarray
    actions: np.ndarray
    pi: np.ndarray
    iterations: int
    residual: float
    error_bound: float
    policy_error_bound: float
    converged: bool
    method: str


@dataclass(frozen=True)
class FiniteHorizonControl:
    """Result of ``backward_induction`` (O6).

    ``V: (H+1, S)`` optimal values with ``t`` steps elapsed (``V[H] = 0``);
    ``Q: (H, S, A)``; ``actions: (H, S)`` int, an optimal time-indexed
    deterministic policy; ``pi: (H, S, A)`` the same as one-hot tables;
    ``J``: ``rho0 . V[0]``, the optimal ``J_H``.
    derivations/planning.md#backward-induction
    """

    V: np.ndarray
    Q: np.ndarray
    actions: np.ndarray
    pi: np.ndarray
    J: float


def _real_mdp(mdp):
    _check_mdp(mdp)
    return mdp


def _check_values(mdp, V, name="V"):
    return as_float_array(name, V, shape=(mdp.n_states,))


def bellman_optimality_backup(mdp, V):
    """``(T V, Q_V)`` for ``V: (S,)``: ``Q_V = r + gamma P V`` ``(S, A)``, ``T V = max_a Q_V`` (O1).

    derivations/planning.md#the-bellman-optimality-equation
    """
    _real_mdp(mdp)
    V = _check_values(mdp, V)
    Q = mdp.r + mdp.gamma * (mdp.P @ V)
    return Q.max(axis=1), Q


def greedy_actions(Q):
    """First maximiser of each row of ``Q: (S, A)``, shape ``(S,)`` int (O2).

    derivations/planning.md#the-bellman-optimality-equation
    """
    Q = as_float_array("Q", Q, ndim=2)
    return np.argmax(Q, axis=1).astype(np.int64)


def deterministic_policy(actions, n_actions):
    """One-hot policy table from ``actions: (S,)`` (or ``(H, S)``) int; shape ``(..., A)``.

    derivations/planning.md#the-bellman-optimality-equation
    """
    A = check_positive_int("n_actions", n_actions)
    actions = as_index_array("actions", actions, upper=A)
    return np.eye(A)[actions]


def proper_actions(mdp):
    """A deterministic proper policy for an episodic MDP: ``actions: (S,)`` int.

    Every non-terminal state takes an action with positive probability of
    moving strictly closer (in graph distance over positive-probability
    transitions, under the best action) to the terminal set, so from every
    state a terminal state is reached with probability one. Raises
    ``ValueError`` naming the states from which no action sequence can reach a
    terminal state (no proper policy exists).
    derivations/planning.md#episodic-tasks-gamma--1
    """
    _real_mdp(mdp)
    S = mdp.n_states
    if not mdp.terminal.any():
        raise ValueError("mdp has no terminal state: no proper policy exists")
    reach = mdp.P > 0  # (S, A, S)
    dist = np.full(S, np.inf)
    dist[mdp.terminal] = 0.0
    actions = np.zeros(S, dtype=np.int64)
    level = 0
    while True:
        frontier = dist == level
        # states not yet labelled with an action that reaches the frontier
        hits = reach[:, :, frontier].any(axis=2) & ~np.isfinite(dist)[:, None]
        new = hits.any(axis=1)
        if not new.any():
            break
        actions[new] = np.argmax(hits[new], axis=1)
        level += 1
        dist[new] = level
    stuck = np.flatnonzero(~np.isfinite(dist))
    if stuck.size:
        raise ValueError(f"no proper policy exists: no terminal state is reachable from "
                         f"state(s) {stuck[:10].tolist()} under any actions")
    return actions


def _stop_scale(V, atol, rtol):
    return atol + rtol * float(np.max(np.abs(V))) if V.size else atol


def _result(mdp, V, iterations, converged, method):
    TV, Q = bellman_optimality_backup(mdp, V)
    residual = float(np.max(np.abs(TV - V)))
    if mdp.gamma < 1.0:
        bound = residual / (1.0 - mdp.gamma)
        policy_bound = 2.0 * bound
    else:
        bound = policy_bound = float("inf")
    actions = greedy_actions(Q)
    return OptimalControl(V=V, Q=Q, actions=actions,
                          pi=deterministic_policy(actions, mdp.n_actions),
                          iterations=int(iterations), residual=residual, error_bound=bound,
                          policy_error_bound=policy_bound, converged=bool(converged),
                          method=method)


def _check_infinite_horizon(mdp, routine):
    if mdp.gamma == 1.0 and not mdp.terminal.any():
        raise ValueError(f"{routine} with gamma = 1 needs terminal states (an episodic MDP); "
                         f"for a finite horizon use backward_induction")


def value_iteration(mdp, *, atol=1e-10, rtol=1e-12, max_iter=100_000, V0=None):
    """Value iteration ``V_{k+1} = T V_k`` (O1) with the stopping rule (O3).

    Stops at the first ``k`` with ``gamma/(1-gamma) ||V_{k+1} - V_k||_inf <=
    atol + rtol ||V_{k+1}||_inf``, which guarantees ``||V_{k+1} - V*||_inf``
    below the same number; returns ``V = V_{k+1}`` in an ``OptimalControl``
    whose ``error_bound`` (O4) is recomputed from ``V`` itself. With
    ``gamma = 1`` (episodic, stochastic shortest path) the rule is
    ``||V_{k+1} - V_k||_inf <= atol + rtol ||V_{k+1}||_inf`` and no error
    bound is available (``error_bound = inf``). ``V0: (S,)`` defaults to 0
    (it must be 0 on terminal states). ``converged = False`` when
    ``max_iter`` backups did not meet the rule (for example when rounding
    keeps the residual above a too small ``atol``).
    derivations/planning.md#value-iteration
    """
    _real_mdp(mdp)
    _check_infinite_horizon(mdp, "value_iteration")
    gamma = mdp.gamma
    max_iter = check_positive_int("max_iter", max_iter)
    for name, tol in (("atol", atol), ("rtol", rtol)):
        if not (np.isfinite(tol) and tol >= 0):
            raise ValueError(f"{name} must be finite and >= 0; got {tol!r}")
    if V0 is None:
        V = np.zeros(mdp.n_states)
    else:
        V = _check_values(mdp, V0, "V0").copy()
        if np.any(V[mdp.terminal] != 0):
            raise ValueError("V0 must be 0 on terminal states")
    factor = gamma / (1.0 - gamma) if gamma < 1.0 else 1.0
    converged = False
    k = 0
    while k < max_iter:
        V_new = (mdp.r + gamma * (mdp.P @ V)).max(axis=1)
        k += 1
        delta = float(np.max(np.abs(V_new - V)))
        V = V_new
        if factor * delta <= _stop_scale(V, atol, rtol):
            converged = True
            break
    return _result(mdp, V, k, converged, "value_iteration")


def policy_iteration(mdp, *, initial_actions=None, max_iter=10_000, tie_rtol=1e-12):
    """Policy iteration: exact evaluation (E1) then greedy improvement, until stable.

    ``initial_actions: (S,)`` int defaults to the greedy policy for ``r``
    (``gamma < 1``) or ``proper_actions(mdp)`` (``gamma = 1``, which needs a
    proper start). The improvement keeps ``a_k(s)`` unless
    ``max_a Q_k(s, a) > Q_k(s, a_k(s)) + tie_rtol * max(1, ||Q_k||_inf)``,
    so rounding cannot make it cycle; each switch then raises ``V`` by more
    than rounding (policy improvement theorem) and the loop ends after
    finitely many steps with ``T V = V`` up to that tolerance.
    With ``gamma = 1`` an improvement step that yields an improper policy
    (possible only when the MDP violates the stochastic-shortest-path
    assumption that every improper policy has return ``-inf`` from some state)
    raises ``ValueError``. derivations/planning.md#policy-iteration
    """
    _real_mdp(mdp)
    _check_infinite_horizon(mdp, "policy_iteration")
    S, A = mdp.n_states, mdp.n_actions
    max_iter = check_positive_int("max_iter", max_iter)
    if not (np.isfinite(tie_rtol) and tie_rtol >= 0):
        raise ValueError(f"tie_rtol must be finite and >= 0; got {tie_rtol!r}")
    if initial_actions is None:
        actions = (greedy_actions(mdp.r) if mdp.gamma < 1.0 else proper_actions(mdp))
    else:
        actions = as_index_array("initial_actions", initial_actions, upper=A,
                                 shape=(S,)).copy()
    converged = False
    k = 0
    while True:
        try:
            ev = evaluate(mdp, deterministic_policy(actions, A))
        except ValueError as exc:
            if k == 0:
                raise ValueError(f"initial_actions: {exc}") from exc
            raise ValueError(
                f"policy iteration reached an improper policy at step {k} ({exc}); the "
                f"MDP violates the stochastic-shortest-path assumption (every improper "
                f"policy has return -inf from some state): use value_iteration or "
                f"gamma < 1") from exc
        Q = ev.Q
        best = greedy_actions(Q)
        q_now = Q[np.arange(S), actions]
        tie = tie_rtol * max(1.0, float(np.max(np.abs(Q))))
        switch = Q[np.arange(S), best] > q_now + tie
        if not switch.any():
            converged = True
            break
        if k >= max_iter:
            break
        actions = np.where(switch, best, actions)
        k += 1
    res = _result(mdp, ev.V, k, converged, "policy_iteration")
    # report the policy PI ended with (equal to the greedy one up to ties)
    return OptimalControl(V=res.V, Q=res.Q, actions=actions,
                          pi=deterministic_policy(actions, A), iterations=res.iterations,
                          residual=res.residual, error_bound=res.error_bound,
                          policy_error_bound=res.policy_error_bound,
                          converged=res.converged, method=res.method)


def backward_induction(mdp, horizon=None):
    """Exact finite-horizon optimal control (O6) for any ``gamma`` in [0, 1].

    ``horizon`` defaults to ``mdp.horizon``. Returns a
    ``FiniteHorizonControl`` with ``V: (H+1, S)``, ``Q: (H, S, A)``,
    ``actions: (H, S)`` and ``J = rho0 . V[0]``; ``J`` is the largest ``J_H``
    of any (history-dependent, randomised) policy.
    derivations/planning.md#backward-induction
    """
    _real_mdp(mdp)
    if horizon is None:
        horizon = mdp.horizon
        if horizon is None:
            raise ValueError("horizon must be given (mdp.horizon is None)")
    H = check_positive_int("horizon", horizon)
    S, A = mdp.n_states, mdp.n_actions
    V = np.zeros((H + 1, S))
    Q = np.zeros((H, S, A))
    for t in range(H - 1, -1, -1):
        Q[t] = mdp.r + mdp.gamma * (mdp.P @ V[t + 1])
        V[t] = Q[t].max(axis=1)
    actions = np.argmax(Q, axis=2).astype(np.int64)
    return FiniteHorizonControl(V=V, Q=Q, actions=actions,
                                pi=deterministic_policy(actions, A), J=float(mdp.rho0 @ V[0]))
