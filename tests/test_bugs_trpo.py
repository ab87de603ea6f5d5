"""A catalogue of known trust-region bug patterns: each is a small, deliberately wrong
function that the matching verifier must reject, while refpg's own reference and
independently written correct variants (loops, complex-step "double backprop",
scipy's CG, a from-scratch TRPO step) must pass. Fixed seeds throughout
(the verifiers' batteries are seeded; derivations/verify_trpo.md#bug-catalogue).
"""
import math

import numpy as np
import pytest

from refpg.cg import conjugate_gradient
from refpg.policies import LinearGaussianPolicy, TabularSoftmaxPolicy
from refpg.surrogate import SampledSurrogate
from refpg.verify.cg import verify_cg
from refpg.verify.trpo import (verify_fvp, verify_gaussian_fvp, verify_surrogate,
                               verify_surrogate_gradient)
from refpg.verify.trpo_step import verify_trpo_step
from refpg.verify.trpo_presets import preset_step
from trpo_references import (H, cg_scipy, cg_stale_Ap, cg_textbook, complex_step_gradient,
                             kl_gradient, log_softmax, surrogate_vec)


# --------------------------------------------------------------------------- independent helpers
# (shared ones, written without refpg code, are in tests/trpo_references.py)
def surrogate_loop(logits, states, actions, adv, old):
    """Ratio-form surrogate, one sample at a time with math (no refpg code)."""
    total = 0.0
    for s, a, A, o in zip(states, actions, adv, old):
        row = logits[s]
        m = max(row)
        lp = row[a] - m - math.log(math.fsum(math.exp(r - m) for r in row))
        total += math.exp(lp - o) * A
    return total / len(states)


def fvp_double_backprop(logits, states, v, damping):
    """F v as the directional derivative of the KL gradient (complex step: the NumPy
    analogue of autograd's double backprop)."""
    g = kl_gradient(logits, states)
    return np.imag(g(logits + 1j * H * v)) / H + damping * v


def fvp_loop(logits, states, v, damping):
    out = damping * v.copy()
    p = np.exp(log_softmax(logits))
    for s in states:
        out[s] += (p[s] * v[s] - p[s] * (p[s] @ v[s])) / len(states)
    return out


def fvp_refpg(logits, states, v, damping):
    S, A = logits.shape
    return (TabularSoftmaxPolicy(S, A).fisher_vector_product(logits.ravel(), v.ravel(), states)
            .reshape(S, A) + damping * v)


def gaussian_kl_gradient(theta_old, obs, m, bias):
    """theta -> grad_theta mean_i KL(N_old || N_theta), written from the closed form."""
    k = obs.shape[1]

    def parts(theta):
        K = theta[:m * k].reshape(m, k)
        b = theta[m * k:m * k + m] if bias else 0.0
        return obs @ K.T + b, theta[-m:]

    mu0, ls0 = parts(theta_old)

    def g(theta):
        mu, ls = parts(theta)
        gm = (mu - mu0) * np.exp(-2 * ls) / len(obs)                # (M, m)
        gls = np.mean(1 - (np.exp(2 * ls0) + (mu - mu0) ** 2) * np.exp(-2 * ls), axis=0)
        out = [(gm.T @ obs).ravel()]
        if bias:
            out.append(gm.sum(axis=0))
        return np.concatenate(out + [gls])
    return g


def gaussian_fvp_factory(m, bias, mean_over_dims=False, stale=None):
    def fvp(theta, obs, v, damping):
        old = theta if stale is None else theta + stale * np.ones_like(theta)
        g = gaussian_kl_gradient(old, obs, m, bias)
        out = np.imag(g(theta + 1j * H * v)) / H
        return (out / m if mean_over_dims else out) + damping * v
    return fvp


def gaussian_fvp_refpg(theta, obs, v, damping):
    return LinearGaussianPolicy(obs.shape[1], 2, bias=True).fisher_vector_product(
        theta, v, obs) + damping * v


