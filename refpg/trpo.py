"""The TRPO step: CG on Fisher-vector products, step length, line search (SCOPE N9).

One step from ``theta_old`` (Schulman et al. 2015, Appendix C; derivations/trpo.md):

    g = grad_theta L(theta)|_{theta_old}                                        (T1)
    x ~= (F + lam I)^{-1} g             (conjugate gradient, refpg.cg)          (T2)
    beta = sqrt(2 delta / x^T F x)       so that 1/2 (beta x)^T F (beta x) = delta (T3)
    expected improvement = g^T (beta x)  (linear model of L)                    (T4)
    theta_new = backtracking line search along beta x (refpg.linesearch)        (T5)

``F`` is the Hessian of ``KL_mean`` at ``theta_old`` (the Fisher matrix), so
``1/2 s^T F s`` is the second-order model of ``KL_mean(theta_old + s)`` (N2 of
derivations/natural.md). Two modes: *exact* (``g`` the exact policy gradient,
``F v`` the exact Fisher-vector product, ``L`` the exact local approximation
and ``KL_mean`` the exact average KL over ``d_pi_old``, refpg.natural and
refpg.identities) and *sampled* (everything from a ``SampledSurrogate``).

Every convention peers differ on is an option of ``TRPOConfig`` with the
mathematics of CONVENTIONS.md as default (derivations/trpo.md#conventions-and-peer-options).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .cg import CGResult, conjugate_gradient
from .evaluation import evaluate
from .identities import advantage_gain
from .linesearch import AcceptanceRule, LineSearchResult, backtracking_line_search
from .mdp import FiniteMDP
from .natural import kl_mean
from .policies.base import SoftmaxPolicy
from .policy_gradient import exact_policy_gradient, policy_table
from .surrogate import SampledSurrogate
from .validation import as_float_array, check_positive_float, check_positive_int, check_rng

__all__ = ["TRPOConfig", "TRPOStep", "trpo_step", "trpo_step_exact", "trpo_step_sampled",
           "exact_kl_mean"]

_METRICS = ("fisher", "damped_fisher", "gradient")


@dataclass(frozen=True)
class TRPOConfig:
    """Every knob of a TRPO step; defaults are refpg's mathematics (CONVENTIONS.md).

    ``max_kl`` (delta); ``damping`` (lam in (T2); peers 1e-5..0.1);
    ``cg_max_iter`` (None: ``10 d``; peers 10 or 15), ``cg_rtol``,
    ``cg_atol`` (rule (CG2)), ``cg_x0`` ``"zeros"`` or ``"random"``
    (``cg_x0_scale * N(0, I)`` from the step's ``rng``; sb3-contrib 1e-4);
    ``step_metric`` for (T3): ``"fisher"`` (``x^T F x``, default),
    ``"damped_fisher"`` (``x^T (F + lam I) x``: sb3-contrib, spinningup,
    baselines, modular_rl, pfrl, tianshou) or ``"gradient"`` (``g^T x``, as
    spinningup's docs and mjrl write it); ``step_eps`` added to the
    denominator (rllab/garage/pfrl 1e-8, spinningup EPS; default 0);
    ``line_search`` (False: take the full step unchecked, spinningup's
    ``algo='npg'``); ``shrink``, ``max_backtracks``, ``acceptance``
    (``AcceptanceRule``), ``on_failure`` (refpg.linesearch);
    ``kl_direction`` of the line-search KL: ``"old_new"`` = KL(pi_old || pi_new)
    (default) or ``"new_old"`` (sb3-contrib; the Hessian at theta_old, hence
    the step, is the same); ``fvp_stride`` (sampled mode: use every k-th
    sampled state in the Fisher-vector product; baselines uses 5).
    derivations/trpo.md#conventions-and-peer-options
    """

    max_kl: float = 0.01
    damping: float = 0.0
    cg_max_iter: int | None = None
    cg_rtol: float = 1e-10
    cg_atol: float = 0.0
    cg_x0: str = "zeros"
    cg_x0_scale: float = 1e-4
    step_metric: str = "fisher"
    step_eps: float = 0.0
    line_search: bool = True
    shrink: float = 0.5
    max_backtracks: int = 10
    acceptance: AcceptanceRule = field(default_factory=AcceptanceRule)
    on_failure: str = "revert"
    kl_direction: str = "old_new"
    fvp_stride: int = 1

    def __post_init__(self):
        check_positive_float("max_kl", self.max_kl)
        check_positive_float("damping", self.damping, strict=False)
        check_positive_float("step_eps", self.step_eps, strict=False)
        check_positive_float("cg_x0_scale", self.cg_x0_scale, strict=False)
        check_positive_float("cg_rtol", self.cg_rtol, strict=False)
        check_positive_float("cg_atol", self.cg_atol, strict=False)
        if not isinstance(self.line_search, (bool, np.bool_)):
            raise TypeError(f"line_search must be True or False; got {self.line_search!r}")
        if self.cg_max_iter is not None:
            check_positive_int("cg_max_iter", self.cg_max_iter, minimum=0)
        if self.cg_x0 not in ("zeros", "random"):
            raise ValueError(f"cg_x0 must be 'zeros' or 'random'; got {self.cg_x0!r}")
        if self.step_metric not in _METRICS:
            raise ValueError(f"step_metric must be one of {list(_METRICS)}; "
                             f"got {self.step_metric!r}")
        if self.kl_direction not in ("old_new", "new_old"):
            raise ValueError(f"kl_direction must be 'old_new' or 'new_old'; "
                             f"got {self.kl_direction!r}")
        if not isinstance(self.acceptance, AcceptanceRule):
            raise TypeError(f"acceptance must be an AcceptanceRule; got "
                            f"{type(self.acceptance).__name__}")
        if not (0.0 < check_positive_float("shrink", self.shrink) < 1.0):
            raise ValueError(f"shrink must lie in (0, 1); got {self.shrink!r}")
        check_positive_int("max_backtracks", self.max_backtracks, minimum=0)
        check_positive_int("fvp_stride", self.fvp_stride)
        if self.on_failure not in ("revert", "keep_last"):
            raise ValueError(f"on_failure must be 'revert' or 'keep_last'; "
                             f"got {self.on_failure!r}")


@dataclass(frozen=True)
class TRPOStep:
    """Outcome of one TRPO step (T1)-(T5).

    ``theta: (d,)`` the new parameters (``theta_old`` unchanged if rejected);
    ``accepted``; ``gradient`` ``g: (d,)``; ``direction`` ``x: (d,)`` (CG);
    ``cg: CGResult``; ``step_length`` ``beta`` (0.0 if no step);
    ``full_step = beta x``; ``quadratic_kl = 1/2 (beta x)^T F (beta x)``
    (equals ``max_kl`` with the default metric); ``expected_improvement``
    (T4) of the full step; ``line_search: LineSearchResult`` (None when the
    line search is off or no step was possible); ``step_fraction``;
    ``kl`` and ``improvement`` of the returned parameters as measured by the
    step's own divergence and surrogate; ``mode`` ``"exact"`` or
    ``"sampled"``; ``reason``; ``config``.
    derivations/trpo.md#the-step
    """

    theta: np.ndarray
    accepted: bool
    gradient: np.ndarray
    direction: np.ndarray
    cg: CGResult | None
    step_length: float
    full_step: np.ndarray
    quadratic_kl: float
    expected_improvement: float
    line_search: LineSearchResult | None
    step_fraction: float
    kl: float
    improvement: float
    mode: str
    reason: str
    config: TRPOConfig


def trpo_step(theta_old, gradient, fvp, surrogate, kl, config=TRPOConfig(), *, rng=None,
              mode="custom"):
    """One TRPO step (T1)-(T5) from callables; returns ``TRPOStep``.

    ``theta_old, gradient: (d,)``; ``fvp(v) -> F v`` (undamped; the damping of
    ``config`` is added here); ``surrogate(theta) -> float`` to maximise;
    ``kl(theta) -> float`` the divergence the line search checks. ``rng`` is
    needed only for ``config.cg_x0 == "random"``. No step is taken (and the
    record says why) if ``g = 0`` or the step-length denominator is not > 0;
    nothing is ever divided by zero. derivations/trpo.md#the-step
    """
    if not isinstance(config, TRPOConfig):
        raise TypeError(f"config must be a TRPOConfig; got {type(config).__name__}")
    theta_old = as_float_array("theta_old", theta_old, ndim=1)
    g = as_float_array("gradient", gradient, shape=theta_old.shape)
    d = theta_old.size
    zero = np.zeros(d)

    def no_step(reason, cg=None, x=zero):
        return TRPOStep(theta=theta_old.copy(), accepted=False, gradient=g, direction=x,
                        cg=cg, step_length=0.0, full_step=zero.copy(), quadratic_kl=0.0,
                        expected_improvement=0.0, line_search=None, step_fraction=0.0,
                        kl=0.0, improvement=0.0, mode=mode, reason=reason, config=config)

    if not np.any(g != 0.0):
        return no_step("gradient is exactly zero: no ascent direction")
    x0 = None
    if config.cg_x0 == "random":
        check_rng(rng)
        x0 = config.cg_x0_scale * rng.standard_normal(d)
    cg = conjugate_gradient(fvp, g, damping=config.damping, x0=x0,
                            max_iter=config.cg_max_iter, rtol=config.cg_rtol,
                            atol=config.cg_atol)
    x = cg.x
    # (T3) on x / s, s the power of two just above max|x|: every quantity below scales
    # exactly by a power of two (bit-identical to the unscaled formulas in the normal
    # range), and x^T F x can neither overflow nor underflow whatever the scale of g
    xmax = float(np.max(np.abs(x)))
    s = float(np.ldexp(1.0, int(np.frexp(xmax)[1]))) if 0.0 < xmax < np.inf else 1.0
    xs = x / s
    Fxs = np.asarray(fvp(xs), dtype=float)
    xFx_s = float(xs @ Fxs)                        # x^T F x / s^2
    if config.step_metric == "fisher":
        denom_s = xFx_s
    elif config.step_metric == "damped_fisher":
        denom_s = xFx_s + config.damping * float(xs @ xs)
    else:
        denom_s = float(g @ xs) / s
    denom_s += config.step_eps / s / s             # inf when step_eps dwarfs x^T F x
    if not (denom_s > 0.0 and math.isfinite(denom_s)):
        return no_step(f"step-length denominator {denom_s * s * s!r} is not > 0 "
                       f"({config.step_metric} metric): no step", cg, x)
    beta_s = math.sqrt(2.0 * config.max_kl / denom_s)      # beta * s
    beta = beta_s / s
    full = beta_s * xs
    quad = 0.5 * beta_s * beta_s * xFx_s
    expected = float(g @ full)
    if not config.line_search:
        theta = theta_old + full
        return TRPOStep(theta=theta, accepted=True, gradient=g, direction=x, cg=cg,
                        step_length=beta, full_step=full, quadratic_kl=quad,
                        expected_improvement=expected, line_search=None, step_fraction=1.0,
                        kl=float(kl(theta)), improvement=float(surrogate(theta))
                        - float(surrogate(theta_old)), mode=mode,
                        reason="full step taken without line search", config=config)
    ls = backtracking_line_search(theta_old, full, surrogate, kl, max_kl=config.max_kl,
                                  shrink=config.shrink, max_backtracks=config.max_backtracks,
                                  expected_improvement=expected, rule=config.acceptance,
                                  on_failure=config.on_failure)
    return TRPOStep(theta=ls.theta, accepted=ls.accepted, gradient=g, direction=x, cg=cg,
                    step_length=beta, full_step=full, quadratic_kl=quad,
                    expected_improvement=expected, line_search=ls,
                    step_fraction=ls.step_fraction, kl=ls.kl, improvement=ls.improvement,
                    mode=mode, reason=ls.reason, config=config)


def exact_kl_mean(mdp, policy, theta_old, theta_new, direction="old_new"):
    """``sum_s d_old(s) KL(pi_old(.|s) || pi_new(.|s))`` (``"old_new"``, refpg.natural.kl_mean)
    or ``sum_s d_old(s) KL(pi_new(.|s) || pi_old(.|s))`` (``"new_old"``), ``s ~ d_pi_old``.

    derivations/trpo.md#conventions-and-peer-options
    """
    if direction == "old_new":
        return kl_mean(mdp, policy, theta_old, theta_new)
    if direction != "new_old":
        raise ValueError(f"direction must be 'old_new' or 'new_old'; got {direction!r}")
    d_old = evaluate(mdp, policy_table(mdp, policy, theta_old)).d
    return d_old @ policy.kl(theta_new, theta_old, np.arange(mdp.n_states))


def trpo_step_exact(mdp, policy, theta_old, config=TRPOConfig(), *, rng=None):
    """Exact-mode TRPO step: (T1) ``g = grad eta`` (PG1), ``F v`` the exact Fisher-vector
    product (N1 of refpg.natural), ``L`` the exact local approximation (I4 of
    refpg.identities), KL the exact ``KL_mean`` over ``d_pi_old`` (N2). The
    evaluation of ``pi_old`` (``d``, ``rho``, ``A``, ``eta``) is done once per
    step; tests check each closure against refpg.natural / refpg.identities.
    The line search evaluates ``L - eta(pi_old)`` (the A form, ~0 at
    ``theta_old``), so improvements far below ``eps |eta|`` are resolved; its
    ``surrogate_old`` is therefore ~0, not ``eta``.
    Returns ``TRPOStep`` (``mode="exact"``).

    ``KL_mean(theta_old, theta_new) <= max_kl`` holds exactly for an accepted step
    (default acceptance rule). derivations/trpo.md#exact-mode
    """
    if not isinstance(mdp, FiniteMDP):
        raise TypeError(f"mdp must be a FiniteMDP; got {type(mdp).__name__}")
    if not isinstance(policy, SoftmaxPolicy):
        raise TypeError(f"policy must be a SoftmaxPolicy; got {type(policy).__name__}")
    theta_old = policy.check_theta(theta_old, "theta_old")
    if np.iscomplexobj(theta_old):
        raise TypeError("trpo_step_exact needs a real theta_old")
    g = exact_policy_gradient(mdp, policy, theta_old)
    pi_old = policy_table(mdp, policy, theta_old)
    ev = evaluate(mdp, pi_old)                                     # computed once per step
    d_old = np.asarray(ev.d, dtype=float)
    states = np.arange(mdp.n_states)

    def fvp(v):   # = refpg.natural.exact_fisher_vector_product with d_old computed once
        return policy.fisher_vector_product(theta_old, v, states, weights=d_old)

    def surrogate(theta):   # = refpg.identities.local_approximation_params (I4) - eta_old
        # L - eta in the A form, exactly 0 at theta_old: the line search's improvement is
        # then not swamped by the rounding of eta, nor by that of sum_a pi A (= 0)
        return float(advantage_gain(ev, pi_old, policy.probs_table(theta)))

    def kl(theta):   # = exact_kl_mean(mdp, policy, theta_old, theta, config.kl_direction)
        if config.kl_direction == "old_new":
            return float(d_old @ policy.kl(theta_old, theta, states))
        return float(d_old @ policy.kl(theta, theta_old, states))
    return trpo_step(theta_old, g, fvp, surrogate, kl, config, rng=rng, mode="exact")


def trpo_step_sampled(surrogate, config=TRPOConfig(), *, rng=None):
    """Sampled-mode TRPO step on a ``SampledSurrogate`` (single path or vine).

    (T1) ``g`` = gradient of the sampled surrogate at ``theta_old``; ``F^ v``
    its average-KL Hessian-vector product (S5) (every ``fvp_stride``-th
    state weight kept, renormalised); line search on the sampled surrogate and
    the sampled KL in ``config.kl_direction``. An accepted step satisfies
    the sampled KL bound. Returns ``TRPOStep`` (``mode="sampled"``).
    derivations/trpo.md#sampled-mode
    """
    if not isinstance(surrogate, SampledSurrogate):
        raise TypeError(f"surrogate must be a SampledSurrogate; got {type(surrogate).__name__}")
    if surrogate.kl_direction != config.kl_direction:
        surrogate = replace(surrogate, kl_direction=config.kl_direction)
    theta_old = surrogate.theta_old
    g = np.asarray(surrogate.gradient(theta_old), dtype=float)
    fvp_sur = surrogate if config.fvp_stride == 1 else surrogate.subsample_kl(config.fvp_stride)

    def fvp(v):
        return fvp_sur.fisher_vector_product(v)

    def value(theta):
        return float(surrogate.value(theta))

    def kl(theta):
        return float(surrogate.kl(theta))

    return trpo_step(theta_old, g, fvp, value, kl, config, rng=rng, mode="sampled")
