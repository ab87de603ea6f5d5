"""V2 trust-region verifiers: each reference is checked against an independent route
(dense linear algebra, complex step, scipy, closed forms), correct user code passes for
every seed of the battery (no flaky tolerance), broken user code gives a failed report,
presets carry the peers' values, golden vectors regenerate bit-identically. The CG
verifier's own tests are in tests/test_verify_cg.py."""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refpg.linesearch import AcceptanceRule
from refpg.policies import TabularSoftmaxPolicy
from refpg.trpo import TRPOConfig
from refpg.verify import cg as vc
from refpg.verify import trpo as vt
from refpg.verify import trpo_step as vts
from refpg.verify.cg import verify_cg
from refpg.verify.trpo import (verify_fvp, verify_gaussian_fvp, verify_surrogate,
                               verify_surrogate_gradient)
from refpg.verify.trpo_step import verify_trpo_step
from refpg.verify.trpo_presets import (config_departures, get_preset, preset_names,
                                       preset_step)
from refpg.verify.vectors import to_json, vector
from trpo_references import complex_step_gradient, dense_fisher, log_softmax, surrogate_vec


# --------------------------------------------------------------------------- surrogate
def test_surrogate_sign_and_form_options():
    assert verify_surrogate(lambda *a: -surrogate_vec(*a), sign="loss").passed
    logp_form = lambda z, s, a, A, o: np.mean(log_softmax(z)[s, a] * A)    # noqa: E731
    assert verify_surrogate(logp_form, form="log_prob").passed
    assert not verify_surrogate(logp_form).passed
    rep = verify_surrogate_gradient(complex_step_gradient(logp_form), form="log_prob",
                                    sign="objective")
    assert rep.passed and rep.departures, str(rep)


@given(st.integers(0, 2 ** 16))
@settings(max_examples=6, deadline=None)
def test_correct_surrogate_and_gradient_pass_for_any_battery_seed(seed):
    # independent routes: a vectorised NumPy value and its complex-step gradient
    assert verify_surrogate(surrogate_vec, seed=seed).passed
    assert verify_surrogate_gradient(complex_step_gradient(surrogate_vec), seed=seed,
                                     n_random=4).passed


# --------------------------------------------------------------------------- FVP
def test_fvp_reference_is_the_dense_hessian_of_the_mean_kl():
    rng = np.random.default_rng(3)
    for S, A, M in ((1, 2, 1), (4, 3, 9), (3, 5, 20)):
        z = 3 * rng.standard_normal((S, A))
        states = rng.integers(0, S, M)
        v = rng.standard_normal((S, A))
        F = dense_fisher(z, states)
        ref, _, _ = vt._fvp_ref(dict(logits=z, states=states, v=v, damping=0.1), 1)
        # complex step is exact to rounding: agreement at 1e-13 relative to |F| |v|
        np.testing.assert_allclose(ref.ravel(), F @ v.ravel() + 0.1 * v.ravel(), rtol=0,
                                   atol=1e-13 * np.abs(F).max() * np.abs(v).max() + 1e-15)


def test_fvp_stride_option_matches_a_subsampled_user_fvp():
    def strided(z, s, v, d):                  # baselines: fvpargs = [arr[::5] for arr in args]
        F = dense_fisher(z, s[::5])
        return (F @ v.ravel()).reshape(v.shape) + d * v
    assert verify_fvp(strided, stride=5).passed
    rep = verify_fvp(strided)
    assert not rep.passed and rep.shrunk_from, str(rep)


@given(st.integers(0, 2 ** 16))
@settings(max_examples=6, deadline=None)
def test_dense_fvp_passes_for_any_battery_seed(seed):
    user = lambda z, s, v, d: (dense_fisher(z, s) @ v.ravel()).reshape(v.shape) + d * v  # noqa
    assert verify_fvp(user, seed=seed, n_random=4).passed


def test_gaussian_fvp_against_the_closed_form_fisher_matrix():
    # F = [Sigma^{-1} kron mean(x x^T), 0; 0, 2 I] formed densely from (G6), no refpg code
    def dense(theta, obs, v, damping):
        m, k = 2, obs.shape[1]
        x = np.concatenate([obs, np.ones((len(obs), 1))], axis=1)
        inv_var = np.exp(-2 * theta[-m:])
        C = x.T @ x / len(obs)
        d = m * (k + 1) + m
        F = np.zeros((d, d))
        for i in range(m):          # theta order: K row-major (i*k + j), then b_i, then log_std
            idx = [i * k + j for j in range(k)] + [m * k + i]
            F[np.ix_(idx, idx)] = inv_var[i] * C
        F[-m:, -m:] = 2 * np.eye(m)
        return F @ v + damping * v
    rep = verify_gaussian_fvp(dense, act_dim=2, bias=True)
    assert rep.passed, str(rep)
    assert not verify_gaussian_fvp(dense, act_dim=2, bias=False).passed   # layout mismatch


