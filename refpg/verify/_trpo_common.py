"""Shared machinery of the trust-region verifiers (refpg.verify.trpo, refpg.verify.trpo_step).

Tolerances, the evaluation record, the battery runner with shrinking, tabular case
generators. derivations/verify_trpo.md#tolerances
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..distributions import log_softmax

from .core import VerifyReport, shrink_case



__all__ = []

_EPS = {"float64": 2.0 ** -52, "float32": 2.0 ** -23}
#: spread multiplier and reruns of the Monte-Carlo rounding model (verify_trpo.md, Tolerances)
_SPREAD_FACTOR = 10.0
_MC_RUNS = 4
_SHRINK_CALLS = 150


def _eps(precision):
    if precision not in _EPS:
        raise ValueError(f"precision must be one of {sorted(_EPS)}; got {precision!r}")
    return _EPS[precision]


def _choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}")
    return value


# =========================================================================== runner
@dataclass
class _Eval:
    expected: Any
    got: Any
    problem: str
    ok: bool
    err: float
    tol: float
    index: tuple = ()
    note: str = ""


def _direct(outcome, expected, atol):
    """Compare an ``Outcome`` with ``expected`` entrywise within ``atol`` (array)."""
    if outcome.problem:
        return _Eval(expected, outcome.value, outcome.problem, False, math.inf, 0.0)
    got = outcome.value
    diff = np.abs(got - expected)
    diff = np.where(np.isnan(diff), np.inf, diff)
    atol = np.broadcast_to(atol, diff.shape)
    ratio = diff / np.maximum(atol, np.finfo(float).tiny)
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape)) \
        if ratio.ndim else ()
    ok = bool(np.all(diff <= atol))
    return _Eval(expected, got, "" if ok else "mismatch", ok, float(np.max(diff)),
                 float(atol[idx] if ratio.ndim else atol), idx)


def _admissible(outcome, candidates, atol):
    """Pass iff ``outcome`` is within ``atol`` of one of ``candidates`` ((label, array) pairs)."""
    best = None
    for label, cand in candidates:
        ev = _direct(outcome, cand, atol)
        if ev.problem and ev.problem != "mismatch":
            return ev
        ev.note = label
        if best is None or ev.ok and not best.ok or (ev.ok == best.ok and ev.err < best.err):
            best = ev
    return best


def _shrink(case, fails, extra, max_calls):
    """Greedy: ``extra(case)`` candidates (coarse, domain-specific) first, then
    ``refpg.verify.core.shrink_case`` (rows, simpler numbers); repeat while smaller."""
    calls = 0
    while calls < max_calls:
        improved = False
        for cand in extra(case):
            calls += 1
            if calls > max_calls:
                break
            try:
                bad = fails(cand)
            except Exception:
                bad = False
            if bad:
                case, improved = cand, True
                break
        if improved:
            continue
        small, used = shrink_case(case, fails, max_calls=max(max_calls - calls, 1))
        calls += used
        if small is case:
            break
        case = small
    return case


def _run(quantity, cases, evaluate, *, tolerance, conventions, departures=(), notes=(),
         extra=None, size=None, layout=None, shrink=True, shrink_evaluate=None):
    """Evaluate every case, shrink the first failure, build the ``VerifyReport``."""
    results = [evaluate(c) for c in cases]
    n_failed = sum(not r.ok for r in results)
    worst = max((r.err for r in results), default=0.0)
    notes = tuple(notes) + tuple(sorted({f"{c.name}: {r.note}" for c, r in zip(cases, results)
                                          if r.ok and r.note and r.note != "reference"}))
    base = dict(conventions=dict(conventions), departures=tuple(departures), notes=notes)
    if not n_failed:
        return VerifyReport(quantity, True, len(cases), 0, worst, tolerance, **base)
    k = next(i for i, r in enumerate(results) if not r.ok)
    case = cases[k]
    shrunk_from = None
    if shrink:
        judge = shrink_evaluate or evaluate
        small = _shrink(case, lambda c: not judge(c).ok,
                        extra if extra is not None else (lambda c: iter(())), _SHRINK_CALLS)
        if small is not case:
            before, after = (size(case), size(small)) if size else ("", "")
            shrunk_from = f"{before} -> {after}" if before != after else "simplified values"
            case = small
    r = evaluate(case)
    problem = r.problem
    if problem == "mismatch":
        problem = (f"mismatch: |got - expected| = {r.err:.3e} > tolerance {r.tol:.3e} "
                   f"at index {r.index}")
    inputs = layout(case) if layout else dict(case.inputs)
    return VerifyReport(quantity, False, len(cases), n_failed, worst, tolerance,
                        case=case.name, inputs=inputs, expected=r.expected, got=r.got,
                        problem=problem, worst_index=r.index, shrunk_from=shrunk_from, **base)


# =========================================================================== tabular cases
def _relabel(arr, drop):
    return np.where(arr > drop, arr - 1, arr)


def _tabular_candidates(sample_fields, table_fields):
    """Shrink candidates for cases with ``logits: (S, A)``, ``states, actions: (M,)`` and
    per-sample ``sample_fields``: half the samples, one state fewer, one action fewer
    (``A > 2``), rounded / zero logits."""
    def gen(case):
        x = case.inputs
        z = np.asarray(x["logits"])
        S, A = z.shape
        st = np.asarray(x["states"])
        M = st.shape[0]
        fields_ = ("states",) + (("actions",) if "actions" in x else ()) + sample_fields
        if M >= 4:
            for part in (slice(0, M // 2), slice(M // 2, M)):
                yield case.replace(**{f: np.asarray(x[f])[part] for f in fields_})
        for s in range(S) if S > 1 else ():
            keep = st != s
            if keep.any():
                new = {f: np.asarray(x[f])[keep] for f in fields_}
                new["states"] = _relabel(new["states"], s)
                for t in table_fields:
                    new[t] = np.delete(np.asarray(x[t]), s, axis=0)
                yield case.replace(**new)
        if A > 2 and "actions" in x:
            ac = np.asarray(x["actions"])
            for a in range(A):
                keep = ac != a
                if keep.any():
                    new = {f: np.asarray(x[f])[keep] for f in fields_}
                    new["actions"] = _relabel(new["actions"], a)
                    for t in table_fields:
                        new[t] = np.delete(np.asarray(x[t]), a, axis=1)
                    yield case.replace(**new)
        if np.any(z != np.round(z)):
            yield case.replace(logits=np.round(z))
        if np.any(z != 0):
            yield case.replace(logits=np.zeros_like(z))
    return gen


def _tab_size(case):
    z = np.asarray(case.inputs["logits"])
    return f"(S, A, M) = ({z.shape[0]}, {z.shape[1]}, {np.asarray(case.inputs['states']).size})"


def _random_tabular(rng, S, A, M, scale=1.0):
    z = scale * rng.standard_normal((S, A))
    st = rng.integers(0, S, M)
    pi = np.exp(log_softmax(z))
    ac = np.array([rng.choice(A, p=pi[s]) for s in st], dtype=np.int64)
    return z, st, ac


# =========================================================================== surrogate

def _up(x, floor=1e-15):
    """``x`` rounded up to a power of ten (so regenerated tolerances are bit-identical)."""
    return float(10.0 ** math.ceil(math.log10(max(float(x), floor))))


def _pick(cases, names):
    return [c for c in cases if c.name in names]
