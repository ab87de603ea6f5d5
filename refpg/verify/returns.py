"""V2: verify a user's discounted returns, GAE and lambda-returns (SCOPE V2).

``verify_returns``, ``verify_gae`` and ``verify_lambda_returns`` run the
user's function and refpg's reference (``refpg.returns``) on a battery of
designed edge cases (episodes ending mid-batch, terminated versus truncated,
both flags at once, one-step episodes, ``gamma`` and ``lam`` 0 and 1, a cut
by the end of the buffer) plus seeded random buffers, in the layout the
user's code uses (``refpg.verify.layouts``), and shrink a failure to a
counterexample of a few time steps. derivations/verify_returns.md

Time-limit handling is an explicit option: ``preset`` names the peer whose
convention the user's code follows (PEER-CONVENTIONS.md, conventions A-F);
the reference is computed under that convention and the report states where
it departs from CONVENTIONS.md and what that costs on the battery.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .core import Case, Outcome
from .layouts import (LAYOUTS, _bool, _choice, _float, _int, _in_user_layout, _run_cases, bind,
                      call_in_layout, render)
from .vectors import vector
from .truncation import (NORMALIZATIONS, PRESETS, TruncationPreset, _FIELDS, _check_preset,
                         _consistent, reference_gae, reference_lambda_returns, reference_returns)

__all__ = ["trajectory_cases", "verify_returns", "verify_gae", "verify_lambda_returns",
           "golden_returns", "golden_gae", "golden_lambda_returns",
           # re-exported from refpg.verify.truncation
           "TruncationPreset", "PRESETS", "NORMALIZATIONS", "reference_returns", "reference_gae",
           "reference_lambda_returns"]



# --------------------------------------------------------------------------- battery
def _buffer(rng, name, term, trunc, gamma, lam, *, scale=1.0):
    term, trunc = np.asarray(term, bool), np.asarray(trunc, bool)
    N, T = term.shape
    values = np.round(rng.normal(0.0, 2.0, (N, T)), 3) * scale
    nv = np.empty((N, T))
    nv[:, :-1] = values[:, 1:]
    ends = term | trunc
    ends[:, -1] = True
    nv[ends] = np.round(rng.normal(1.0, 2.0, int(ends.sum())), 3) * scale  # final observations
    rewards = np.round(rng.normal(0.0, 1.0, (N, T)), 3) * scale
    return Case(name, {"rewards": rewards, "values": values, "next_values": nv,
                       "terminated": term, "truncated": trunc, "gamma": float(gamma),
                       "lam": float(lam)}, time_fields=_FIELDS)


def _flags(shape, term_at=(), trunc_at=()):
    term, trunc = np.zeros(shape, bool), np.zeros(shape, bool)
    for idx in term_at:
        term[idx] = True
    for idx in trunc_at:
        trunc[idx] = True
    return term, trunc


def trajectory_cases(seed=0, n_random=24, *, long=True):
    """The battery: designed edge cases, then ``n_random`` seeded random buffers.

    Each is a ``Case`` with canonical batch-major ``(N, T)`` fields ``rewards,
    values, next_values, terminated, truncated`` and scalars ``gamma, lam``
    (shapes are non-square, so a transposition cannot hide).
    derivations/verify_returns.md#the-battery
    """
    rng = np.random.default_rng(seed)
    c = []
    c.append(_buffer(rng, "one episode terminated at its last step",
                     *_flags((1, 5), [(0, 4)]), 0.9, 0.8))
    c.append(_buffer(rng, "episodes ending mid-batch (several per row)",
                     *_flags((3, 7), [(0, 2), (2, 0), (2, 3)], [(0, 5), (1, 1)]), 0.9, 0.8))
    c.append(_buffer(rng, "terminated (row 0) versus truncated (row 1) at the same step",
                     *_flags((2, 5), [(0, 2)], [(1, 2)]), 0.9, 0.8))
    c.append(_buffer(rng, "one-step episodes", *_flags(
        (2, 4), [(0, 0), (0, 2), (1, 1), (1, 3)], [(0, 1), (0, 3), (1, 0), (1, 2)]), 0.9, 0.8))
    c.append(_buffer(rng, "truncated at the last column", *_flags((1, 4), (), [(0, 3)]),
                     0.9, 0.8))
    c.append(_buffer(rng, "terminated at the last column (epoch end)",
                     *_flags((1, 4), [(0, 3)]), 0.9, 0.8))
    c.append(_buffer(rng, "terminated and truncated both set (TimeLimit at a terminal step)",
                     *_flags((1, 5), [(0, 2)], [(0, 2)]), 0.9, 0.8))
    c.append(_buffer(rng, "cut by the end of the buffer (no flag)", *_flags((2, 3)), 0.9, 0.8))
    c.append(_buffer(rng, "single steps: cut, terminated, truncated",
                     *_flags((3, 1), [(1, 0)], [(2, 0)]), 0.9, 0.8))
    mixed = _flags((2, 6), [(0, 1), (1, 4)], [(0, 4), (1, 1)])
    for g, lam, what in [(0.0, 0.8, "gamma = 0"), (1.0, 0.8, "gamma = 1"),
                         (0.9, 0.0, "lambda = 0"), (0.9, 1.0, "lambda = 1"),
                         (1.0, 1.0, "gamma = 1 and lambda = 1"), (0.0, 0.0, "gamma = lambda = 0")]:
        c.append(_buffer(rng, what, *mixed, g, lam))
    c.append(_buffer(rng, "large magnitudes (1e6)", *mixed, 0.99, 0.95, scale=1e6))
    for k in range(int(n_random)):
        N, T = int(rng.integers(1, 5)), int(rng.integers(1, 13))
        if N == T:
            T += 1
        u = rng.random((N, T))
        term = u < 0.15
        trunc = (u > 0.85) | ((u < 0.03) & (rng.random((N, T)) < 0.5))   # sometimes both
        g = [float(rng.uniform(0.5, 1.0)), 0.0, 1.0][int(rng.choice(3, p=[0.8, 0.1, 0.1]))]
        lam = [float(rng.uniform(0.0, 1.0)), 0.0, 1.0][int(rng.choice(3, p=[0.8, 0.1, 0.1]))]
        c.append(_buffer(rng, f"random buffer {k} (seed {seed})", term, trunc, g, lam))
    if long:
        u = rng.random((2, 300))
        c.append(_buffer(rng, "long rows (T = 300)", u < 0.01, u > 0.99, 0.99, 0.95))
    return c


# --------------------------------------------------------------------------- the driver
def _with_scalars(cases, gamma, lam):
    out = []
    for c in cases:
        kw = {}
        if gamma is not None:
            kw["gamma"] = gamma
        if lam is not None:
            kw["lam"] = lam
        out.append(c.replace(**kw) if kw else c)
    return out


def _call_user(fn, binding, layout, case, steps, scalars, lead):
    r, v, nv, term, trunc = _consistent(case.inputs)
    arrays = {"rewards": r, "values": v, "next_values": nv, "terminated": term,
              "truncated": trunc, "dones": term | trunc}
    sc = {k: float(case.inputs[k]) for k in scalars}
    if layout == "episodes":
        return call_in_layout(fn, binding, layout, {k: arrays[k] for k in steps}, sc,
                              ends=term | trunc, lead=lead,
                              end_values={"next_value": nv, "terminated": term,
                                          "truncated": trunc})
    return call_in_layout(fn, binding, layout, {k: arrays[k] for k in steps}, sc, lead=lead)


def _renderer(layout, steps, scalars, binding):
    passed = set(binding.names)

    def to_user(case):
        r, v, nv, term, trunc = _consistent(case.inputs)
        arrays = {"rewards": r, "values": v, "next_values": nv, "terminated": term,
                  "truncated": trunc, "dones": term | trunc}
        ends = {"next_value": nv, "terminated": term, "truncated": trunc}
        return render(layout, {k: arrays[k] for k in steps if k in passed},
                      {k: float(case.inputs[k]) for k in scalars if k in passed},
                      ends=term | trunc, end_values={k: a for k, a in ends.items() if k in passed})
    return to_user


def _offered(layout, bootstrap, scalars):
    if layout == "episodes":
        steps = ("rewards", "values") if bootstrap else ("rewards",)
        ends = ("next_value", "terminated", "truncated") if bootstrap else ("terminated",
                                                                             "truncated")
        return steps, steps + ends + tuple(scalars)
    steps = (("rewards", "values", "next_values") if bootstrap else ("rewards",)) + \
        ("terminated", "truncated", "dones")
    return steps, steps + tuple(scalars)


def _difference(cases, ref_a, ref_b):
    """``(n, worst)``: cases where ``ref_a`` differs from ``ref_b``, and the largest
    difference relative to the case's largest ``|ref_b|`` (absolute below 1)."""
    n, worst = 0, 0.0
    for c in cases:
        a, b = np.asarray(ref_a(c.inputs)), np.asarray(ref_b(c.inputs))
        d = float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(b))))
        n += d > 1e-12
        worst = max(worst, d)
    return n, worst