# --------------------------------------------------------------------------- the step
def _batch(seed, S=4, A=3, M=20):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((S, A))
    states = rng.integers(0, S, M)
    actions = rng.integers(0, A, M)
    return z, states, actions, rng.standard_normal(M), log_softmax(z)[states, actions]


@pytest.mark.parametrize("name", preset_names())
def test_accepted_steps_satisfy_the_preset_kl_rule(name):
    """Postcondition of preset_step, with the KL recomputed from the log tables."""
    pre = get_preset(name)
    rule = pre.config.acceptance
    for seed in range(4):
        z, s, a, A, old = _batch(seed)
        step = preset_step(z, s, a, A, old, 0.05, pre, rng=np.random.default_rng(seed))
        if not step.accepted or not rule.check_kl or not pre.config.line_search:
            continue
        lp0, lp1 = log_softmax(z), log_softmax(step.theta.reshape(z.shape))
        if pre.config.kl_direction == "old_new":
            kl = np.mean(np.sum(np.exp(lp0) * (lp0 - lp1), axis=1)[s])
        else:
            kl = np.mean(np.sum(np.exp(lp1) * (lp1 - lp0), axis=1)[s])
        assert kl <= rule.kl_slack * 0.05 * (1 + 1e-12)


def test_damped_step_metric_shortens_the_quadratic_model_by_the_closed_form_factor():
    z, s, a, A, old = _batch(1)
    pre = get_preset("sb3-contrib")
    step = preset_step(z, s, a, A, old, 0.01, pre, rng=np.random.default_rng(0))
    x = step.direction
    F = TabularSoftmaxPolicy(*z.shape).fisher(z.ravel(), s)
    xFx, lam = x @ F @ x, pre.config.damping
    # 1/2 s^T F s = delta xFx / (xFx + lam x.x)  (derivations/verify_trpo.md)
    np.testing.assert_allclose(step.quadratic_kl, 0.01 * xFx / (xFx + lam * x @ x), rtol=1e-10)
    assert step.quadratic_kl < 0.01


def test_modular_rl_accepts_steps_outside_the_trust_region_on_the_battery():
    pre = get_preset("modular_rl")
    worst = 0.0
    for case in vts._step_cases(0.01, 0, 6, pre):
        x = case.inputs
        z, s, a = x["logits"], x["states"], x["actions"]
        step = preset_step(z, s, a, x["advantages"], log_softmax(z)[s, a], x["max_kl"], pre)
        if step.accepted:
            lp0, lp1 = log_softmax(z), log_softmax(step.theta.reshape(z.shape))
            kl = np.mean(np.sum(np.exp(lp0) * (lp0 - lp1), axis=1)[s])
            worst = max(worst, kl / x["max_kl"])
    assert worst > 1.0      # KL never checked (modular_rl#29): the bound is violated
    rep = verify_trpo_step(lambda *args: args[0], preset="modular_rl", n_random=0)
    assert any("KL(old || new) of returned steps up to" in d for d in rep.departures)


def test_random_start_is_compared_within_the_spread_of_random_starts():
    pre = get_preset("sb3-contrib")
    calls = [0]

    def user(z, s, a, A, old, max_kl):          # sb3-contrib draws its own start
        calls[0] += 1
        return preset_step(z, s, a, A, old, max_kl, pre,
                           rng=np.random.default_rng(10_000 + calls[0])).theta.reshape(z.shape)
    rep = verify_trpo_step(user, preset="sb3-contrib")
    assert rep.passed, str(rep)
    assert any("random" in d for d in rep.departures)


