"""Backtracking line search for a trust-region step (SCOPE N9).

Given ``theta_old``, a full step ``s`` (the TRPO step ``beta x``), a surrogate
``L(theta)`` to maximise and a divergence ``D(theta)`` (the sampled or exact
``KL_mean``), try the fractions ``f_k = shrink^k``, ``k = 0..max_backtracks``
(derivations/linesearch.md):

    theta_k = theta_old + f_k s,   improvement_k = L(theta_k) - L(theta_old)      (LS1)
    accept the first k with   D(theta_k) <= slack * delta   AND   improvement_k > 0 (LS2)
    if none is accepted, return theta_old UNCHANGED (step fraction 0)            (LS3)

(LS2) is written as ``kl <= max_kl and improvement > 0`` so that NaN rejects
(``not (kl > max_kl)`` would accept NaN); infinities reject too. Peer rules
(strict ``<``, ``>= 0``, the 1.5 delta slack of baselines, the
actual/expected-ratio rule of modular_rl without a KL check, keeping the last
trial on failure as garage's ``accept_violation``) are options of
``AcceptanceRule`` and ``backtracking_line_search``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .validation import as_float_array, check_positive_float, check_positive_int

__all__ = ["AcceptanceRule", "LineSearchTrial", "LineSearchResult", "backtracking_line_search"]

_KL_CMP = {"le": "<=", "lt": "<"}
_IMP_CMP = {"gt": ">", "ge": ">=", "none": "(not checked)"}


@dataclass(frozen=True)
class AcceptanceRule:
    """When a trial step is accepted (LS2); defaults are refpg's (CONVENTIONS.md).

    ``check_kl`` (False: modular_rl, ikostrikov); ``kl_comparison`` ``"le"``
    (``kl <= slack delta``; rllab, garage, spinningup, baselines, pfrl) or ``"lt"``
    (sb3-contrib, tianshou); ``kl_slack`` (1.5 in baselines);
    ``improvement_comparison`` ``"gt"`` (``> 0``), ``"ge"`` (``>= 0``: baselines,
    pfrl, spinningup) or ``"none"``; ``min_improvement_ratio`` (0.1 in
    modular_rl: also require ``improvement / expected > ratio`` with
    ``expected = f_k g.s > 0``). Every comparison is written so NaN rejects: a
    non-finite improvement always rejects, a non-finite KL whenever the KL is
    checked (with ``check_kl=False`` the KL is not looked at, as in the peers that
    rule copies). derivations/linesearch.md#acceptance-rules
    """

    check_kl: bool = True
    kl_comparison: str = "le"
    kl_slack: float = 1.0
    improvement_comparison: str = "gt"
    min_improvement_ratio: float | None = None

    def __post_init__(self):
        if self.kl_comparison not in _KL_CMP:
            raise ValueError(f"kl_comparison must be one of {sorted(_KL_CMP)}; "
                             f"got {self.kl_comparison!r}")
        if self.improvement_comparison not in _IMP_CMP:
            raise ValueError(f"improvement_comparison must be one of {sorted(_IMP_CMP)}; "
                             f"got {self.improvement_comparison!r}")
        check_positive_float("kl_slack", self.kl_slack)
        if self.min_improvement_ratio is not None:
            r = float(self.min_improvement_ratio)
            if not np.isfinite(r):
                raise ValueError(f"min_improvement_ratio must be finite; got {r!r}")
        if not (self.check_kl or self.improvement_comparison != "none"
                or self.min_improvement_ratio is not None):
            raise ValueError("an AcceptanceRule that checks nothing accepts every step; "
                             "use line_search=False in the TRPO options for that")

    def decide(self, kl, improvement, max_kl, expected=None):
        """``(accepted, reason)`` for one trial (LS2). derivations/linesearch.md#acceptance-rules"""
        kl, improvement = float(kl), float(improvement)
        if not math.isfinite(improvement):
            return False, f"improvement {improvement} is not finite"
        if self.check_kl:
            if not math.isfinite(kl):
                return False, f"KL {kl} is not finite"
            bound = self.kl_slack * max_kl
            ok = kl <= bound if self.kl_comparison == "le" else kl < bound
            if not ok:
                return False, f"KL {kl:.6e} violates KL {_KL_CMP[self.kl_comparison]} {bound:.6e}"
        if self.improvement_comparison == "gt" and not improvement > 0.0:
            return False, f"improvement {improvement:.6e} is not > 0"
        if self.improvement_comparison == "ge" and not improvement >= 0.0:
            return False, f"improvement {improvement:.6e} is not >= 0"
        if self.min_improvement_ratio is not None:
            if expected is None or not (math.isfinite(expected) and expected > 0.0):
                return False, f"expected improvement {expected} is not > 0: ratio undefined"
            ratio = improvement / expected
            if not ratio > self.min_improvement_ratio:
                return False, (f"improvement / expected = {ratio:.4f} is not > "
                               f"{self.min_improvement_ratio}")
        return True, "accepted"


@dataclass(frozen=True)
class LineSearchTrial:
    """One tried fraction: ``step_fraction = shrink^k``, ``kl``, ``improvement``,
    ``expected_improvement`` (``f_k g.s`` or None), ``accepted``, ``reason``.
    derivations/linesearch.md#the-search"""

    step_fraction: float
    kl: float
    improvement: float
    expected_improvement: float | None
    accepted: bool
    reason: str


