"""Layouts in which the data-level verifiers call a user's function.

The verifiers hold every case in refpg's canonical layout, batch-major
``(N, T)`` arrays in which a row may contain several episodes back to back
(derivations/returns.md#time-alignment-and-flags). Just before the call the case
is rendered in the layout the user's code expects, and the output is brought
back to ``(N, T)``; the shrinker therefore works on one representation and the
report shows the counterexample as the user's function received it.
derivations/verify_returns.md#layouts-and-calling-conventions

``"batch_major"``  ``fn(rewards=(N, T), ..., gamma=...) -> (N, T)``
``"time_major"``   ``fn(rewards=(T, N), ..., gamma=...) -> (T, N)``: the rollout
                   buffer of vectorised environments (column ``n`` is environment ``n``)
``"episodes"``     ``fn(rewards=(L,), ..., next_value=float, terminated=bool,
                   truncated=bool, gamma=...) -> (L,)``, called once per episode;
                   refpg assembles the per-episode outputs

Arguments are passed by keyword, and only those the function's signature
accepts (all of them if it takes ``**kwargs``), so a function may ignore
arrays it does not need; the report lists the ones it did not take. A function
none of whose parameter names match is called positionally in the documented
order. Inputs are NumPy float64 arrays (flags bool); a PyTorch or JAX function
converts them itself (``torch.as_tensor(x)``) and may return tensors:
``refpg.verify.core.to_numpy`` calls ``.detach().cpu().numpy()``.
"""
from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass, replace

import numpy as np

from .core import Outcome, run_cases, safe_call

__all__ = ["LAYOUTS", "episode_spans", "Binding", "bind", "call_in_layout", "render"]

#: layouts a verifier accepts for trajectory data.
LAYOUTS = ("batch_major", "time_major", "episodes")


# --------------------------------------------------------------------------- options
def _choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}")
    return value