def _plain_step(logits, states, actions, adv, old_logp, max_kl, f=np.float32):
    """refpg's conventions computed in dtype ``f``, with CG stopped at that precision's
    rounding floor (a curvature p.Fp <= 64 eps x the largest seen: the softmax null space)."""
    z0, adv, old_logp, max_kl = logits.astype(f), adv.astype(f), old_logp.astype(f), f(max_kl)
    S, A = z0.shape

    def logsm(z):
        m = z.max(axis=1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))

    def L(z):
        return np.mean(np.exp(logsm(z)[states, actions] - old_logp) * adv)
    lp0 = logsm(z0)
    p0 = np.exp(lp0)
    w = np.exp(lp0[states, actions] - old_logp) * adv / f(len(states))
    g = np.zeros((S, A), f)
    np.add.at(g, states, -w[:, None] * p0[states])
    np.add.at(g, (states, actions), w)
    if not np.any(g):
        return z0
    share = (np.bincount(states, minlength=S)[:, None] / len(states)).astype(f)

    def Fv(v):
        return share * (p0 * v - p0 * (p0 * v).sum(axis=1, keepdims=True))
    x, r = np.zeros_like(g), g.copy()
    p, rr, cmax = r.copy(), (r * r).sum(), f(0)
    for _ in range(10 * S * A):
        if np.sqrt(rr) <= 1e-10 * np.linalg.norm(g):
            break
        Ap = Fv(p)
        pAp, pp = (p * Ap).sum(), (p * p).sum()
        if not pAp > 64 * np.finfo(f).eps * cmax * pp:
            break
        cmax = max(cmax, pAp / pp)
        x, r = x + rr / pAp * p, r - rr / pAp * Ap
        rr, rr_old = (r * r).sum(), rr
        p = r + rr / rr_old * p
    full = np.sqrt(2 * max_kl / (x * Fv(x)).sum()) * x
    for k in range(11):
        z = z0 + f(0.5 ** k) * full
        if np.mean((p0 * (lp0 - logsm(z))).sum(axis=1)[states]) <= max_kl and L(z) > L(z0):
            return z
    return z0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_float32_step_passes_at_float32_precision_only():
    rep = verify_trpo_step(_plain_step, precision="float32")
    assert rep.passed, str(rep)
    # the undamped overflow case needs curvatures 1e12 apart: not determined in float32
    assert any(n.startswith("overflow_must_reject: not compared") for n in rep.notes)
    assert not verify_trpo_step(_plain_step).passed


@given(st.integers(0, 2 ** 16))
@settings(max_examples=3, deadline=None)
def test_plain_float64_step_passes_for_any_battery_seed(seed):
    step = lambda *a: _plain_step(*a, f=np.float64)                 # noqa: E731
    rep = verify_trpo_step(step, seed=seed, n_random=8)
    assert rep.passed, str(rep)
    assert not any("not compared" in n for n in rep.notes)


def test_a_decision_on_the_boundary_admits_both_outcomes():
    """Put the bound exactly on the first trial's KL: a rule with '<' and one with '<='
    disagree there, and both must pass."""
    z, s, a, A, old = _batch(2, S=2, A=3, M=8)
    pre = get_preset("refpg")
    step = preset_step(z, s, a, A, old, 0.01, pre)
    kl0 = step.line_search.trials[0].kl
    slack = kl0 / 0.01
    case = vts.Case("boundary", dict(logits=z, states=s, actions=a, advantages=A, max_kl=0.01,
                                    x0_seed=0), row_fields=("states", "actions", "advantages"))
    for cmp_ in ("le", "lt"):
        p = pre.with_options(kl_slack=slack, kl_comparison=cmp_)
        R = vts._step_reference(case, p, 2.0 ** -52, False, 2)
        outs = [R["ref"]] + [r for _, r in R["alternatives"]]
        # trial 0 accepted (n_backtracks 0) and trial 0 rejected, trial 1 accepted (1)
        assert {o["n_backtracks"] for o in outs if o["accepted"]} == {0.0, 1.0}, cmp_
        assert any(lbl.startswith("trial 0 within rounding") for lbl, _ in R["alternatives"])


def test_broken_user_code_gives_failed_reports_not_exceptions():
    z_shape_wrong = lambda *a: np.zeros((1, 1))                    # noqa: E731
    cases = [
        verify_surrogate(lambda *a: 1 / 0),
        verify_surrogate(lambda *a: "text"),
        verify_surrogate_gradient(z_shape_wrong),
        verify_fvp(lambda z, s, v, d: np.full(v.shape, np.nan)),
        verify_gaussian_fvp(lambda *a: None),
        verify_cg(lambda Avp, b, n: Avp(np.zeros(b.size + 1))),     # misuses the product
        verify_trpo_step(lambda *a: (a[0], {"accepted": "maybe"})),
        verify_trpo_step(lambda *a: a[0][:1]),
    ]
    for rep in cases:
        assert not rep.passed and rep.problem, str(rep)
    assert "raised ZeroDivisionError" in cases[0].problem
    assert "non-finite" in cases[3].problem
    assert "info['accepted']" in cases[6].problem


def test_unknown_options_are_refpg_argument_errors():
    with pytest.raises(ValueError, match="unknown preset"):
        verify_trpo_step(lambda *a: a[0], preset="nope")
    with pytest.raises(ValueError, match="unknown TRPO option"):
        verify_trpo_step(lambda *a: a[0], dampening=0.1)
    with pytest.raises(ValueError, match="precision"):
        verify_fvp(lambda *a: a[2], precision="float16")
    with pytest.raises(ValueError, match="sign"):
        verify_surrogate(lambda *a: 0.0, sign="maximise")