def _measured(quantity, n, worst, total):
    return (f"Measured on this battery: {quantity} differs from refpg's in {n} of {total} "
            f"cases, by up to {worst:.3g} times the case's largest |value| (absolute below 1)")


def _departures(preset, cases, ref, quantity, targets):
    p = PRESETS[preset]
    cost = "; ".join(c for c in (p.cost, p.target_cost if targets else "") if c)
    if not cost:
        return []
    n, worst = _difference(cases, lambda x: ref(x, preset), lambda x: ref(x, "refpg"))
    return [f"preset {preset!r} (convention {p.convention}: {p.rule}): {cost}. "
            + _measured(quantity, n, worst, len(cases))]


def _matching_presets(fn, binding, layout, cases, steps, scalars, lead, ref, tolerance):
    """Presets under which every case agrees (for a failure message)."""
    outs = []
    for c in cases:
        o = _call_user(fn, binding, layout, c, steps, scalars, lead)
        if o.problem:
            return []
        outs.append(o.value)
    rtol, atol = tolerance
    return [name for name in PRESETS
            if all(np.all(np.abs(o - ref(c.inputs, name)) <= atol + rtol
                          * np.abs(ref(c.inputs, name))) for c, o in zip(cases, outs))]


def _verify(quantity, fn, ref, *, layout, preset, bootstrap, scalars, lead, gamma, lam,
            tolerance, n_random, seed, shrink, domain=None, extra_conv=None,
            extra_departures=(), targets=False):
    layout = _choice("layout", layout, LAYOUTS)
    p = _check_preset(preset)
    n_random = _int("n_random", n_random)
    seed = _int("seed", seed)
    shrink = _bool("shrink", shrink)
    steps, offered = _offered(layout, bootstrap, scalars)
    binding = bind(fn, offered)
    cases = _with_scalars(trajectory_cases(seed, n_random), gamma, lam)
    skipped = 0
    if domain is not None:
        kept = [c for c in cases if domain(c)]
        skipped, cases = len(cases) - len(kept), kept

    def evaluate(case):
        if domain is not None and not domain(case):
            return np.zeros(()), Outcome(np.zeros(()))    # outside the domain: agree
        return ref(case.inputs, preset), _call_user(fn, binding, layout, case, steps,
                                                     scalars, lead)

    conventions = {"layout": layout, "preset": preset, "convention": p.convention,
                   "peers": p.peers, "rule": p.rule, "assumption": p.assumption,
                   "gamma": "battery (0, 1 and random)" if gamma is None else gamma,
                   **({"lam": "battery (0, 1 and random)" if lam is None else lam}
                      if "lam" in scalars else {}),
                   "keywords": ", ".join(binding.names), **(extra_conv or {})}
    departures = list(extra_departures) + _departures(preset, cases, ref, quantity, targets)
    notes = [n for n in [binding.note([("dones", ("terminated", "truncated"))])] if n]
    if skipped:
        notes.append(f"{skipped} battery case(s) outside the domain of the options were "
                     f"skipped (see derivations/verify_returns.md#advantage-normalisation)")
    rep = _run_cases(quantity, cases, evaluate, tolerance=tolerance, conventions=conventions,
                    departures=departures, notes=notes, shrink=shrink,
                    to_user_layout=_renderer(layout, steps, scalars, binding))
    rep = _in_user_layout(rep, layout)
    if not rep.passed and lead == () and "returned shape (2," in rep.problem:
        rep = replace(rep, notes=rep.notes + ("the output has a leading axis of 2: if your "
                                              "function returns (advantages, returns), "
                                              "verify with output='both'",))
    if not rep.passed:
        match = [m for m in _matching_presets(fn, binding, layout, cases, steps, scalars,
                                              lead, ref, tolerance) if m != preset]
        if match:
            names = ", ".join(repr(m) for m in match)
            conv = ", ".join(sorted({PRESETS[m].convention for m in match}))
            if "refpg" in match:
                text = (f"your function agrees on every case with refpg's own convention "
                        f"(presets {names}, convention {conv}): it follows CONVENTIONS.md, not "
                        f"preset {preset!r}")
            else:
                text = (f"your function agrees on every case with preset(s) {names} "
                        f"(convention {conv}): it follows that convention; verify with it to "
                        f"see the departure from CONVENTIONS.md")
            rep = replace(rep, notes=rep.notes + (text,))
    return rep


