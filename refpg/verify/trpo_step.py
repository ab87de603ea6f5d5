"""V2 verifier of a whole TRPO step (direction, step length, line-search outcome).

``verify_trpo_step`` compares the user's step with refpg's under a named peer preset
(refpg.verify.trpo_presets); ``measure_preset`` measures what each preset's departures
from CONVENTIONS.md cost on the step battery. Shared machinery in
``refpg.verify._trpo_common``. derivations/verify_trpo.md#calling-conventions
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..distributions import log_softmax

from ..policies.tabular import TabularSoftmaxPolicy

from ..validation import check_positive_int
from .core import Case, Outcome, safe_call, to_numpy
from .trpo_presets import Preset, get_preset, preset_step
from .trpo import _surrogate
from .vectors import vector
from ._trpo_common import (_EPS, _Eval, _MC_RUNS, _SPREAD_FACTOR, _admissible, _eps, _pick,
                           _random_tabular, _run, _tab_size, _tabular_candidates, _up)

__all__ = ["verify_trpo_step", "PresetCosts", "measure_preset", "golden_trpo_step"]


_INFO_KEYS = ("accepted", "n_backtracks", "step_fraction", "step_length")


def _direction_decides(pre, z, st, ac, adv):
    """``max_kl`` at which the preset's first trial is accepted under one KL direction and
    rejected under the other (margins >= 1e-3 of the bound), or None.

    The direction ``x`` does not depend on ``delta`` and the full step is ``sqrt(delta)``
    times the full step at ``delta = 1``, so both trial KLs are scanned on a grid of
    ``delta`` without re-running CG (derivations/verify_trpo.md#the-battery)."""
    rule = pre.config.acceptance
    if not rule.check_kl or not pre.config.line_search:
        return None
    old = log_softmax(z)[st, ac]
    s1 = preset_step(z, st, ac, adv, old, 1.0, replace(pre, config=replace(
        pre.config, cg_x0="zeros")), rng=None).full_step.reshape(z.shape)
    if not np.any(s1 != 0):
        return None
    lp0 = log_softmax(z)
    best = None
    for delta in np.geomspace(1e-3, 1.0, 61):
        lq = log_softmax(z + math.sqrt(delta) * s1)
        kls = [np.mean(np.sum(np.exp(lp0) * (lp0 - lq), axis=1)[st]),
               np.mean(np.sum(np.exp(lq) * (lq - lp0), axis=1)[st])]
        bound = rule.kl_slack * delta
        ok = [k <= bound if rule.kl_comparison == "le" else k < bound for k in kls]
        improvement = np.mean((np.exp(lq[st, ac] - old) - 1.0) * adv)
        if ok[0] != ok[1] and min(abs(k - bound) for k in kls) >= 1e-3 * bound \
                and improvement > 1e-9 * np.mean(np.abs(adv)):
            d = abs(math.log(delta / pre.config.max_kl))
            if best is None or d < best[0]:
                best = (d, float(delta))
    return None if best is None else best[1]


def _step_cases(delta, seed, n_random, preset=None):
    rng = np.random.default_rng(seed)
    cases = []

    def add(name, z, st, ac, adv, max_kl=delta):
        cases.append(Case(name, dict(logits=np.asarray(z, float), states=np.asarray(st),
                                     actions=np.asarray(ac), advantages=np.asarray(adv, float),
                                     max_kl=float(max_kl), x0_seed=len(cases)),
                          row_fields=("states", "actions", "advantages")))

    def from_seed(s, S, A, M, scale):
        r = np.random.default_rng(s)       # fixed designs, found by search (derivations note)
        z, st, ac = _random_tabular(r, S, A, M, scale)
        return z, st, ac, r.standard_normal(M)

    add("tiny_one_state", [[0.2, -0.1]], [0, 0, 0], [0, 1, 1], [1.0, -0.5, 0.3])
    z, st, ac = _random_tabular(rng, 4, 3, 4)
    add("single_visits", z, np.arange(4), ac, rng.standard_normal(4))
    z, st, ac = _random_tabular(rng, 8, 4, 64)
    add("larger", z, st, ac, rng.standard_normal(64))
    z = 30.0 + rng.standard_normal((3, 3))
    st, ac = rng.integers(0, 3, 12), rng.integers(0, 3, 12)
    add("logits_magnitude_30", z, st, ac, rng.standard_normal(12))
    add("near_deterministic", [[8.0, 0.0, -2.0], [0.0, 7.0, 1.0]], [0, 0, 0, 1, 1, 1, 0],
        [0, 0, 1, 1, 1, 2, 0], [0.5, -0.2, 1.0, 0.3, -0.4, 0.8, 0.1])
    z, st, ac = _random_tabular(rng, 4, 3, 10)
    add("zero_advantages", z, st, ac, np.zeros(10))
    z, st, ac = _random_tabular(rng, 6, 2, 8)
    add("unvisited_states", z, [0, 0, 0, 2, 2, 2, 2, 5], ac, rng.standard_normal(8))
    add("line_search_must_backtrack", *from_seed(0, 3, 3, 12, 1.5), max_kl=0.02)
    for s_ in (82, 37, 145):             # a case where the KL direction decides, per preset
        z, st, ac, adv = from_seed(s_, 3, 3, 12, 1.5)
        d = _direction_decides(preset or get_preset("refpg"), z, st, ac, adv)
        if d is not None:
            add("kl_direction_decides", z, st, ac, adv, max_kl=d)
            break
    # the undamped natural step moves a logit by ~4e5: naive softmax overflows to NaN,
    # refpg's KL is finite and huge; every trial must be rejected (refpg preset)
    add("overflow_must_reject", [[30.0, 0.0, 0.0], [0.0, 1.0, -1.0]], [0, 0, 0, 0, 1, 1, 1],
        [0, 0, 1, 0, 0, 1, 2], [0.1, -0.2, 5.0, 0.3, 1.0, -1.0, 0.5])
    for k in range(n_random):
        S, A, M = int(rng.integers(1, 6)), int(rng.integers(2, 5)), int(rng.integers(1, 40))
        z, st, ac = _random_tabular(rng, S, A, M, float(rng.choice([0.3, 1.0, 3.0])))
        add(f"random_{k}", z, st, ac, rng.standard_normal(M),
            max_kl=float(rng.choice([delta, 2 * delta, 10 * delta])))
    return cases


class _Rounding:
    """``perturb(kind, value, arg)`` for ``preset_step``: the rounding of a plain
    implementation, ``eps x ops x`` (the magnitude of the terms), as uniform noise on
    the gradient, each Fisher-vector product, each surrogate and KL value; optionally
    forces the decision of one line-search trial (``force = (k, 'reject'|'accept', L)``)."""

    def __init__(self, eps, rng, mags, force=None):
        self.eps, self.rng, self.mags, self.force = eps, rng, mags, force
        self.calls = {"surrogate": 0, "kl": 0}
        self.rayleigh = []                 # v.Fv / v.v of every product: CG's curvatures

    def __call__(self, kind, value, arg):
        if kind == "fvp" and arg @ arg > 0:
            self.rayleigh.append(float(arg @ value) / float(arg @ arg))
        if kind in self.calls:
            trial = self.calls[kind] - (1 if kind == "surrogate" else 0)
            self.calls[kind] += 1
            if self.force is not None and trial == self.force[0]:
                if self.force[1] == "reject":
                    return -math.inf if kind == "surrogate" else value
                return self.force[2] if kind == "surrogate" else 0.0
        if self.rng is None:
            return value
        m = self.mags[kind]
        m = m(arg) if callable(m) else m
        return value + self.eps * m * self.rng.uniform(-1, 1, np.shape(value))


def _step_magnitudes(z, st, ac, adv, old, stride):
    """Per-entry magnitudes (sum of |terms| x operation count) of what a plain
    implementation computes: gradient, F v, surrogate and KL values."""
    S, A = z.shape
    ops = A + st.size + 4 + float(np.max(np.abs(z)))
    x = dict(logits=z, states=st, actions=ac, advantages=adv, old_log_probs=old)
    _, _, _, vmag, gmag = _surrogate(x, 1.0, "ratio")
    fst = st[::stride]
    pi = np.exp(log_softmax(z))
    w = (np.bincount(fst, minlength=S) / fst.size)[:, None]

    def fvp_mag(v):
        av = np.abs(v).reshape(S, A)
        return (ops * w * pi * (av + np.sum(pi * av, axis=1, keepdims=True))).ravel()

    def kl_mag(theta):
        return ops * (1.0 + float(np.max(np.abs(theta))))

    return {"gradient": ops * gmag.ravel(), "fvp": fvp_mag, "surrogate": ops * vmag,
            "kl": kl_mag}


def _step_summary(step, shape):
    ls = step.line_search
    return dict(logp=log_softmax(step.theta.reshape(shape)),
                accepted=float(step.accepted),
                n_backtracks=float(ls.n_backtracks if ls is not None else 0),
                step_fraction=float(step.step_fraction), step_length=float(step.step_length))


def _borderline_flips(step, theta_old, rule, max_kl, tau_kl, tau_imp):
    """Trials whose decision is within rounding of a boundary: ``(k, 'reject')`` for an
    accepted one, ``(k, 'accept', L)`` for a rejected one whose every failed condition is
    borderline (``L`` the surrogate value that forces acceptance). ``tau_kl(theta)``
    and ``tau_imp`` are the rounding margins."""
    ls = step.line_search
    if ls is None:
        return []
    out = []
    for k, t in enumerate(ls.trials):
        conds = []                                  # (passed, borderline) per condition
        if rule.check_kl:
            bound = rule.kl_slack * max_kl
            passed = t.kl <= bound if rule.kl_comparison == "le" else t.kl < bound
            tau = tau_kl(theta_old + t.step_fraction * step.full_step)
            conds.append((passed, abs(t.kl - bound) <= tau))
        if rule.improvement_comparison != "none":
            conds.append((t.improvement > 0 or (rule.improvement_comparison == "ge"
                                                and t.improvement == 0),
                          abs(t.improvement) <= tau_imp))
        if rule.min_improvement_ratio is not None and t.expected_improvement is not None:
            gap = t.improvement - rule.min_improvement_ratio * t.expected_improvement
            conds.append((gap > 0, abs(gap) <= tau_imp))
        if not all(math.isfinite(v) for v in (t.kl, t.improvement)):
            continue
        if t.accepted and any(b for _, b in conds):
            out.append((k, "reject"))
        elif not t.accepted and conds and all(b for p, b in conds if not p):
            out.append((k, "accept", ls.surrogate_old + abs(t.expected_improvement or 1.0)))
    return out


def _step_reference(case, preset, eps, pass_x0, K):
    """Admissible outputs of the step on ``case``: the exact-arithmetic reference, rounding
    runs that took another path, and flipped borderline decisions; plus the spread."""
    x = case.inputs
    z, st, ac = np.asarray(x["logits"], float), np.asarray(x["states"]), np.asarray(x["actions"])
    adv, delta = np.asarray(x["advantages"], float), float(x["max_kl"])
    old = log_softmax(z)[st, ac]
    random_x0 = preset.config.cg_x0 == "random"
    seed = int(x["x0_seed"])
    zmax = float(np.max(np.abs(z)))
    mags = _step_magnitudes(z, st, ac, adv, old, preset.config.fvp_stride)

    def run(k, force=None):
        rng = np.random.default_rng([seed, 0 if (pass_x0 or k == 0) else k]) \
            if random_x0 else None
        noise = np.random.default_rng([seed, 1000 + k]) if k else None
        zz, aa, oo = z, adv, old
        if noise is not None:
            zz = z * (1 + eps * noise.uniform(-1, 1, z.shape))
            aa = adv * (1 + eps * noise.uniform(-1, 1, adv.shape))
            oo = old * (1 + eps * noise.uniform(-1, 1, old.shape))
        pert = _Rounding(eps, noise, mags, force)
        return preset_step(zz, st, ac, aa, oo, delta, preset, rng=rng, perturb=pert)

    exact = _Rounding(eps, None, mags)
    base = preset_step(z, st, ac, adv, old, delta, preset, rng=np.random.default_rng([seed, 0])
                       if random_x0 else None, perturb=exact)
    ref = _step_summary(base, z.shape)
    # the direction is determined to about eps x kappa, kappa the spread of the curvatures
    # CG met (plus damping); beyond 1% at this precision the case is not compared
    lam = preset.config.damping
    curv = np.asarray(exact.rayleigh) + lam
    kappa = float(curv.max() / curv.min()) if curv.size and curv.min() > 0 else 1.0
    undetermined = (f"not compared: CG met curvatures spanning a factor {kappa:.2g}, so the "
                    f"step is not determined to 1% at eps = {eps:.2g}"
                    if kappa * eps >= 1e-2 else "")
    no_step = base.cg is None                 # g = 0 exactly: refpg takes no step
    path = (ref["accepted"], ref["n_backtracks"])
    alternatives, spread_logp, spread_beta = [], 0.0, 0.0
    for k in range(1, K + 1):
        r = _step_summary(run(k), z.shape)
        if (r["accepted"], r["n_backtracks"]) == path:
            spread_logp = max(spread_logp, float(np.max(np.abs(r["logp"] - ref["logp"]))))
            spread_beta = max(spread_beta, abs(r["step_length"] - ref["step_length"]))
        else:
            alternatives.append(("rounding-level alternative path", r))
    def tau_kl(theta):
        return 64 * eps * mags["kl"](theta) * (1 + delta)

    tau_imp = 64 * eps * mags["surrogate"]
    for flip in _borderline_flips(base, z.ravel(), preset.config.acceptance, delta,
                                  tau_kl, tau_imp):
        r = _step_summary(run(0, force=flip), z.shape)
        alternatives.append((f"trial {flip[0]} within rounding of its boundary: "
                             f"decision flipped ({flip[1]})", r))
    floor = 64 * eps * (1 + zmax + float(np.max(np.abs(ref["logp"]))))
    tol = dict(logp=floor + _SPREAD_FACTOR * spread_logp,
               step_length=64 * eps * ref["step_length"] + _SPREAD_FACTOR * spread_beta + 1e-300)
    x0 = None
    if random_x0 and pass_x0:
        x0 = (preset.config.cg_x0_scale
              * np.random.default_rng([seed, 0]).standard_normal(z.size)).reshape(z.shape)
    return dict(ref=ref, alternatives=alternatives, tol=tol, no_step=no_step, old=old, x0=x0,
                step=base, undetermined=undetermined)


def _pack(summary, keys):
    parts = [summary["logp"].ravel()]
    for k in keys:
        parts.append([summary[k]])
    return np.concatenate(parts)


def _call_step(fn, args, kwargs, shape):
    """Call the user's step; split ``(new_logits, info)``; return (Outcome, info, problem)."""
    box = {}

    def call(*a, **kw):
        out = fn(*a, **kw)
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
            box["info"] = out[1]
            return out[0]
        return out

    outcome = safe_call(call, args, kwargs, shape=shape)
    info, problem = {}, ""
    for k in _INFO_KEYS:
        if k in box.get("info", {}):
            try:
                v = np.asarray(to_numpy(box["info"][k]), dtype=float)
                if v.size != 1 or not np.isfinite(v).all():
                    raise ValueError("not a finite scalar")
                info[k] = float(v.reshape(()))
            except Exception as exc:
                problem = f"info[{k!r}] = {box['info'][k]!r} is not a finite number ({exc})"
    return outcome, info, problem


def verify_trpo_step(fn, *, preset="refpg", pass_x0=False, precision="float64", seed=0,
                     n_random=6, **options):
    """Verify ``fn(logits, states, actions, advantages, old_log_probs, max_kl)`` ->
    ``new_logits: (S, A)`` or ``(new_logits, info)``: one TRPO step (V5) = (T1)-(T5) on a
    tabular softmax, compared with ``trpo_presets.preset_step`` under ``preset``.

    ``logits: (S, A)`` (theta_old); ``states, actions: (M,)`` int; ``advantages:
    (M,)``; ``old_log_probs = log softmax(logits)[states, actions]``; ``max_kl``
    float. Surrogate ``mean_j ratio_j A_j``, KL averaged over the M samples, F its
    Hessian at ``logits``. The new policy is compared (``log_softmax(new_logits)``:
    a per-state constant in the logits is invisible); ``info`` keys
    ``accepted`` (bool), ``n_backtracks`` (shrinks before the accepted trial),
    ``step_fraction`` (0 if reverted), ``step_length`` (``beta`` of (T3), full step
    ``= beta x``) are compared when returned. ``preset``: a name of
    ``trpo_presets.preset_names()``; ``options`` override any ``TRPOConfig`` or
    ``AcceptanceRule`` field or ``entropy_coef`` (``damping=0.1``,
    ``kl_comparison="lt"``...). A random CG start (sb3-contrib) is passed as keyword
    ``cg_x0: (S, A)`` if ``pass_x0``; otherwise the tolerance includes the spread of
    random starts. Example (NumPy, refpg preset) in derivations/verify_trpo.md;
    PyTorch: load ``logits`` into an ``nn.Parameter`` of a table "network", run
    your update, return the parameter. derivations/verify_trpo.md#the-trpo-step
    """
    pre = (preset if isinstance(preset, Preset) else get_preset(preset)).with_options(**options)
    eps = _eps(precision)
    if not isinstance(pass_x0, (bool, np.bool_)):
        raise TypeError(f"pass_x0 must be True or False; got {pass_x0!r}")
    pass_x0 = bool(pass_x0) and pre.config.cg_x0 == "random"
    cases = _step_cases(pre.config.max_kl, seed, preset=pre, n_random=
                        check_positive_int("n_random", n_random, minimum=0))

    def evaluate(case, K=_MC_RUNS):
        x = case.inputs
        R = _step_reference(case, pre, eps, pass_x0, K)
        z = np.asarray(x["logits"], float)
        args = (z.copy(), np.array(x["states"]), np.array(x["actions"]),
                np.array(x["advantages"], float), R["old"].copy(), float(x["max_kl"]))
        kwargs = {"cg_x0": R["x0"].copy()} if R["x0"] is not None else {}
        outcome, info, info_problem = _call_step(fn, args, kwargs, z.shape)
        if outcome.problem or info_problem:
            return _Eval(R["ref"]["logp"], outcome.value, outcome.problem or info_problem,
                         False, math.inf, 0.0)
        if R["undetermined"]:
            return _Eval(R["ref"]["logp"], outcome.value, "", True, 0.0, 0.0,
                         note=R["undetermined"])
        keys = [k for k in _INFO_KEYS if k in info and not (
            R["no_step"] or (k == "n_backtracks" and not R["ref"]["accepted"]))]
        got = Outcome(_pack({"logp": log_softmax(outcome.value), **info}, keys))
        atol = np.concatenate([np.full(z.size, R["tol"]["logp"])] + [
            [R["tol"]["step_length"] if k == "step_length" else
             R["tol"]["logp"] if k == "step_fraction" else 0.5] for k in keys])
        cands = [("reference", _pack(R["ref"], keys))] + [
            (label, _pack(r, keys)) for label, r in R["alternatives"]]
        ev = _admissible(got, cands, atol)
        if ev.index:                       # name the entry: log pi[s, a] or an info key
            k = ev.index[0]
            ev.index = (("log_pi",) + tuple(int(i) for i in np.unravel_index(k, z.shape))
                        if k < z.size else (keys[k - z.size],))
        return ev

    def layout(case):
        R = _step_reference(case, pre, eps, pass_x0, 0)
        out = {k: case.inputs[k] for k in ("logits", "states", "actions", "advantages")}
        out.update(old_log_probs=R["old"], max_kl=case.inputs["max_kl"])
        if R["x0"] is not None:
            out["cg_x0"] = R["x0"]
        return out

    conventions = {"preset": pre.name, "precision": precision, "pass_x0": pass_x0,
                   "compared": "log_softmax(new_logits).ravel() then the info keys returned, "
                               "in the order " + ", ".join(_INFO_KEYS),
                   "entropy_coef": pre.entropy_coef,
                   **{k: getattr(pre.config, k) for k in
                      ("damping", "cg_max_iter", "cg_rtol", "cg_atol", "cg_x0", "step_metric",
                       "step_eps", "line_search", "shrink", "max_backtracks", "on_failure",
                       "kl_direction", "fvp_stride")},
                   "acceptance": str(pre.config.acceptance)}
    return _run("trpo_step", cases, evaluate,
                tolerance=f"log-probs: 64 eps (1 + max|z| + max|log pi|) + {_SPREAD_FACTOR:g} x "
                          f"Monte-Carlo rounding spread ({_MC_RUNS} runs); decisions within "
                          f"rounding of a boundary admit both outcomes; eps = {eps:.3g}",
                conventions=conventions,
                departures=tuple(pre.departures) + (
                    measure_preset(pre, cases=cases).lines() if pre.departures else ()),
                notes=tuple(f"{pre.name} also (not modeled): {t}" for t in pre.not_modeled),
                extra=_tabular_candidates(("advantages",), ("logits",)), size=_tab_size,
                layout=layout, shrink_evaluate=lambda c: evaluate(c, K=1))


@dataclass(frozen=True)
class PresetCosts:
    """What a preset's departures from CONVENTIONS.md cost in (T3)-(T5) on the step
    battery (refpg's own steps, no user code). ``n_cases``; ``n_differ`` cases whose new
    policy differs from the ``"refpg"`` preset's (max log-prob difference > 1e-6);
    ``quadratic_kl`` the ``(min, max)`` of ``1/2 s^T F s / delta`` of the full step;
    ``max_returned_kl`` the largest ``KL(old || new) / delta`` of a returned step
    (accepted, or kept on failure); ``max_angle`` the largest angle (degrees) between the
    preset's CG direction and refpg's converged undamped one; ``direction_flips`` cases whose
    outcome changes when the line search checks the other KL direction;
    ``strided_quadratic_kl`` ``(min, max)`` of ``1/2 s^T F_all s / delta`` with the
    all-sample Fisher (``fvp_stride > 1``). derivations/verify_trpo.md#what-each-departure-costs
    """

    preset: str
    n_cases: int
    n_differ: int
    quadratic_kl: tuple
    max_returned_kl: float
    max_angle: float
    direction_flips: int
    strided_quadratic_kl: tuple

    def lines(self):
        """The measurements as sentences for a report's departures."""
        out = [f"measured on this battery ({self.n_cases} cases): the preset's new policy "
               f"differs from refpg's (CONVENTIONS.md) in {self.n_differ} case(s)"]
        if self.quadratic_kl:
            out.append(f"measured: quadratic KL model of the full step 1/2 s^T F s = "
                       f"{self.quadratic_kl[0]:.3g} .. {self.quadratic_kl[1]:.3g} delta")
        if self.max_angle:
            out.append(f"measured: angle between the preset's CG direction and refpg's "
                       f"(converged, undamped) up to {self.max_angle:.3g} degrees")
        out.append(f"measured: KL(old || new) of returned steps up to "
                   f"{self.max_returned_kl:.3g} delta")
        if self.direction_flips >= 0:
            out.append(f"measured: checking the other KL direction changes the outcome in "
                       f"{self.direction_flips} case(s)")
        if self.strided_quadratic_kl:
            out.append(f"measured: 1/2 s^T F_all s (all samples) = "
                       f"{self.strided_quadratic_kl[0]:.3g} .. "
                       f"{self.strided_quadratic_kl[1]:.3g} delta")
        return tuple(out)


def measure_preset(preset="refpg", *, seed=0, n_random=6, cases=None):
    """``PresetCosts`` (T3)-(T5) of ``preset`` (name or ``Preset``) on the battery of
    ``verify_trpo_step`` (same ``seed`` and ``n_random``).
    derivations/verify_trpo.md#what-each-departure-costs
    """
    pre = preset if isinstance(preset, Preset) else get_preset(preset)
    if cases is None:
        cases = _step_cases(pre.config.max_kl, seed, n_random, pre)
    refpg = get_preset("refpg")
    cfg = pre.config
    quad, returned, differ, flips, angles, strided = [], [0.0], 0, 0, [], []
    other = replace(pre, config=replace(cfg, kl_direction="old_new" if cfg.kl_direction
                                        == "new_old" else "new_old"))
    for case in cases:
        x = case.inputs
        z, st, ac = np.asarray(x["logits"], float), np.asarray(x["states"]), x["actions"]
        adv, delta = np.asarray(x["advantages"], float), float(x["max_kl"])
        old = log_softmax(z)[st, ac]

        def rng():
            return np.random.default_rng([int(x["x0_seed"]), 0])
        a = preset_step(z, st, ac, adv, old, delta, pre, rng=rng())
        b = preset_step(z, st, ac, adv, old, delta, refpg)
        lz, la = log_softmax(z), log_softmax(a.theta.reshape(z.shape))
        if a.step_length > 0:
            quad.append(a.quadratic_kl / delta)
            na, nb = np.linalg.norm(a.direction), np.linalg.norm(b.direction)
            if na > 0 and nb > 0:
                cos = min(1.0, abs(a.direction @ b.direction) / (na * nb))
                angles.append(math.degrees(math.acos(cos)))
        if a.accepted or (cfg.on_failure == "keep_last" and a.step_fraction > 0):
            kl = np.mean(np.sum(np.exp(lz) * (lz - la), axis=1)[st])
            returned.append(kl / delta)
        if np.max(np.abs(la - log_softmax(b.theta.reshape(z.shape)))) > 1e-6:
            differ += 1
        if cfg.acceptance.check_kl and cfg.line_search:
            c = preset_step(z, st, ac, adv, old, delta, other, rng=rng())
            flips += (c.accepted, c.step_fraction) != (a.accepted, a.step_fraction)
        if cfg.fvp_stride != 1 and a.step_length > 0:
            F = TabularSoftmaxPolicy(*z.shape).fisher(z.ravel(), st)
            strided.append(0.5 * a.full_step @ F @ a.full_step / delta)
    span = (lambda v: (float(min(v)), float(max(v))) if v else ())
    return PresetCosts(pre.name, len(cases), differ, span(quad), float(max(returned)),
                       float(max(angles)) if angles and cfg.damping else 0.0,
                       flips if cfg.acceptance.check_kl and cfg.line_search else -1,
                       span(strided))


# =========================================================================== golden vectors

def golden_trpo_step():
    """Golden vectors of one TRPO step (V5) under the refpg, baselines, modular_rl, sb3-contrib
    (start ``cg_x0`` given) and spinningup presets (``verify_trpo_step``).

    derivations/verify_trpo.md#golden-vectors
    """
    eps = _EPS["float64"]
    out = []
    for name in ("refpg", "baselines", "modular_rl", "sb3-contrib", "spinningup"):
        pre = get_preset(name)
        for c in _pick(_step_cases(pre.config.max_kl, 0, 1, pre),
                       ("tiny_one_state", "near_deterministic", "line_search_must_backtrack",
                        "kl_direction_decides", "random_0")):
            R = _step_reference(c, pre, eps, True, _MC_RUNS)
            if R["alternatives"] or R["undetermined"]:
                continue                    # ambiguous decisions are not golden
            x = c.inputs
            inputs = {k: x[k] for k in ("logits", "states", "actions", "advantages")}
            inputs.update(old_log_probs=R["old"], max_kl=x["max_kl"])
            if R["x0"] is not None:
                inputs["cg_x0"] = R["x0"]
            s, ref = R["step"], R["ref"]
            expected = {"new_logits": s.theta.reshape(np.shape(x["logits"])),
                        "new_log_probs": ref["logp"], "accepted": bool(ref["accepted"]),
                        "n_backtracks": int(ref["n_backtracks"]),
                        "step_fraction": ref["step_fraction"], "step_length": ref["step_length"]}
            rtol = _up(R["tol"]["step_length"] / max(ref["step_length"], 1e-300), 1e-14)
            conv = {"preset": name, **{k: getattr(pre.config, k) for k in
                                       ("damping", "cg_max_iter", "cg_rtol", "cg_atol",
                                        "cg_x0", "step_metric", "step_eps", "shrink",
                                        "max_backtracks", "on_failure", "kl_direction",
                                        "fvp_stride", "line_search")},
                    "acceptance": str(pre.config.acceptance), "entropy_coef": pre.entropy_coef}
            conv["cg_max_iter"] = conv["cg_max_iter"] if conv["cg_max_iter"] is not None \
                else f"10 d = {10 * np.size(x['logits'])}"
            out.append(vector(f"{name}_{c.name}", f"one TRPO step, preset {name}, case "
                              f"'{c.name}'", "refpg.verify.trpo_presets.preset_step", inputs,
                              expected, rtol=rtol, atol=_up(R["tol"]["logp"]),
                              conventions=conv))
    return ("one TRPO step (CG direction, step length, backtracking line search) on the logits "
            "of a tabular softmax; surrogate mean_j ratio_j A_j, KL averaged over the samples",
            "logits (S, A); states, actions (M,) int; advantages, old_log_probs (M,); max_kl; "
            "cg_x0 (S, A) when the preset starts CG at random; expected new_logits (S, A) (up "
            "to a per-state constant: compare new_log_probs), accepted, n_backtracks (shrinks "
            "before acceptance; max_backtracks if none), step_fraction (0 if reverted), "
            "step_length beta (full step = beta x)", out)