# --------------------------------------------------------------------------- presets
def test_presets_carry_the_peer_values():
    # provenance: PEER-CONVENTIONS.md rows and the peers' source files named there
    b = get_preset("baselines").config
    assert (b.max_kl, b.damping, b.fvp_stride, b.acceptance.kl_slack,
            b.acceptance.improvement_comparison, b.shrink, b.max_backtracks) == \
        (0.001, 0.01, 5, 1.5, "ge", 0.5, 9)
    s = get_preset("sb3-contrib").config
    assert (s.cg_x0, s.cg_max_iter, s.kl_direction, s.acceptance.kl_comparison,
            s.acceptance.improvement_comparison, s.shrink) == \
        ("random", 15, "new_old", "lt", "gt", 0.8)
    m = get_preset("modular_rl").config
    assert not m.acceptance.check_kl and m.acceptance.min_improvement_ratio == 0.1
    assert get_preset("spinningup", distribution="gaussian").config.kl_direction == "new_old"
    assert get_preset("spinningup").config.kl_direction == "old_new"
    assert get_preset("pfrl").entropy_coef == 0.01
    assert get_preset("garage").config.max_backtracks == 14          # 0.8^k, k < 15
    assert get_preset("refpg").config == TRPOConfig()
    assert get_preset("refpg").departures == ()
    assert {"refpg", "sb3-contrib", "spinningup", "rllab", "garage", "baselines",
            "modular_rl", "pfrl", "tianshou"} <= set(preset_names())


def test_config_departures_follow_the_configuration():
    cfg = TRPOConfig(acceptance=AcceptanceRule(check_kl=False, min_improvement_ratio=0.1))
    text = " ".join(config_departures(cfg))
    assert "KL never checked" in text and "improvement / expected" in text
    assert config_departures(TRPOConfig()) == ()


# --------------------------------------------------------------------------- golden vectors
GENERATORS = [vt.golden_surrogate, vt.golden_fvp, vt.golden_gaussian_fvp, vc.golden_cg,
              vts.golden_trpo_step]


@pytest.mark.parametrize("gen", GENERATORS, ids=[g.__name__ for g in GENERATORS])
def test_golden_vectors_are_deterministic_and_json_clean(gen):
    d1, l1, v1 = gen()
    d2, l2, v2 = gen()
    doc = lambda d, l, v: {"description": d, "layout": l, "vectors": v}   # noqa: E731
    assert to_json(doc(d1, l1, v1)) == to_json(doc(d2, l2, v2))
    assert len({v["name"] for v in v1}) == len(v1) >= 5
    json.loads(to_json(doc(d1, l1, v1)))


def test_golden_step_vectors_agree_with_an_independent_step():
    """The refpg-preset vectors reproduced by a from-scratch step (dense Fisher via
    complex step, np.linalg.lstsq for the natural gradient, line search loop)."""
    _, _, vectors = vts.golden_trpo_step()
    for vec in (v for v in vectors if v["conventions"]["preset"] == "refpg"):
        x = {k: np.asarray(val) for k, val in vec["inputs"].items()}
        z, s, a, A, old, delta = (x["logits"], x["states"], x["actions"], x["advantages"],
                                  x["old_log_probs"], float(x["max_kl"]))
        g = complex_step_gradient(surrogate_vec)(z, s, a, A, old).ravel()
        F = dense_fisher(z, s)
        nat = np.linalg.lstsq(F, g, rcond=1e-12)[0]
        full = math.sqrt(2 * delta / (nat @ F @ nat)) * nat
        out, frac = z, 0.0
        for k in range(11):
            f = 0.5 ** k
            znew = z + f * full.reshape(z.shape)
            lp0, lp1 = log_softmax(z), log_softmax(znew)
            kl = np.mean(np.sum(np.exp(lp0) * (lp0 - lp1), axis=1)[s])
            L_new, L_old = surrogate_vec(znew, s, a, A, old), surrogate_vec(z, s, a, A, old)
            if kl <= delta and L_new > L_old:
                out, frac = znew, f
                break
        e = vec["expected"]
        assert frac == e["step_fraction"], vec["name"]
        # lstsq vs CG to rtol 1e-10 on the natural gradient: agreement to ~1e-9
        np.testing.assert_allclose(log_softmax(out), np.asarray(e["new_log_probs"]), rtol=0,
                                   atol=1e-8)


def test_vector_helper_roundtrip_for_a_step_vector():
    _, _, vectors = vts.golden_trpo_step()
    v = vectors[0]
    again = vector(v["name"], v["description"], v["refpg_function"], v["inputs"],
                   v["expected"], rtol=v["tolerance"]["rtol"], atol=v["tolerance"]["atol"],
                   conventions=v["conventions"])
    assert again == v