def _tolerance(rtol, atol):
    return (_float("rtol", rtol, lo=0.0), _float("atol", atol, lo=0.0))


# --------------------------------------------------------------------------- verifiers
def verify_returns(fn, *, layout="batch_major", preset="refpg", bootstrap=True, gamma=None,
                   rtol=1e-9, atol=1e-9, n_random=24, seed=0, shrink=True):
    """Verify a user's discounted reward-to-go (R2) on the battery; returns a ``VerifyReport``.

        G_t = r_t + gamma (1 - done_t) G_{t+1} + gamma b_t V(s_{t+1})      (R2)

    under ``preset``'s time-limit convention (``PRESETS``; ``b_t = 1`` at
    truncated and buffer-cut steps for refpg's own). ``bootstrap=False``: no
    value enters, ``G`` sums the observed rewards only (presets do not apply).
    Calling convention (``layout``, derivations/verify_returns.md#layouts-and-calling-conventions):
    ``fn(rewards, values, next_values, terminated, truncated, dones, gamma)``
    with ``(N, T)`` arrays (``"batch_major"``) or ``(T, N)`` (``"time_major"``)
    -> same shape; ``"episodes"``: ``fn(rewards (L,), values (L,), next_value,
    terminated, truncated, gamma) -> (L,)`` once per episode. Only the keywords
    ``fn`` accepts are passed. Example, NumPy, time-major::

        def rtg(rewards, next_values, terminated, truncated, gamma):
            G, acc = np.zeros_like(rewards), np.zeros(rewards.shape[1])
            for t in reversed(range(len(rewards))):
                end = terminated[t] | truncated[t] | (t == len(rewards) - 1)
                boot = np.where(terminated[t], 0.0, next_values[t])
                acc = rewards[t] + gamma * np.where(end, boot, acc)
                G[t] = acc
            return G
        verify_returns(rtg, layout="time_major")

    A PyTorch function converts the NumPy inputs (``torch.as_tensor``); its
    tensor output is converted back. ``gamma=None`` sweeps the battery's
    discounts (0, 1, random); a number fixes it. Never raises because of
    ``fn``. derivations/verify_returns.md#verify_returns
    """
    bootstrap = _bool("bootstrap", bootstrap)
    p = _check_preset(preset)
    if not bootstrap and p.name != "refpg":
        raise ValueError(f"preset {preset!r} sets how a time limit bootstraps; with "
                         f"bootstrap=False nothing bootstraps: use preset='refpg'")
    gamma = _float("gamma", gamma, allow_none=True, lo=0.0, hi=1.0)

    def ref(x, name):
        return reference_returns(x, name, bootstrap=bootstrap)
    extra = []
    if not bootstrap:
        cases = _with_scalars(trajectory_cases(_int("seed", seed), _int("n_random", n_random)),
                              gamma, None)
        n, worst = _difference(cases, lambda x: reference_returns(x, bootstrap=False),
                               lambda x: reference_returns(x))
        extra.append("bootstrap=False: the unobserved tail of truncated and buffer-cut "
                     "episodes counts as 0, so G_t is the return of the observed data, not "
                     "an estimate of Q(s_t, a_t) (CONVENTIONS.md bootstraps a time limit "
                     "from V(s_T)). " + _measured("returns", n, worst, len(cases)))
    return _verify("returns", fn, ref, layout=layout, preset=preset, bootstrap=bootstrap,
                   scalars=("gamma",), lead=(), gamma=gamma, lam=None,
                   tolerance=_tolerance(rtol, atol), n_random=n_random, seed=seed,
                   shrink=shrink, extra_conv={"bootstrap": bootstrap}, extra_departures=extra)


