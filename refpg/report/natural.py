"""Report section 'natural': identities, local approximation, Fisher, bounds, NPG (issue 4).

Every row compares two independent routes on built-in random MDPs with fixed
seeds (derivations/identities.md, natural.md, bounds.md, cpi.md). Bound rows
compare ``max(bound - eta(pi~), 0)`` with zero and carry the slack in the note.
"""
from __future__ import annotations

import itertools

import numpy as np

from . import compare

__all__ = ["checks"]

_SECTION = "natural"


def _enumerate_advantage_sum(mdp, pi_t, A_t, H):
    # E_{tau ~ pi~}[sum_{t<H} gamma^t A_t(s_t, a_t)] by listing every trajectory
    S, A = mdp.n_states, mdp.n_actions
    total = 0.0
    for states in itertools.product(range(S), repeat=H):
        for actions in itertools.product(range(A), repeat=H):
            p, acc = mdp.rho0[states[0]], 0.0
            for t in range(H):
                s, a = states[t], actions[t]
                if t > 0:
                    p *= mdp.P[states[t - 1], actions[t - 1], s]
                p *= pi_t[s, a]
                acc += mdp.gamma ** t * A_t[t, s, a]
            total += p * acc
    return total


def _bound_rows(mdp, pi, pi_t, label, policy_improvement_bounds, compare):
    rep = policy_improvement_bounds(mdp, pi, pi_t)
    return [compare(_SECTION, f"bound {b.equation} <= eta(pi~), {label}", b.name,
                    "eta(pi~) solve", max(b.value - b.eta_new, 0.0), 0.0,
                    1e-10 * (1 + abs(b.eta_new)),
                    note=f"bound {b.value:.6g}, eta(pi~) {b.eta_new:.6g}, slack {b.slack:.4g} "
                         f"(eta(pi) {rep.eta_old:.6g})")
            for b in rep.bounds]


