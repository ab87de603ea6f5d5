"""Report section 'models': finite MDPs, exact evaluation and planning (SCOPE M1-M2).

Every row compares two independent routes on a built-in model with a fixed seed:
linear solves against recursions, closed forms and published tables, value
iteration against policy iteration, and the gymnasium import against a value
iteration run directly on the environment's own dict table. See
derivations/evaluation.md, derivations/classic.md, derivations/planning.md and
derivations/gym_tabular.md.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..classic import (GRIDWORLD_OPTIMAL_VALUES, GRIDWORLD_RANDOM_POLICY_VALUES,
                       SHORT_CORRIDOR_BEST_PROB_RIGHT, gridworld, random_walk,
                       random_walk_closed_form, short_corridor, short_corridor_policy,
                       short_corridor_value, two_state_chain, two_state_chain_closed_form)
from ..evaluation import evaluate, evaluate_finite_horizon, return_moments
from ..mdp import random_mdp
from ..planning import backward_induction, deterministic_policy, policy_iteration, value_iteration
from . import compare

__all__ = ["checks"]

SECTION = "models"


def _enumerate_return(mdp, pi, H):
    """Mean and variance of the H-step return over every trajectory (tiny MDPs)."""
    S, A = mdp.n_states, mdp.n_actions
    m1 = m2 = 0.0
    for path in itertools.product(range(S), *([range(A), range(S)] * H)):
        s, prob, G = path[0], mdp.rho0[path[0]], 0.0
        for t in range(H):
            a, s2 = path[1 + 2 * t], path[2 + 2 * t]
            prob *= pi[s, a] * mdp.P[s, a, s2]
            G += mdp.gamma ** t * mdp.r[s, a]
            s = s2
        m1 += prob * G
        m2 += prob * G * G
    return m1, m2 - m1 * m1


def _value_iteration_on_env_table(table, S, A, gamma, tol=1e-13, max_iter=100_000):
    """V(s) = max_a sum_entries p (r + gamma (1 - terminated) V(s')) on env.unwrapped.P."""
    rows = [(s, a, p, s2, r, t) for s in range(S) for a in range(A)
            for (p, s2, r, t) in table[s][a]]
    s, a, p, s2, r, t = (np.array(c) for c in zip(*rows))
    s, a, s2, t = s.astype(int), a.astype(int), s2.astype(int), t.astype(bool)
    p, r = p.astype(float), r.astype(float)
    V = np.zeros(S)
    for _ in range(max_iter):
        Q = np.zeros((S, A))
        np.add.at(Q, (s, a), p * (r + gamma * np.where(t, 0.0, V[s2])))
        V_new = Q.max(axis=1)
        if np.max(np.abs(V_new - V)) <= tol:
            return V_new
        V = V_new
    return np.full(S, np.nan)  # not converged: the row fails


def _evaluation_rows():
    rng = np.random.default_rng(0)
    mdp = random_mdp(rng, 6, 3, gamma=0.95)
    pi = rng.dirichlet(np.ones(3), size=6)
    ev = evaluate(mdp, pi)
    fh = evaluate_finite_horizon(mdp, pi, 2000)
    r_pi = (pi * mdp.r).sum(axis=1)
    rows = [
        compare(SECTION, "eta (random MDP, gamma 0.95)", "linear solve (E1, E3)",
                "finite-horizon recursion H=2000 (E6)", ev.eta, fh.J, 1e-12, relative=True,
                note="tail gamma^H max|r|/(1-gamma) < 1e-40"),
        compare(SECTION, "sum rho = 1/(1-gamma)", "visitation solve (E4)", "1/(1-gamma)",
                ev.rho.sum(), 1 / (1 - mdp.gamma), 1e-12, relative=True),
        compare(SECTION, "eta = rho . r_pi", "rho0 . V (E3)", "rho . r_pi (E4)", ev.eta,
                ev.rho @ r_pi, 1e-12, relative=True),
    ]
    tiny = random_mdp(np.random.default_rng(1), 2, 2, gamma=0.8)
    pi2 = np.random.default_rng(2).dirichlet(np.ones(2), size=2)
    mean, var = _enumerate_return(tiny, pi2, 4)
    mom = return_moments(tiny, pi2, horizon=4)
    rows.append(compare(SECTION, "mean, variance of the H=4 return", "variance Bellman "
                        "recursion (E10-E11)", "enumeration of 4096 trajectories",
                        [mom.mean, mom.variance], [mean, var], 1e-10, relative=True))
    h = 1e-20
    x0 = 0.3
    pi_b = np.random.default_rng(3).dirichlet(np.ones(3), size=6)
    cs = np.imag(evaluate(mdp, (1 - x0 - 1j * h) * pi + (x0 + 1j * h) * pi_b).eta) / h
    ev0 = evaluate(mdp, (1 - x0) * pi + x0 * pi_b)
    rows.append(compare(SECTION, "d eta / dx along a policy mixture", "complex step through "
                        "evaluate", "rho . sum_a (pi_b - pi) Q", cs,
                        ev0.rho @ ((pi_b - pi) * ev0.Q).sum(axis=1), 1e-12, relative=True))
    return rows


def _classic_rows():
    rows = []
    mdp = two_state_chain(0.3, 0.6, 1.0, -2.0, gamma=0.9, rho0=(0.25, 0.75))
    cf = two_state_chain_closed_form(0.3, 0.6, 1.0, -2.0, gamma=0.9, rho0=(0.25, 0.75))
    ev = evaluate(mdp, np.ones((2, 1)))
    rows.append(compare(SECTION, "two-state chain V, rho", "linear solve", "closed form (C1-C2)",
                        np.r_[ev.V, ev.rho], np.r_[cf.V, cf.rho], 1e-13, relative=True))
    rw = random_walk()
    ev = evaluate(rw, np.full((7, 2), 0.5))
    V, rho = random_walk_closed_form()
    rows.append(compare(SECTION, "random walk V (S&B Ex. 6.2: 1/6..5/6)", "linear solve",
                        "closed form k/6 (C4)", ev.V, V, 1e-14))
    rows.append(compare(SECTION, "random walk expected visits", "visitation solve",
                        "Green's function (C5)", ev.rho, rho, 1e-14))
    gw = gridworld()
    Vr = evaluate(gw, np.full((25, 4), 0.25)).V.reshape(5, 5)
    rows.append(compare(SECTION, "gridworld V, random policy", "linear solve",
                        "S&B Fig. 3.2 (1 decimal)", Vr, GRIDWORLD_RANDOM_POLICY_VALUES,
                        0.05 + 1e-12, note="tolerance = printed rounding"))
    pi = policy_iteration(gw)
    rows.append(compare(SECTION, "gridworld V*", "policy iteration", "S&B Fig. 3.5 (1 decimal)",
                        pi.V.reshape(5, 5), GRIDWORLD_OPTIMAL_VALUES, 0.05 + 1e-12,
                        note="tolerance = printed rounding"))
    rows.append(compare(SECTION, "gridworld V*(A)", "policy iteration", "10 / (1 - gamma^5)",
                        pi.V[1], 10 / (1 - 0.9 ** 5), 1e-13, relative=True))
    sc = short_corridor()
    p = SHORT_CORRIDOR_BEST_PROB_RIGHT
    rows.append(compare(SECTION, "short corridor J(2 - sqrt 2)", "linear solve",
                        "closed form (C6)", evaluate(sc, short_corridor_policy(p)).eta,
                        short_corridor_value(p), 1e-13, relative=True))
    h = 1e-20
    d = np.imag(evaluate(sc, short_corridor_policy(p + 1j * h)).eta) / h
    rows.append(compare(SECTION, "short corridor dJ/dp at p*", "complex step", "0 (optimum, C7)",
                        d, 0.0, 1e-11))
    return rows


def _planning_rows():
    rng = np.random.default_rng(4)
    mdp = random_mdp(rng, 8, 4, gamma=0.95, sparsity=0.5)
    vi = value_iteration(mdp)
    pi = policy_iteration(mdp)
    rows = [
        compare(SECTION, "V* (random MDP, gamma 0.95)", "value iteration", "policy iteration",
                vi.V, pi.V, vi.error_bound + 1e-12,
                note=f"tolerance = VI's guaranteed bound; {vi.iterations} backups"),
        compare(SECTION, "Bellman optimality residual", "||T V* - V*|| (PI)", "0", pi.residual,
                0.0, 1e-12),
        compare(SECTION, "V of the optimal policy", "exact evaluation of PI's policy",
                "PI's V*", evaluate(mdp, pi.pi).V, pi.V, 1e-12, relative=True),
    ]
    tiny = random_mdp(np.random.default_rng(5), 2, 2, gamma=0.9, horizon=3)
    best = max(evaluate_finite_horizon(tiny, deterministic_policy(np.array(plan), 2)).J
               for plan in itertools.product(itertools.product(range(2), repeat=2), repeat=3))
    rows.append(compare(SECTION, "optimal J_3", "backward induction (O6)",
                        "best of 64 time-indexed policies", backward_induction(tiny).J, best,
                        1e-14, relative=True))
    return rows


def _gym_rows():
    try:
        import gymnasium
    except ImportError:  # pragma: no cover - gymnasium is a dependency
        return []
    from ..gym_tabular import from_gymnasium

    rows = []
    for env_id, kw, gamma in (("FrozenLake-v1", {}, 0.99), ("CliffWalking-v1", {}, 1.0),
                              ("Taxi-v4", {"is_rainy": True}, 0.9)):
        mdp = from_gymnasium(env_id, gamma=gamma, **kw)
        env = gymnasium.make(env_id, **kw)
        u = env.unwrapped
        S, A = u.observation_space.n, u.action_space.n
        V_env = _value_iteration_on_env_table(u.P, S, A, gamma)
        env.close()
        live = np.setdiff1d(np.arange(S), mdp.info["terminal_in_place"])
        vi = value_iteration(mdp, atol=1e-12)
        label = env_id + ("(rainy)" if kw else "")
        rows.append(compare(SECTION, f"{label} V*, gamma={gamma:g}", "VI on the import",
                            "VI on env.unwrapped.P", vi.V[live], V_env[live], 1e-8,
                            note=f"S={mdp.n_states} (terminal copies: "
                                 f"{len(mdp.info['terminal_copies'])})"))
    return rows


def checks():
    """Rows of this section: list of refpg.report.Check."""
    return _evaluation_rows() + _classic_rows() + _planning_rows() + _gym_rows()