def _normaliser(normalize, norm_eps, norm_ddof):
    _choice("normalize", normalize, tuple(NORMALIZATIONS))
    if normalize == "none":
        return None
    if normalize == "mean_std":
        eps = _float("norm_eps", 1e-8 if norm_eps is None else norm_eps, lo=0.0)
        ddof = _int("norm_ddof", 1 if norm_ddof is None else norm_ddof)
        return eps, ddof
    if norm_eps is not None or norm_ddof is not None:
        raise ValueError(f"normalize={normalize!r} fixes eps and ddof; use "
                         f"normalize='mean_std' to set norm_eps / norm_ddof")
    return NORMALIZATIONS[normalize]


def _normalise(adv, eps, ddof):
    return (adv - adv.mean()) / (adv.std(ddof=ddof) + eps)


def verify_gae(fn, *, layout="batch_major", preset="refpg", output="advantages",
               normalize="none", norm_eps=None, norm_ddof=None, gamma=None, lam=None,
               rtol=1e-9, atol=1e-9, n_random=24, seed=0, shrink=True):
    """Verify a user's GAE(gamma, lam) (R5) on the battery; returns a ``VerifyReport``.

        delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t),
        A_t = delta_t + gamma lam (1 - done_t) A_{t+1}                    (R3), (R5)

    under ``preset``'s time-limit convention. ``output``: ``"advantages"``,
    ``"returns"`` (the preset's value target, ``A + V`` for most peers) or
    ``"both"`` (``fn`` returns the pair ``(advantages, returns)``).
    ``normalize``: ``"none"``, ``"mean_std"`` (``(A - mean) / (std + norm_eps)``
    over the whole batch, ``std`` with ``norm_ddof``; default 1e-8 and 1) or a
    peer's choice (``NORMALIZATIONS``: ``"sb3"``, ``"cleanrl"``, ``"spinningup"``...);
    returns are computed from the unnormalised advantages. Calling convention
    (derivations/verify_returns.md#layouts-and-calling-conventions):
    ``fn(rewards, values, next_values, terminated, truncated, dones, gamma, lam)``,
    ``(N, T)`` / ``(T, N)`` arrays, or per episode ``fn(rewards (L,), values (L,),
    next_value, terminated, truncated, gamma, lam) -> (L,)``. Example, a CleanRL-style
    time-major loop (convention A)::

        def cleanrl_gae(rewards, values, next_values, dones, gamma, lam):
            adv, last = np.zeros_like(rewards), 0.0
            for t in reversed(range(len(rewards))):
                nonterminal = 1.0 - dones[t]
                delta = rewards[t] + gamma * next_values[t] * nonterminal - values[t]
                adv[t] = last = delta + gamma * lam * nonterminal * last
            return adv
        verify_gae(cleanrl_gae, layout="time_major", preset="cleanrl").passed   # True

    (``next_values[t]`` is ``values[t+1]`` inside an episode; CleanRL's
    ``next_value`` is ``next_values[-1]``.) A PyTorch function: convert the
    inputs with ``torch.as_tensor``; tensors returned are converted back.
    derivations/verify_returns.md#verify_gae
    """
    output = _choice("output", output, ("advantages", "returns", "both"))
    norm = _normaliser(normalize, norm_eps, norm_ddof)
    layout = _choice("layout", layout, LAYOUTS)
    if norm is not None and layout == "episodes":
        raise ValueError("normalize needs the whole batch: use layout 'batch_major' or "
                         "'time_major'")
    gamma = _float("gamma", gamma, allow_none=True, lo=0.0, hi=1.0)
    lam = _float("lam", lam, allow_none=True, lo=0.0, hi=1.0)

    def ref(x, name):
        adv, ret = reference_gae(x, name)
        if norm is not None:
            adv = _normalise(adv, *norm)
        return {"advantages": adv, "returns": ret, "both": np.stack([adv, ret])}[output]

    domain, extra = None, []
    if norm is not None and output != "returns":
        eps, ddof = norm

        def normalisable(case):
            adv = reference_gae(case.inputs, preset)[0]
            return adv.size >= 2 and adv.std(ddof=ddof) >= 1e-6 * (1.0 + np.max(np.abs(adv)))
        domain = normalisable
        extra.append(f"normalize={normalize!r} (eps={eps:g}, ddof={ddof}): advantages are "
                     f"shifted by their batch mean and divided by (std + eps). The mean is a "
                     f"baseline that depends on the sampled actions (an O(1/n) bias of the "
                     f"gradient) and the division rescales each batch's step differently; "
                     f"CONVENTIONS.md's estimators use the raw advantages")
    return _verify("gae", fn, ref, layout=layout, preset=preset, bootstrap=True,
                   scalars=("gamma", "lam"), lead=(2,) if output == "both" else (),
                   gamma=gamma, lam=lam, tolerance=_tolerance(rtol, atol), n_random=n_random,
                   seed=seed, shrink=shrink, domain=domain, targets=output != "advantages",
                   extra_conv={"output": output, "normalize": normalize,
                               **({"norm_eps": norm[0], "norm_ddof": norm[1]} if norm else {}),
                               "value_target": PRESETS[_check_preset(preset).name].value_target},
                   extra_departures=extra)