def cg_refpg(Avp, b, n_iter):
    return conjugate_gradient(Avp, b, max_iter=n_iter, rtol=0.0, atol=0.0).x


# --------------------------------------------------------------------------- an independent TRPO step
def make_step(*, damping=0.0, max_iter=None, rtol=1e-10, atol=0.0, metric="fisher", eps_den=0.0,
              shrink=0.5, n_trials=11, kl="le", slack=1.0, imp="gt", ratio=None,
              check_kl=True, direction="old_new", stride=1, on_failure="revert",
              line_search=True, entropy=0.0, bug=None):
    """A TRPO step written from the algorithm (T1)-(T5), not from refpg's code; ``bug``
    injects one known mistake."""
    def step(logits, states, actions, adv, old, max_kl, cg_x0=None):
        S, A = logits.shape
        lp_old = log_softmax(logits)
        p_old = np.exp(lp_old)

        def objective(z):
            lp = log_softmax(z)
            if bug == "ratio_inverted":
                val = np.mean(np.exp(old - lp[states, actions]) * adv)
            else:
                val = np.mean(np.exp(lp[states, actions] - old) * adv)
            if entropy:
                val += entropy * np.mean(-np.sum(np.exp(lp) * lp, axis=1)[states])
            return val

        # gradient: complex step of the objective ("backprop"); the no-detach bug
        # differentiates exp(logp - logp) = 1 instead
        g = np.zeros(S * A)
        for i in range(S * A):
            zc = logits.astype(complex).ravel()
            zc[i] += 1j * H
            zc = zc.reshape(S, A)
            if bug == "old_log_probs_not_detached":
                lp = log_softmax(zc)[states, actions]
                val = np.mean(np.exp(lp - lp) * adv)
            else:
                val = objective(zc)
            g[i] = np.imag(val) / H
        fs = states[::stride]

        def fvp_at(z0):
            gk = kl_gradient(z0, fs)

            def F(v):
                out = np.imag(gk(z0 + 1j * H * v.reshape(S, A))).ravel() / H
                return out * (len(fs) if bug == "fvp_sum" else 1)
            return F

        F = fvp_at(logits)
        if not np.any(g != 0):
            return logits.copy(), {"accepted": False}
        Av = (lambda v: F(v) + damping * v)
        x = np.zeros(S * A) if cg_x0 is None else np.ravel(cg_x0).copy()
        r = g - Av(x)
        p = r.copy()
        rr = r @ r
        tol = max(rtol * np.linalg.norm(g), atol)
        for _ in range(max_iter if max_iter is not None else 10 * S * A):
            if math.sqrt(rr) <= tol:
                break
            Ap = Av(p)
            if not p @ Ap > 0:
                break
            alpha = rr / (p @ Ap)
            x, r = x + alpha * p, r - alpha * Ap
            rr, rr_old = r @ r, rr
            p = r + rr / rr_old * p
        Fx = fvp_at(logits + x.reshape(S, A))(x) if bug == "curvature_at_moved_point" else F(x)
        den = {"fisher": x @ Fx, "damped_fisher": x @ Fx + damping * x @ x,
               "gradient": g @ x}[metric] + eps_den
        if not den > 0:
            return logits.copy(), {"accepted": False}
        beta = math.sqrt((max_kl if bug == "no_factor_2" else 2 * max_kl) / den)
        full = (beta * x).reshape(S, A)
        if not line_search:
            return logits + full, {"accepted": True, "step_length": beta}
        L0, expected = objective(logits), g @ full.ravel()
        for k in range(n_trials):
            frac = shrink ** k
            z = logits + frac * full
            with np.errstate(all="ignore"):
                if bug == "accepts_nan_kl":      # naive softmax overflows to NaN
                    q = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
                    lq = np.log(q)
                else:
                    lq = log_softmax(z)
                    q = np.exp(lq)
                d = direction if bug != "kl_direction_flipped" else (
                    "new_old" if direction == "old_new" else "old_new")
                per = (np.sum(p_old * (lp_old - lq), axis=1) if d == "old_new"
                       else np.sum(q * (lq - lp_old), axis=1))
                klv = np.mean(per[states])
                improvement = objective(z) - L0
            if bug == "accepts_nan_kl":
                ok = not (klv > max_kl) and not (improvement <= 0)
            else:
                ok = math.isfinite(klv) and math.isfinite(improvement)
                if ok and check_kl:
                    ok = klv <= slack * max_kl if kl == "le" else klv < slack * max_kl
                if ok and imp != "none":
                    ok = improvement > 0 if imp == "gt" else improvement >= 0
                if ok and ratio is not None:
                    ok = improvement / (frac * expected) > ratio
            if ok:
                return z, {"accepted": True, "n_backtracks": k, "step_fraction": frac,
                           "step_length": beta}
        if on_failure == "keep_last" or bug == "never_reverts":
            return z, {"accepted": False}
        return logits.copy(), {"accepted": False, "step_fraction": 0.0}
    return step


