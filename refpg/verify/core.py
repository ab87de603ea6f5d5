"""Machinery shared by every verifier: safe calls, comparison, shrinking, the report.

A *verifier* runs a user's callable and refpg's reference on a battery of
cases (designed edge cases plus seeded random ones), compares the outputs
and, on the first mismatch, *shrinks* the failing case to a minimal
counterexample (fewest episodes, fewest time steps, simplest numbers) while
it still fails. derivations/verify.md#how-a-verifier-works

Nothing the user's function does can crash refpg: an exception, a wrong
shape, a non-finite or non-numeric output each becomes a failed report that
says so.

Cases are dictionaries of named inputs in refpg's canonical, batch-major
layout; a verifier translates them to the user's layout (``layouts.py``)
just before the call, so the shrinker works on one representation.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Case", "Outcome", "VerifyReport", "to_numpy", "safe_call", "compare_outputs",
           "shrink_case", "run_cases", "load_callable"]


@dataclass
class Case:
    """One input to verify on. ``inputs`` maps names to arrays or scalars.

    ``time_fields`` name the arrays whose first two axes are ``(N, T)``
    (batch-major); ``row_fields`` those whose first axis is ``N`` only. The
    shrinker slices these consistently. derivations/verify.md#how-a-verifier-works
    """

    name: str
    inputs: dict
    time_fields: tuple = ()
    row_fields: tuple = ()

    def size(self):
        """``(N, T)`` of the case (``(1, 1)``-like for cases without time fields)."""
        for f in self.time_fields:
            a = np.asarray(self.inputs[f])
            return a.shape[0], a.shape[1]
        for f in self.row_fields:
            return np.asarray(self.inputs[f]).shape[0], 0
        return 0, 0

    def replace(self, name=None, **inputs):
        new = dict(self.inputs)
        new.update(inputs)
        return Case(self.name if name is None else name, new, self.time_fields, self.row_fields)


@dataclass(frozen=True)
class Outcome:
    """The user's output as a float64 array, or ``problem`` saying why there is none.

    derivations/verify.md#how-a-verifier-works
    """

    value: Any
    problem: str = ""


def to_numpy(x):
    """Convert a user's output (NumPy, PyTorch, JAX, list, scalar) to a NumPy array.

    derivations/verify.md#how-a-verifier-works
    """
    if hasattr(x, "detach") and callable(x.detach):  # torch.Tensor
        x = x.detach()
        if hasattr(x, "cpu"):
            x = x.cpu()
        return np.asarray(x.numpy())
    if isinstance(x, (tuple, list)):
        return np.asarray([to_numpy(v) for v in x])
    return np.asarray(x)


def safe_call(fn: Callable, args=(), kwargs=None, *, shape=None, finite=True):
    """Call ``fn(*args, **kwargs)``; never raises.

    Returns an ``Outcome`` whose ``problem`` is non-empty when the call raised,
    returned something non-numeric, of the wrong ``shape``, or (with
    ``finite``) containing NaN or inf. derivations/verify.md#how-a-verifier-works
    """
    kwargs = {} if kwargs is None else kwargs
    try:
        # a warning from user code (overflow, division by zero) is not an error by itself;
        # what it produced is judged below (NaN and inf fail). Recorded, not raised, even
        # where warnings are errors (pytest's filterwarnings = error).
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            out = fn(*args, **kwargs)
    except Exception as exc:  # the user's code may raise anything
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Outcome(None, f"raised {tb}")
    try:
        arr = to_numpy(out)
    except Exception as exc:
        return Outcome(None, f"returned {type(out).__name__}, not convertible to an array ({exc})")
    if arr.dtype == object or arr.dtype.kind not in "biufc":
        return Outcome(None, f"returned non-numeric output (dtype {arr.dtype})")
    if arr.dtype.kind == "c":
        return Outcome(None, "returned complex output")
    arr = arr.astype(np.float64)
    if shape is not None and arr.shape != tuple(shape):
        # only a scalar-for-scalar difference is forgiven ((), (1,) or 0-d array): any
        # other shape change is a bug of its own and must not shrink into a "mismatch"
        if arr.size == 1 and (arr.ndim == 0 or tuple(shape) == ()) and int(np.prod(shape)) == 1:
            arr = arr.reshape(shape)
        else:
            return Outcome(arr, f"returned shape {arr.shape}, expected {tuple(shape)}")
    if finite and not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0]) if arr.ndim else ()
        return Outcome(arr, f"returned non-finite values (first at index {bad})")
    return Outcome(arr)


def compare_outputs(got, expected, *, rtol, atol):
    """``(ok, max_abs_error, worst_index)`` with ``ok`` iff ``|got - expected| <= atol + rtol |expected|``.

    NaN and shape mismatches fail. derivations/verify.md#how-a-verifier-works
    """
    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        return False, float("inf"), ()
    if got.size == 0:
        return True, 0.0, ()
    with np.errstate(over="ignore", invalid="ignore"):   # outputs near 1e308 must not warn
        diff = np.abs(got - expected)
        diff = np.where(np.isnan(diff), np.inf, diff)
        tol = atol + rtol * np.abs(expected)
        ratio = diff / np.maximum(tol, np.finfo(float).tiny)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    return bool(np.all(diff <= tol)), float(np.max(diff)), tuple(int(i) for i in worst)


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


@dataclass(frozen=True)
class VerifyReport:
    """What a verifier found. derivations/verify.md#reading-a-report

    ``passed``: every case agreed within tolerance. On failure ``case`` names
    the (shrunk) counterexample, ``inputs`` holds it in the layout the user's
    function received, ``expected`` / ``got`` the reference and user outputs,
    ``problem`` says what went wrong (``mismatch``, ``raised ...``, ``returned
    shape ...``, ``returned non-finite values ...``), ``shrunk_from`` the size
    of the case before shrinking. ``conventions`` lists the options used and
    ``departures`` where they depart from CONVENTIONS.md and what that costs.
    """

    quantity: str
    passed: bool
    n_cases: int
    n_failed: int
    worst_error: float
    tolerance: str
    case: str | None = None
    inputs: dict | None = None
    expected: Any = None
    got: Any = None
    problem: str = ""
    worst_index: tuple = ()
    shrunk_from: str | None = None
    conventions: dict = field(default_factory=dict)
    departures: tuple = ()
    notes: tuple = ()

    def to_dict(self):
        """A JSON-serialisable dictionary of the report."""
        return _jsonable(asdict(self))

    def to_json(self, **kw):
        return json.dumps(self.to_dict(), **kw)

    def __str__(self):
        lines = [f"refpg verify {self.quantity}: {'PASSED' if self.passed else 'FAILED'} "
                 f"({self.n_cases - self.n_failed}/{self.n_cases} cases agree; "
                 f"worst error {self.worst_error:.3e}; tolerance {self.tolerance})"]
        if self.conventions:
            lines.append("conventions: " + ", ".join(f"{k}={v}" for k, v in self.conventions.items()))
        for d in self.departures:
            lines.append(f"departs from refpg's conventions: {d}")
        for n in self.notes:
            lines.append(f"note: {n}")
        if not self.passed:
            lines.append(f"problem: {self.problem}")
            lines.append(f"counterexample: {self.case}"
                         + (f" (shrunk from {self.shrunk_from})" if self.shrunk_from else ""))
            if self.inputs is not None:
                with np.printoptions(precision=6, suppress=True, linewidth=100):
                    for k, v in self.inputs.items():
                        lines.append(f"  {k} = {np.asarray(v)!r}" if isinstance(v, np.ndarray)
                                     else f"  {k} = {v!r}")
                    lines.append(f"  expected = {np.asarray(self.expected)!r}")
                    lines.append(f"  got      = {np.asarray(self.got)!r}")
                    if self.worst_index:
                        lines.append(f"  worst at index {self.worst_index}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- shrinking
def _candidates(case: Case):
    """Smaller or simpler variants of ``case``, most aggressive first."""
    N, T = case.size()
    tf, rf = case.time_fields, case.row_fields
    # 1. one row
    if N > 1:
        for i in range(N):
            yield case.replace(**{f: np.asarray(case.inputs[f])[i:i + 1] for f in tf + rf})
        # drop one row
        for i in range(N):
            keep = [j for j in range(N) if j != i]
            yield case.replace(**{f: np.asarray(case.inputs[f])[keep] for f in tf + rf})
    # 2. halves first (cheap for failures that need a long history), then shorter
    # time windows, shortest first
    if T > 3 and tf:
        half = T // 2
        for sl in (slice(0, half), slice(T - half, T)):
            yield case.replace(**{f: np.asarray(case.inputs[f])[:, sl] for f in tf})
    if T > 1 and tf:
        for length in range(1, T):
            for start in range(0, T - length + 1):
                yield case.replace(**{f: np.asarray(case.inputs[f])[:, start:start + length]
                                      for f in tf})
    # 3. simpler numbers
    for f in tf + rf:
        a = np.asarray(case.inputs[f])
        if a.dtype.kind == "f":
            if np.any(a != 0):
                yield case.replace(**{f: np.zeros_like(a)})
            rounded = np.round(a)
            if not np.array_equal(rounded, a):
                yield case.replace(**{f: rounded})
            for idx in zip(*np.nonzero(a)):
                for v in (0.0, 1.0):
                    if a[idx] != v:
                        b = a.copy()
                        b[idx] = v
                        yield case.replace(**{f: b})
        elif a.dtype == bool:
            for idx in zip(*np.nonzero(a)):
                b = a.copy()
                b[idx] = False
                yield case.replace(**{f: b})


def shrink_case(case: Case, fails: Callable[[Case], bool], *, max_calls=3000):
    """Greedy delta-debugging: repeatedly replace ``case`` by the first smaller or
    simpler candidate on which ``fails`` is still True. Returns ``(case, calls)``.

    ``fails`` must return False (not raise) for candidates that are invalid
    inputs. derivations/verify.md#shrinking
    """
    calls = 0
    improved = True
    while improved and calls < max_calls:
        improved = False
        for cand in _candidates(case):
            calls += 1
            if calls >= max_calls:
                break
            try:
                ok = fails(cand)
            except Exception:
                ok = False
            if ok:
                case = cand
                improved = True
                break
    return case, calls


def run_cases(quantity, cases, evaluate, *, tolerance, conventions=None, departures=(),
              notes=(), shrink=True, to_user_layout=None):
    """Run ``evaluate(case) -> (expected, outcome)`` on every case; shrink the first failure.

    ``evaluate`` returns the reference output and the user's ``Outcome``;
    ``tolerance = (rtol, atol)``. ``to_user_layout(case) -> dict`` renders the
    counterexample as the user's function received it. derivations/verify.md#how-a-verifier-works
    """
    rtol, atol = tolerance
    n_failed = 0
    worst_err = 0.0
    first = None
    for case in cases:
        expected, outcome = evaluate(case)
        if outcome.problem:
            n_failed += 1
            err = float("inf")
            if first is None:
                first = (case, expected, outcome, outcome.problem, ())
        else:
            ok, err, idx = compare_outputs(outcome.value, expected, rtol=rtol, atol=atol)
            if not ok:
                n_failed += 1
                if first is None:
                    first = (case, expected, outcome, "mismatch", idx)
        worst_err = max(worst_err, err)
    tol_text = f"rtol={rtol:g}, atol={atol:g}"
    if first is None:
        return VerifyReport(quantity, True, len(cases), 0, worst_err, tol_text,
                            conventions=dict(conventions or {}), departures=tuple(departures),
                            notes=tuple(notes))
    case, expected, outcome, problem, idx = first
    before = case.size()

    def fails(c):
        exp, out = evaluate(c)
        if out.problem:
            return True
        return not compare_outputs(out.value, exp, rtol=rtol, atol=atol)[0]

    shrunk_from = None
    if shrink:
        small, _ = shrink_case(case, fails)
        if small is not case:
            expected, outcome = evaluate(small)
            if outcome.problem:
                problem, idx = outcome.problem, ()
            else:
                problem = "mismatch"
                idx = compare_outputs(outcome.value, expected, rtol=rtol, atol=atol)[2]
            after = small.size()
            if after != before:
                shrunk_from = (f"(N, T) = {before} -> {after}" if case.time_fields
                               else f"N = {before[0]} -> {after[0]}")
            else:
                shrunk_from = "simplified values"
            case = small
    inputs = to_user_layout(case) if to_user_layout is not None else dict(case.inputs)
    if outcome.problem and problem == outcome.problem and outcome.value is None:
        got = None
    else:
        got = outcome.value
    return VerifyReport(quantity, False, len(cases), n_failed, worst_err, tol_text,
                        case=case.name, inputs=inputs, expected=expected, got=got,
                        problem=problem, worst_index=idx, shrunk_from=shrunk_from,
                        conventions=dict(conventions or {}), departures=tuple(departures),
                        notes=tuple(notes))


def load_callable(spec):
    """The callable named by ``"module:function"`` or ``"path/to/file.py:function"``.

    A dotted module is imported with the current directory on ``sys.path``.
    Raises ``ValueError`` with a readable message when it cannot be found.
    derivations/verify.md#the-command-line
    """
    if ":" not in spec:
        raise ValueError(f"expected module:function or file.py:function; got {spec!r}")
    target, _, name = spec.rpartition(":")
    try:
        if target.endswith(".py") or os.sep in target:
            path = Path(target).resolve()
            if not path.is_file():
                raise ValueError(f"no such file: {target}")
            mod_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[path.stem] = module
            mod_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(target)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"cannot import {target!r}: {type(exc).__name__}: {exc}") from exc
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{target!r} has no attribute {name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{spec!r} is not callable")
    return obj