def verify_lambda_returns(fn, *, layout="batch_major", preset="refpg", gamma=None, lam=None,
                          rtol=1e-9, atol=1e-9, n_random=24, seed=0, shrink=True):
    """Verify a user's lambda-returns (R4) on the battery; returns a ``VerifyReport``.

        G^lam_t = r_t + gamma [(1 - lam) V(s_{t+1}) + lam G^lam_{t+1}]    inside an episode
        G^lam_t = r_t + gamma (1 - terminated_t) V(s_{t+1})             at its last step

    under ``preset``'s time-limit convention. Calling convention as
    ``verify_gae`` (``fn(rewards, values, next_values, terminated, truncated,
    dones, gamma, lam)``, or per episode), e.g.::

        def lam_ret(rewards, next_values, terminated, truncated, gamma, lam):
            G, acc = np.zeros_like(rewards), None
            for t in reversed(range(rewards.shape[1])):    # batch-major (N, T)
                end = terminated[:, t] | truncated[:, t] | (t == rewards.shape[1] - 1)
                v = np.where(terminated[:, t], 0.0, next_values[:, t])
                tail = v if acc is None else np.where(end, v, (1 - lam) * v + lam * acc)
                G[:, t] = acc = rewards[:, t] + gamma * tail
            return G

    derivations/verify_returns.md#verify_lambda_returns
    """
    gamma = _float("gamma", gamma, allow_none=True, lo=0.0, hi=1.0)
    lam = _float("lam", lam, allow_none=True, lo=0.0, hi=1.0)
    return _verify("lambda_returns", fn, reference_lambda_returns, layout=layout,
                   preset=preset, bootstrap=True, scalars=("gamma", "lam"), lead=(),
                   gamma=gamma, lam=lam, tolerance=_tolerance(rtol, atol),
                   n_random=n_random, seed=seed, shrink=shrink)


