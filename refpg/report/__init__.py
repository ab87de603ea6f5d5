"""``refpg report``: every identity and gradient check on the built-in models.

Each section module ``refpg.report.<name>`` defines ``checks() -> list[Check]``
comparing two independent routes to one quantity. ``run_report`` runs the
sections (an exception inside a section becomes a failed row, never a crash)
and ``format_table`` prints quantity, route 1, route 2, max error, tolerance
and pass/fail. The library itself never writes files; the command line prints.
"""
from __future__ import annotations

import importlib
import time
import traceback
from dataclasses import dataclass

import numpy as np

__all__ = ["Check", "compare", "SECTIONS", "run_report", "format_table"]

#: section name -> module, in the order of the derivations.
SECTIONS = {
    "models": "refpg.report.models",
    "lq": "refpg.report.lq",
    "policies": "refpg.report.policies",
    "returns": "refpg.report.returns",
    "estimators": "refpg.report.estimators",
    "natural": "refpg.report.natural",
    "trpo": "refpg.report.trpo",
}


@dataclass(frozen=True)
class Check:
    """One row: ``quantity`` computed by ``route1`` and ``route2``.

    ``max_error`` is ``max |route1 - route2|`` (absolute, or relative to
    ``max |route2|`` when ``relative``); ``passed`` iff ``max_error <= tolerance``
    (NaN fails). ``note`` carries extra information (slack of a bound, a variance).
    """

    section: str
    quantity: str
    route1: str
    route2: str
    max_error: float
    tolerance: float
    passed: bool
    note: str = ""


def compare(section, quantity, route1, route2, value1, value2, tolerance, *,
            relative=False, note=""):
    """Build a ``Check`` from two arrays computed by independent routes."""
    a = np.asarray(value1)
    b = np.asarray(value2)
    if a.shape != b.shape:
        return Check(section, quantity, route1, route2, float("inf"), tolerance, False,
                     f"shape {a.shape} vs {b.shape}")
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    if relative:
        err = err / max(float(np.max(np.abs(b))) if b.size else 0.0, np.finfo(float).tiny)
    passed = bool(err <= tolerance)  # NaN -> False
    return Check(section, quantity, route1, route2, err, tolerance, passed, note)


def run_report(sections=None):
    """Run the named sections (default: all) and return ``(checks, seconds)``."""
    names = list(SECTIONS) if sections is None else list(sections)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown report section(s) {unknown}; choose from {list(SECTIONS)}")
    out = []
    t0 = time.perf_counter()
    for name in names:
        try:
            module = importlib.import_module(SECTIONS[name])
            out.extend(module.checks())
        except Exception as exc:  # a broken section is a failed row, not a crash
            tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
            out.append(Check(name, f"section {name!r} raised", "-", "-", float("nan"), 0.0,
                             False, f"{type(exc).__name__}: {exc} ({tb})"))
    return out, time.perf_counter() - t0


def format_table(checks, *, width=None):
    """A plain-text table, one row per check, grouped by section."""
    head = ("quantity", "route 1", "route 2", "max error", "tol", "result")
    rows = []
    for c in checks:
        rows.append((c.section, c.quantity, c.route1, c.route2, f"{c.max_error:.2e}",
                     f"{c.tolerance:.0e}", "pass" if c.passed else "FAIL", c.note))
    widths = [max([len(h)] + [len(r[i + 1]) for r in rows]) for i, h in enumerate(head)]
    widths = [min(w, 48) for w in widths]

    def fit(text, w):
        return text if len(text) <= w else text[: w - 1] + "~"

    lines = []
    current = None
    for r in rows:
        if r[0] != current:
            current = r[0]
            lines.append("")
            lines.append(f"== {current} ==")
            lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)))
        lines.append("  ".join(fit(v, w).ljust(w) for v, w in zip(r[1:7], widths)))
        if r[7]:
            lines.append("    " + r[7])
    n_fail = sum(not c.passed for c in checks)
    lines.append("")
    lines.append(f"{len(checks)} checks, {len(checks) - n_fail} passed, {n_fail} failed")
    return "\n".join(lines)