def _float(name, value, *, allow_none=False, lo=None, hi=None):
    """A number (or a numeric string from the command line); None/"none" if allowed."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        if allow_none:
            return None
        raise ValueError(f"{name} must be a number; got {value!r}")
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number; got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a number; got {value!r}") from exc
    if not np.isfinite(x) or (lo is not None and x < lo) or (hi is not None and x > hi):
        raise ValueError(f"{name} must be a finite number in [{lo}, {hi}]; got {value!r}")
    return x


def _bool(name, value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        return False
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{name} must be True or False; got {value!r}")


def _int(name, value, *, minimum=0):
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    try:
        n = int(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an integer; got {value!r}") from exc
    if n != float(value) or n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return n


# --------------------------------------------------------------------------- episodes
def episode_spans(ends):
    """Episodes of each row as ``[(row, start, stop), ...]`` (``stop`` exclusive).

    ``ends: (N, T)`` bool, True where an episode ends after step ``t``
    (terminated or truncated); the end of a row also ends an episode (the data
    stop there). derivations/verify_returns.md#layouts-and-calling-conventions
    """
    ends = np.asarray(ends, dtype=bool)
    spans = []
    for i in range(ends.shape[0]):
        start = 0
        for t in np.flatnonzero(ends[i]):
            spans.append((i, start, int(t) + 1))
            start = int(t) + 1
        if start < ends.shape[1]:
            spans.append((i, start, ends.shape[1]))
    return spans


# --------------------------------------------------------------------------- binding
@dataclass(frozen=True)
class Binding:
    """How the user's function is called: ``names`` passed by keyword (or, with
    ``positional``, in this order), ``missing`` offered but not accepted.

    derivations/verify_returns.md#layouts-and-calling-conventions
    """

    names: tuple
    missing: tuple
    positional: bool

    def note(self, redundant=()):
        """Text for the report, or ''. ``redundant``: pairs ``(name, needs)``: do not
        mention ``name`` missing when every one of ``needs`` was passed."""
        if self.positional:
            return ("no parameter name of your function matches; called positionally as "
                    f"({', '.join(self.names)})")
        skip = {n for n, needs in redundant if all(x in self.names for x in needs)}
        missing = [m for m in self.missing if m not in skip]
        if missing:
            return "your function does not accept " + ", ".join(missing) + " (not passed)"
        return ""


def bind(fn, offered):
    """Decide which of the ``offered`` keyword names to pass to ``fn``.

    All of them if ``fn`` takes ``**kwargs`` or its signature cannot be read;
    else those among its parameter names; if none matches, all of them
    positionally (``offered`` is the documented order), as many as ``fn`` takes.
    derivations/verify_returns.md#layouts-and-calling-conventions
    """
    offered = tuple(offered)
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return Binding(offered, (), False)
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return Binding(offered, (), False)
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    names = tuple(n for n in offered if n in named)
    if names:
        return Binding(names, tuple(n for n in offered if n not in named), False)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return Binding(offered, (), True)
    return Binding(offered[:len(positional)], offered[len(positional):], True)


def _invoke(fn, binding, values, shape):
    # the user's overflow or 0/0 shows up as a non-finite output in the report; numpy's
    # floating-point warnings would only repeat it (errstate restores the state on exit)
    with np.errstate(all="ignore"):
        if binding.positional:
            out = safe_call(fn, tuple(values[n] for n in binding.names))
        else:
            out = safe_call(fn, (), {n: values[n] for n in binding.names})
    # strict shape check (safe_call would accept any size-1 output for a size-1 shape, so a
    # shape bug could shrink into a 'mismatch'); only a number may stand for shape ()
    if out.value is not None and out.value.shape != tuple(shape):
        if tuple(shape) == () and out.value.size == 1:
            return Outcome(out.value.reshape(()), out.problem)
        return Outcome(out.value, f"returned shape {out.value.shape}, expected {tuple(shape)}")
    return out


def _copy(x):
    return x.copy() if isinstance(x, np.ndarray) else x


# --------------------------------------------------------------------------- calls
def call_in_layout(fn, binding, layout, steps, scalars, *, ends=None, end_values=None,
                   lead=(), per_episode=False):
    """Call ``fn`` on one case in ``layout``; return an ``Outcome`` in the canonical layout.

    ``steps``: name -> ``(N, T)`` array (passed as ``(T, N)`` when time-major,
    sliced ``(L,)`` per episode); ``scalars``: name -> number passed as is;
    ``ends: (N, T)`` bool and ``end_values``: name -> ``(N, T)`` array whose
    entry at an episode's last step is passed as a scalar (episodes layout only).
    The expected output is ``lead + (N, T)`` (``lead + (T, N)`` time-major,
    ``lead + (L,)`` per episode; with ``per_episode`` one number per episode,
    broadcast over its steps). The user's arrays are copies: a function that
    writes into its inputs cannot corrupt the case.
    derivations/verify_returns.md#layouts-and-calling-conventions
    """
    first = next(iter(steps.values()))
    N, T = first.shape
    lead = tuple(lead)
    if layout == "batch_major":
        values = {k: v.copy() for k, v in steps.items()}
        values.update({k: _copy(v) for k, v in scalars.items()})
        return _invoke(fn, binding, values, lead + (N, T))
    if layout == "time_major":
        values = {k: np.array(v.T, order="C") for k, v in steps.items()}
        values.update({k: _copy(v) for k, v in scalars.items()})
        out = _invoke(fn, binding, values, lead + (T, N))
        if out.value is None:
            return out
        return Outcome(np.swapaxes(out.value, -1, -2) if out.value.ndim >= 2 else out.value,
                       out.problem)
    if layout != "episodes":
        raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")
    result = np.zeros(lead + (N, T))
    end_values = end_values or {}
    for k, (i, a, b) in enumerate(episode_spans(ends)):
        values = {name: v[i, a:b].copy() for name, v in steps.items()}
        for name, v in end_values.items():
            x = v[i, b - 1]
            values[name] = bool(x) if v.dtype == bool else float(x)
        values.update({n: _copy(v) for n, v in scalars.items()})
        shape = lead if per_episode else lead + (b - a,)
        out = _invoke(fn, binding, values, shape)
        if out.problem:
            return Outcome(out.value, f"on episode {k} (row {i}, steps {a}..{b - 1}): "
                                      f"{out.problem}")
        if per_episode:
            result[..., i, a:b] = out.value[..., None]
        else:
            result[..., i, a:b] = out.value
    return Outcome(result)


def render(layout, steps, scalars, *, ends=None, end_values=None):
    """The inputs of one case as the user's function received them (for the report).

    derivations/verify_returns.md#layouts-and-calling-conventions
    """
    if layout == "batch_major":
        return {**{k: v.copy() for k, v in steps.items()}, **scalars}
    if layout == "time_major":
        return {**{k: np.array(v.T, order="C") for k, v in steps.items()}, **scalars}
    out = {}
    end_values = end_values or {}
    for k, (i, a, b) in enumerate(episode_spans(ends)):
        ep = {name: v[i, a:b].copy() for name, v in steps.items()}
        for name, v in end_values.items():
            ep[name] = bool(v[i, b - 1]) if v.dtype == bool else float(v[i, b - 1])
        out[f"episode {k} (row {i}, steps {a}..{b - 1})"] = ep
    out.update(scalars)
    return out


def _run_cases(*args, **kwargs):
    """``refpg.verify.core.run_cases`` without numpy's floating-point warnings: an
    error ratio that overflows (a user output of 1e304) is still an inf, i.e. a failure."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return run_cases(*args, **kwargs)


def _in_user_layout(report, layout):
    """Show ``expected`` / ``got`` of a time-major report as ``(T, N)``, like its inputs."""
    if report.passed or layout != "time_major":
        return report

    def swap(x):
        x = None if x is None else np.asarray(x)
        return x if x is None or x.ndim < 2 else np.swapaxes(x, -1, -2)
    idx = tuple(report.worst_index)
    if len(idx) >= 2:
        idx = idx[:-2] + (idx[-1], idx[-2])
    return replace(report, expected=swap(report.expected), got=swap(report.got), worst_index=idx)