# --------------------------------------------------------------------------- golden vectors
_LAYOUT_TEXT = ("batch-major: rewards, values, next_values (N, T) float64; terminated, "
                "truncated (N, T) bool; a row may hold several episodes back to back. "
                "next_values[:, t] = V(s_{t+1}), the value of the observation returned by step "
                "t (before any reset); inside an episode it equals values[:, t+1]. A step that "
                "is neither terminated nor truncated at the end of a row was cut by the end of "
                "the buffer and bootstraps from next_values. terminated and truncated may both "
                "be set (gymnasium's TimeLimit at a terminal step); see derivations/"
                "verify_returns.md#truncation-presets for how each preset treats that.")
_GOLDEN_PRESETS = ("cleanrl", "sb3", "modular_rl", "a2c_ppo_acktr", "spinningup")
_GOLDEN_CASES = ("episodes ending mid-batch (several per row)",
                 "terminated and truncated both set (TimeLimit at a terminal step)",
                 "terminated at the last column (epoch end)", "truncated at the last column")


def _golden(quantity, func, compute, extra_inputs=()):
    out = []
    for case in trajectory_cases(0, 4, long=False):
        r, v, nv, term, trunc = _consistent(case.inputs)
        inputs = {"rewards": r, "values": v, "next_values": nv, "terminated": term,
                  "truncated": trunc, "gamma": case.inputs["gamma"]}
        for k in extra_inputs:
            inputs[k] = case.inputs[k]
        presets = ("refpg",) + (_GOLDEN_PRESETS if case.name in _GOLDEN_CASES else ())
        for name in presets:
            out.append(vector(f"{case.name} [{name}]", f"{quantity} under preset {name!r} "
                              f"(convention {PRESETS[name].convention}): {case.name}", func,
                              inputs, compute(case.inputs, name), rtol=1e-10, atol=1e-12,
                              conventions={"preset": name,
                                           "convention": PRESETS[name].convention,
                                           "value_target": PRESETS[name].value_target}))
    return out