@dataclass(frozen=True)
class LineSearchResult:
    """Outcome of ``backtracking_line_search`` (LS1)-(LS3).

    ``theta: (d,)`` the new parameters, or a copy of ``theta_old`` UNCHANGED
    when nothing was accepted (``on_failure="revert"``); ``step_fraction`` of
    the returned parameters (0.0 when reverted); ``n_backtracks`` shrinks
    before acceptance (``max_backtracks`` when none accepted); ``kl`` and
    ``improvement`` of the returned parameters (0.0 when reverted);
    ``accepted``; ``expected_improvement`` of the full step (or None);
    ``surrogate_old = L(theta_old)``; ``trials`` every trial in order;
    ``reason`` in words. derivations/linesearch.md#the-search
    """

    theta: np.ndarray
    step_fraction: float
    n_backtracks: int
    kl: float
    improvement: float
    accepted: bool
    expected_improvement: float | None
    surrogate_old: float
    trials: tuple
    reason: str


def _scalar(name, value):
    v = np.asarray(value)
    if v.shape != () or v.dtype.kind not in "fiu":
        raise TypeError(f"{name} must return a real scalar; got {value!r}")
    return float(v)


def backtracking_line_search(theta_old, full_step, surrogate, kl, *, max_kl, shrink=0.5,
                             max_backtracks=10, expected_improvement=None,
                             rule=AcceptanceRule(), on_failure="revert"):
    """Backtracking line search (LS1)-(LS3) along ``full_step``; returns ``LineSearchResult``.

    ``theta_old, full_step: (d,)``; ``surrogate(theta) -> float`` the objective
    to maximise; ``kl(theta) -> float`` the divergence from ``theta_old`` (pass
    the direction you mean: refpg's is ``KL(pi_old || pi_theta)``);
    ``max_kl = delta > 0``; fractions ``shrink^k``, ``k = 0..max_backtracks``
    (``max_backtracks + 1`` trials: peers' ``for k in range(10)`` is
    ``max_backtracks=9``); ``expected_improvement`` of the full step (``g.s``,
    needed by ``rule.min_improvement_ratio``); ``on_failure`` ``"revert"``
    (return ``theta_old`` unchanged) or ``"keep_last"`` (return the last trial,
    still ``accepted=False``; garage ``accept_violation``).
    derivations/linesearch.md#the-search
    """
    theta_old = as_float_array("theta_old", theta_old, ndim=1)
    full_step = as_float_array("full_step", full_step, shape=theta_old.shape)
    max_kl = check_positive_float("max_kl", max_kl)
    shrink = float(shrink)
    if not (0.0 < shrink < 1.0):
        raise ValueError(f"shrink must lie in (0, 1); got {shrink!r}")
    max_backtracks = check_positive_int("max_backtracks", max_backtracks, minimum=0)
    if not isinstance(rule, AcceptanceRule):
        raise TypeError(f"rule must be an AcceptanceRule; got {type(rule).__name__}")
    if on_failure not in ("revert", "keep_last"):
        raise ValueError(f"on_failure must be 'revert' or 'keep_last'; got {on_failure!r}")
    if expected_improvement is not None:
        expected_improvement = float(expected_improvement)
    L0 = _scalar("surrogate", surrogate(theta_old))
    if not math.isfinite(L0):
        raise ValueError(f"surrogate(theta_old) = {L0} is not finite")
    trials = []
    for k in range(max_backtracks + 1):
        frac = shrink ** k
        theta = theta_old + frac * full_step
        improvement = _scalar("surrogate", surrogate(theta)) - L0
        div = _scalar("kl", kl(theta))
        exp_k = None if expected_improvement is None else frac * expected_improvement
        ok, why = rule.decide(div, improvement, max_kl, exp_k)
        trials.append(LineSearchTrial(frac, div, improvement, exp_k, ok, why))
        if ok:
            return LineSearchResult(theta=theta, step_fraction=frac, n_backtracks=k, kl=div,
                                    improvement=improvement, accepted=True,
                                    expected_improvement=expected_improvement,
                                    surrogate_old=L0, trials=tuple(trials),
                                    reason=f"accepted after {k} backtrack(s)")
    last = trials[-1]
    why = f"no fraction accepted in {max_backtracks + 1} trial(s); last: {last.reason}"
    if on_failure == "keep_last":
        return LineSearchResult(theta=theta_old + last.step_fraction * full_step,
                                step_fraction=last.step_fraction, n_backtracks=max_backtracks,
                                kl=last.kl, improvement=last.improvement, accepted=False,
                                expected_improvement=expected_improvement, surrogate_old=L0,
                                trials=tuple(trials), reason=why + "; kept the last trial")
    return LineSearchResult(theta=theta_old.copy(), step_fraction=0.0,
                            n_backtracks=max_backtracks, kl=0.0, improvement=0.0,
                            accepted=False, expected_improvement=expected_improvement,
                            surrogate_old=L0, trials=tuple(trials),
                            reason=why + "; returned theta_old unchanged")