#: the keyword arguments that make ``make_step`` one of the presets (from the peers' source,
#: PEER-CONVENTIONS.md; written independently of refpg.verify.trpo_presets)
PEERS = {
    "refpg": {},
    "sb3-contrib": dict(max_iter=15, rtol=0, atol=1e-5, damping=0.1, metric="damped_fisher",
                        shrink=0.8, n_trials=10, kl="lt", direction="new_old"),
    "spinningup": dict(max_iter=10, rtol=0, damping=0.1, metric="damped_fisher", eps_den=1e-8,
                       shrink=0.8, n_trials=10, imp="ge"),
    "spinningup-npg": dict(max_iter=10, rtol=0, damping=0.1, metric="damped_fisher",
                           eps_den=1e-8, line_search=False),
    "rllab": dict(max_iter=10, rtol=0, atol=1e-5, damping=1e-5, metric="damped_fisher",
                  eps_den=1e-8, shrink=0.8, n_trials=15),
    "garage": dict(max_iter=10, rtol=0, atol=1e-5, damping=1e-5, metric="damped_fisher",
                   eps_den=1e-8, shrink=0.8, n_trials=15),
    "baselines": dict(max_iter=10, rtol=0, atol=1e-5, damping=1e-2, metric="damped_fisher",
                      n_trials=10, slack=1.5, imp="ge", stride=5),
    "modular_rl": dict(max_iter=10, rtol=0, atol=1e-5, damping=1e-3, metric="damped_fisher",
                       n_trials=10, check_kl=False, ratio=0.1),
    "pfrl": dict(max_iter=10, rtol=0, atol=1e-10, damping=1e-2, metric="damped_fisher",
                 eps_den=1e-8, n_trials=11, imp="ge", entropy=0.01),
    "tianshou": dict(max_iter=10, rtol=0, atol=1e-5, damping=0.1, metric="damped_fisher",
                     shrink=0.8, n_trials=10, kl="lt"),
    "tianshou-legacy": dict(max_iter=10, rtol=0, atol=1e-5, damping=0.1,
                            metric="damped_fisher", shrink=0.8, n_trials=10, kl="lt",
                            on_failure="keep_last"),
}


def step_refpg(preset):
    """refpg's own step under a zero-start preset, as a user function."""
    def step(logits, states, actions, adv, old, max_kl):
        s = preset_step(logits, states, actions, adv, old, max_kl, preset)
        return s.theta.reshape(logits.shape), {"accepted": s.accepted,
                                               "step_length": s.step_length}
    return step