def golden_returns():
    """Golden vectors of the bootstrapped reward-to-go (R2) on the designed cases.

    derivations/verify_returns.md#golden-vectors
    """
    return ("Discounted reward-to-go G_t (R2), bootstrapped from next_values at truncated and "
            "buffer-cut steps (refpg) or as each peer preset does; also without bootstrap.",
            _LAYOUT_TEXT,
            _golden("reward-to-go", "refpg.verify.truncation.reference_returns",
                    lambda x, n: {"returns": reference_returns(x, n),
                                  "returns_no_bootstrap": reference_returns(x, bootstrap=False)}))


def golden_gae():
    """Golden vectors of GAE (R5): advantages and the preset's value targets.

    derivations/verify_returns.md#golden-vectors
    """
    def compute(x, n):
        adv, ret = reference_gae(x, n)
        return {"advantages": adv, "returns": ret}
    return ("GAE(gamma, lambda) advantages (R5) and value targets (A + V, or the preset's), "
            "under refpg's truncation convention C and the peer presets.", _LAYOUT_TEXT,
            _golden("GAE", "refpg.verify.truncation.reference_gae", compute, ("lam",)))


def golden_lambda_returns():
    """Golden vectors of the lambda-returns (R4). derivations/verify_returns.md#golden-vectors"""
    return ("Lambda-returns G^lambda_t (R4) by their recursive definition, under refpg's "
            "truncation convention C and the peer presets.", _LAYOUT_TEXT,
            _golden("lambda-returns", "refpg.verify.truncation.reference_lambda_returns",
                    lambda x, n: {"lambda_returns": reference_lambda_returns(x, n)},
                    ("lam",)))