def checks():
    """Rows of this section: list of refpg.report.Check."""
    from .. import TabularSoftmaxPolicy, random_mdp
    from ..bounds import penalised_update, policy_improvement_bounds
    from ..cpi import cpi_step
    from ..evaluation import evaluate, evaluate_finite_horizon
    from ..identities import (finite_horizon_performance_difference,
                              grad_local_approximation_params, local_approximation,
                              local_approximation_params, performance_difference)
    from ..natural import (exact_fisher, grad_kl_mean, natural_gradient_result,
                           tabular_npg_direction, tabular_npg_update)
    from ..policy_gradient import eta, exact_policy_gradient
    from ..testing import complex_step

    rows = []
    add = rows.append
    rng = np.random.default_rng(20150219)          # fixed seed: the built-in pair
    mdp = random_mdp(rng, 5, 3, gamma=0.9, name="random 5x3, gamma 0.9")
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(rng, scale=1.0)
    theta_t = theta + 0.3 * rng.standard_normal(theta.size)
    pi, pi_t = policy.probs_table(theta), policy.probs_table(theta_t)
    ev, ev_t = evaluate(mdp, pi), evaluate(mdp, pi_t)

    # (I2): performance difference by linear algebra
    add(compare(_SECTION, "eta(pi~) - eta(pi) (I2)", "sum rho~ pi~ A_pi", "two eta solves",
                performance_difference(mdp, pi, pi_t), ev_t.eta - ev.eta, 1e-10, relative=True))

    # (I3): finite horizon, by enumerating every trajectory of pi~
    small = random_mdp(np.random.default_rng(7), 3, 2, gamma=0.95, name="random 3x2")
    sp = TabularSoftmaxPolicy.for_mdp(small)
    th_s = sp.init_params(np.random.default_rng(8), scale=1.0)
    p_s = sp.probs_table(th_s)
    p_st = sp.probs_table(th_s + np.random.default_rng(9).standard_normal(th_s.size))
    H = 4
    fh, fh_t = evaluate_finite_horizon(small, p_s, H), evaluate_finite_horizon(small, p_st, H)
    add(compare(_SECTION, "J_H(pi~) - J_H(pi) (I3), H = 4", "enumerate (S A)^H paths",
                "backward recursion", _enumerate_advantage_sum(small, p_st, fh.A, H),
                fh_t.J - fh.J, 1e-10, relative=True))
    add(compare(_SECTION, "J_H(pi~) - J_H(pi) (I3), H = 4", "sum gamma^t p~_t pi~ A_t",
                "backward recursion", finite_horizon_performance_difference(small, p_s, p_st, H),
                fh_t.J - fh.J, 1e-10, relative=True))

    # (I5): L and its gradient match eta at theta_old; Hessians do not
    add(compare(_SECTION, "L_pi(pi) = eta(pi) (I5)", "local_approximation", "eta solve",
                local_approximation(mdp, pi, pi), ev.eta, 1e-12, relative=True))
    gL = complex_step(lambda t: local_approximation_params(mdp, policy, theta, t), theta)
    g = exact_policy_gradient(mdp, policy, theta)
    H_L = complex_step(lambda t: grad_local_approximation_params(mdp, policy, theta, t), theta)
    H_eta = complex_step(lambda t: exact_policy_gradient(mdp, policy, t), theta)
    gap = float(np.max(np.abs(H_L - H_eta)) / np.max(np.abs(H_eta)))
    add(compare(_SECTION, "grad L = grad eta at theta_old (I5)", "complex step of L",
                "PG theorem", gL, g, 1e-10, relative=True,
                note=f"second derivatives differ: max|Hess L - Hess eta| / max|Hess eta| = "
                     f"{gap:.3f} (expected O(1), not 0)"))
    ge = complex_step(lambda t: eta(mdp, policy, t), theta)
    add(compare(_SECTION, "grad L = grad eta at theta_old (I5)", "complex step of L",
                "complex step of eta", gL, ge, 1e-10, relative=True))

    # (N1), (N4): Fisher
    F = exact_fisher(mdp, policy, theta)
    H_kl = complex_step(lambda t: grad_kl_mean(mdp, policy, theta, t), theta)
    add(compare(_SECTION, "F = Hess KL_mean at theta_old (N4)", "E_d,pi[g g^T]",
                "complex step of grad KL_mean", F, H_kl, 1e-10, relative=True))
    scores = complex_step(lambda t: policy.log_probs_table(t), theta)
    F_cs = np.einsum("s,sa,sai,saj->ij", ev.d, pi, scores, scores)
    add(compare(_SECTION, "F = E[g g^T] (N1)", "exact_fisher", "complex-step scores",
                F, F_cs, 1e-10, relative=True))

    # bounds on two built-in pairs: the random pair above, and pi with its NPG step
    # (step 0.005), an improving pair
    pi_npg = tabular_npg_update(mdp, pi, 0.005)
    for label, other in (("random pair", pi_t), ("NPG step", pi_npg)):
        rows.extend(_bound_rows(mdp, pi, other, label, policy_improvement_bounds, compare))

    # (N6), (N7): NPG closed form vs pseudo-inverse
    res = natural_gradient_result(mdp, policy, theta)
    add(compare(_SECTION, "tabular NPG direction (N6)", "F^+ grad eta (eigh)",
                "A/(1-gamma) centred", res.direction.reshape(pi.shape),
                tabular_npg_direction(mdp, pi), 1e-9, relative=True,
                note=f"rank F = {res.rank} of d = {theta.size} (S = 5 null directions)"))
    add(compare(_SECTION, "NPG step, step size 1 (N7)", "pi exp(A/(1-gamma)) normalised",
                "softmax(theta + F^+ g)", tabular_npg_update(mdp, pi, 1.0),
                policy.probs_table(theta + res.direction), 1e-9))

    # (B6): penalised update never decreases eta
    pu = penalised_update(mdp, policy, theta)
    add(compare(_SECTION, "penalised update: eta_new >= eta_old (B6)", "eta(theta_new)",
                "eta(theta_old)", max(pu.eta_old - pu.eta_new, 0.0), 0.0, 1e-12,
                note=f"improvement {pu.improvement:.4g}, guaranteed "
                     f"{pu.objective - pu.objective_old:.4g}, KL_max {pu.kl_max:.2e}"))

    # (C4): CPI step realises at least its guaranteed improvement
    st = cpi_step(mdp, pi)
    add(compare(_SECTION, "CPI step improvement >= f(alpha*) (C4)", "eta(pi_new) - eta(pi)",
                "guaranteed f(alpha*)", max(st.guaranteed - st.improvement, 0.0), 0.0, 1e-12,
                note=f"alpha* {st.alpha:.4g}, realised {st.improvement:.4g}, guaranteed "
                     f"{st.guaranteed:.4g}"))
    return rows