# --------------------------------------------------------------------------- correct variants pass
CORRECT = [
    ("surrogate", "loop with math.fsum", lambda: verify_surrogate(surrogate_loop)),
    ("surrogate", "vectorised", lambda: verify_surrogate(surrogate_vec)),
    ("surrogate_gradient", "complex step of the value",
     lambda: verify_surrogate_gradient(complex_step_gradient(surrogate_vec))),
    ("surrogate_gradient", "refpg SampledSurrogate.gradient",
     lambda: verify_surrogate_gradient(
         lambda z, s, a, A, o: SampledSurrogate(
             policy=TabularSoftmaxPolicy(*z.shape), theta_old=z.ravel(), states=s, actions=a,
             log_q=o, q_values=A, coef=np.ones(len(s)), unit=np.arange(len(s)),
             n_units=len(s), kl_states=s, kl_sample_weights=np.full(len(s), 1 / len(s))
         ).gradient(z.ravel()).reshape(z.shape))),
    ("fvp", "refpg policy FVP", lambda: verify_fvp(fvp_refpg)),
    ("fvp", "loop", lambda: verify_fvp(fvp_loop)),
    ("fvp", "double backprop (complex step of the KL gradient)",
     lambda: verify_fvp(fvp_double_backprop)),
    ("gaussian_fvp", "refpg", lambda: verify_gaussian_fvp(gaussian_fvp_refpg)),
    ("gaussian_fvp", "double backprop",
     lambda: verify_gaussian_fvp(gaussian_fvp_factory(2, True))),
    ("cg", "refpg", lambda: verify_cg(cg_refpg)),
    ("cg", "textbook loop", lambda: verify_cg(cg_textbook)),
    ("cg", "scipy.sparse.linalg.cg", lambda: verify_cg(cg_scipy)),
    ("trpo_step", "refpg preset_step", lambda: verify_trpo_step(step_refpg("refpg"))),
    ("trpo_step", "independent step", lambda: verify_trpo_step(make_step())),
    ("trpo_step", "independent step, baselines preset",
     lambda: verify_trpo_step(make_step(**PEERS["baselines"]), preset="baselines")),
]


@pytest.mark.parametrize("quantity,label,run", CORRECT, ids=[f"{q}-{l}" for q, l, _ in CORRECT])
def test_correct_variants_pass(quantity, label, run):
    report = run()
    assert report.passed, str(report)


# --------------------------------------------------------------------------- the bug catalogue
def _stale_fvp(logits, states, v, damping):
    """Double backprop of KL(pi_z || pi_stale): the reverse direction (sb3-contrib's) with an
    'old' distribution left over from a previous update: the Hessian is not F at logits."""
    stale = logits + 0.5

    def grad(z):  # grad_z mean_j KL(pi_z || pi_stale) = J^T (pi_z * (lp_z - lp_stale - KL))
        lp, lq = log_softmax(z), log_softmax(stale + 0.3 * np.arange(z.shape[1]))
        p = np.exp(lp)
        kl = np.sum(p * (lp - lq), axis=1, keepdims=True)
        out = np.zeros(z.shape, dtype=complex)
        np.add.at(out, states, (p * (lp - lq - kl))[states] / len(states))
        return out
    return np.imag(grad(logits + 1j * H * v)) / H + damping * v


def _cg_beta_swapped(Avp, b, n_iter):
    """BUG: beta = r_old.r_old / r_new.r_new (Fletcher-Reeves inverted)."""
    return cg_textbook(Avp, b, n_iter, beta=lambda rr_old, rr_new: rr_old / rr_new)


def _cg_beta_one(Avp, b, n_iter):
    """BUG seen in public code: beta = r.r / r.r = 1 (r_new.r_new / r_new.r_new)."""
    return cg_textbook(Avp, b, n_iter, beta=lambda rr_old, rr_new: rr_new / rr_new)


BUGS = [
    ("surrogate: ratio inverted exp(logp_old - logp)",
     lambda: verify_surrogate(lambda z, s, a, A, o: np.mean(
         np.exp(o - log_softmax(z)[s, a]) * A))),
    ("surrogate: sum over samples instead of the mean",
     lambda: verify_surrogate(lambda z, s, a, A, o: len(s) * surrogate_vec(z, s, a, A, o))),
    ("surrogate: loss returned where the objective is expected",
     lambda: verify_surrogate(lambda *a: -surrogate_vec(*a))),
    ("surrogate gradient: old log-probs not detached (ratio exp(logp - logp) = 1)",
     lambda: verify_surrogate_gradient(complex_step_gradient(
         lambda z, s, a, A, o: np.mean(np.exp(log_softmax(z)[s, a] - log_softmax(z)[s, a])
                                       * A)))),
    ("surrogate gradient: log-prob form used at ratios != 1",
     lambda: verify_surrogate_gradient(complex_step_gradient(
         lambda z, s, a, A, o: np.mean(log_softmax(z)[s, a] * A)))),
    ("fvp: damping forgotten",
     lambda: verify_fvp(lambda z, s, v, d: fvp_loop(z, s, v, 0.0))),
    ("fvp: damping applied twice",
     lambda: verify_fvp(lambda z, s, v, d: fvp_loop(z, s, v, d) + d * v)),
    ("fvp: KL summed over samples instead of averaged",
     lambda: verify_fvp(lambda z, s, v, d: fvp_loop(z, s, v, 0.0) * len(s) + d * v)),
    ("fvp: Hessian taken where old != new (stale old, reverse KL)",
     lambda: verify_fvp(_stale_fvp)),
    ("gaussian fvp: KL averaged over action dimensions (kl.mean() on (M, m))",
     lambda: verify_gaussian_fvp(gaussian_fvp_factory(2, True, mean_over_dims=True))),
    ("gaussian fvp: Hessian at the wrong point (stale old distribution)",
     lambda: verify_gaussian_fvp(gaussian_fvp_factory(2, True, stale=0.2))),
    ("cg: beta with r_old.r_old / r_new.r_new", lambda: verify_cg(_cg_beta_swapped)),
    ("cg: beta = r.r / r.r = 1", lambda: verify_cg(_cg_beta_one)),
    ("cg: alpha uses A p computed before p was updated", lambda: verify_cg(cg_stale_Ap)),
    ("step: sqrt(delta / xFx) without the 2", lambda: verify_trpo_step(make_step(bug="no_factor_2"))),
    ("step: ratio inverted", lambda: verify_trpo_step(make_step(bug="ratio_inverted"))),
    ("step: old log-probs not detached (g = 0)",
     lambda: verify_trpo_step(make_step(bug="old_log_probs_not_detached"))),
    ("step: FVP sums over samples", lambda: verify_trpo_step(make_step(bug="fvp_sum"))),
    ("step: curvature x^T F x measured after moving the parameters",
     lambda: verify_trpo_step(make_step(bug="curvature_at_moved_point"))),
    ("step: line search never reverts", lambda: verify_trpo_step(make_step(bug="never_reverts"))),
    ("step: line search accepts NaN KL", lambda: verify_trpo_step(make_step(bug="accepts_nan_kl"))),
    ("step: KL direction flipped in the line search",
     lambda: verify_trpo_step(make_step(bug="kl_direction_flipped"))),
    ("step: damped step metric where the preset is undamped",
     lambda: verify_trpo_step(make_step(damping=0.1, metric="damped_fisher"), damping=0.1)),
    ("step: sb3-contrib clone that checks KL(old || new)",
     lambda: verify_trpo_step(make_step(**{**PEERS["sb3-contrib"], "direction": "old_new"}),
                              preset="sb3-contrib", pass_x0=True)),
]


@pytest.mark.parametrize("label,run", BUGS, ids=[b[0] for b in BUGS])
def test_bug_is_rejected(label, run):
    report = run()
    assert not report.passed, f"{label} passed:\n{report}"
    assert report.problem and report.case


def test_kl_direction_bug_is_caught_on_the_case_built_for_it():
    rep = verify_trpo_step(make_step(bug="kl_direction_flipped"), n_random=0)
    # the only designed case where the two directions decide differently (refpg preset)
    assert rep.n_failed == 1 and rep.case == "kl_direction_decides", str(rep)


def test_nan_accepting_line_search_is_caught_on_the_overflow_case():
    rep = verify_trpo_step(make_step(bug="accepts_nan_kl"), n_random=0)
    assert rep.n_failed >= 1 and rep.case == "overflow_must_reject", str(rep)
