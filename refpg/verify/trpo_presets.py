"""Named TRPO step presets: each peer's conventions as a ``TRPOConfig`` (SCOPE V2).

A preset is refpg's TRPO step (``refpg.trpo.trpo_step``, equations (T1)-(T5) of
derivations/trpo.md) with the knobs a peer library hard-codes or defaults to,
read from the peer's source (PEER-CONVENTIONS.md names the files). ``"refpg"``
is the mathematics of CONVENTIONS.md. Every preset lists

* where it departs from CONVENTIONS.md (computed by ``config_departures`` from
  the configuration itself, so overridden knobs are covered too) and
* what the peer does that a ``TRPOConfig`` cannot express (``not_modeled``),
  with the condition under which it matters.

``preset_step`` runs the step of a preset on the logits-level calling
convention of the verifier (a tabular softmax over ``(S, A)`` logits and ``M``
samples). derivations/verify_trpo.md#presets
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ..distributions import _categorical_entropy, log_softmax
from ..linesearch import AcceptanceRule
from ..policies.tabular import TabularSoftmaxPolicy
from ..surrogate import SampledSurrogate
from ..trpo import TRPOConfig, trpo_step
from ..validation import as_float_array, as_index_array, check_positive_float

__all__ = ["Preset", "preset_names", "get_preset", "config_departures", "preset_step"]

_REFPG = TRPOConfig()
_RULE_FIELDS = tuple(f.name for f in fields(AcceptanceRule))
_CONFIG_FIELDS = tuple(f.name for f in fields(TRPOConfig) if f.name != "acceptance")


@dataclass(frozen=True)
class Preset:
    """A peer's TRPO step: ``config`` (``TRPOConfig``), ``entropy_coef`` (entropy bonus
    ``c mean_j H(pi(.|s_j))`` added to the surrogate, pfrl 0.01), ``source`` (the
    peer files it was read from), ``not_modeled`` (peer behaviour outside the
    configuration, with when it matters). derivations/verify_trpo.md#presets
    """

    name: str
    config: TRPOConfig
    entropy_coef: float = 0.0
    source: str = ""
    not_modeled: tuple = ()

    @property
    def departures(self):
        """Where the preset departs from CONVENTIONS.md (``config_departures``)."""
        return config_departures(self.config, self.entropy_coef)

    def with_options(self, **overrides):
        """A copy with ``TRPOConfig`` / ``AcceptanceRule`` fields or ``entropy_coef``
        replaced (``None`` values are ignored). derivations/verify_trpo.md#presets"""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        rule = {k: overrides.pop(k) for k in list(overrides) if k in _RULE_FIELDS}
        ent = overrides.pop("entropy_coef", self.entropy_coef)
        unknown = sorted(set(overrides) - set(_CONFIG_FIELDS))
        if unknown:
            raise ValueError(f"unknown TRPO option(s) {unknown}; choose from "
                             f"{sorted(_CONFIG_FIELDS + _RULE_FIELDS + ('entropy_coef',))}")
        cfg = replace(self.config, acceptance=replace(self.config.acceptance, **rule),
                      **overrides)
        check_positive_float("entropy_coef", ent, strict=False)
        changed = bool(rule or overrides or ent != self.entropy_coef)
        return replace(self, config=cfg, entropy_coef=float(ent),
                       name=self.name + (" (modified)" if changed else ""))


def _rule(**kw):
    return AcceptanceRule(**kw)


def _presets(distribution):
    gauss = distribution == "gaussian"
    atol_rr = 1e-5          # peers stop on r.r < 1e-10: ||r|| < 1e-5 (derivations/cg.md)
    after = ("CG checks r.r < tol after each update (refpg checks before each iteration): "
             "differs only when ||g||^2 < tol, where the peer still does one iteration")
    return {
        "refpg": Preset("refpg", TRPOConfig(), 0.0, "CONVENTIONS.md, derivations/trpo.md"),
        "sb3-contrib": Preset(
            "sb3-contrib",
            TRPOConfig(max_kl=0.01, damping=0.1, cg_max_iter=15, cg_rtol=0.0, cg_atol=atol_rr,
                       cg_x0="random", cg_x0_scale=1e-4, step_metric="damped_fisher",
                       shrink=0.8, max_backtracks=9,
                       acceptance=_rule(kl_comparison="lt", improvement_comparison="gt"),
                       kl_direction="new_old"),
            0.0, "sb3_contrib/trpo/trpo.py, sb3_contrib/common/utils.py",
            ("one TRPO step per minibatch (batch_size 128 by default) and per-minibatch "
             "advantage normalisation: pass one minibatch and its normalised advantages",
             "g = 0 exactly: CG returns its random start and the step is tried along it "
             "(always rejected since the objective cannot increase); refpg takes no step: "
             "same parameters, different info")),
        "spinningup": Preset(
            "spinningup",
            TRPOConfig(max_kl=0.01, damping=0.1, cg_max_iter=10, cg_rtol=0.0, cg_atol=0.0,
                       step_metric="damped_fisher", step_eps=1e-8, shrink=0.8,
                       max_backtracks=9,
                       acceptance=_rule(kl_comparison="le", improvement_comparison="ge"),
                       kl_direction="new_old" if gauss else "old_new"),
            0.0, "spinup/algos/tf1/trpo/trpo.py, core.py",
            ("EPS = 1e-8 added to p.(H + lam I)p in CG's alpha: relative change "
             "1e-8 / p.(H + lam I)p of every alpha, visible only when ||g|| is below ~1e-3",
             "the Gaussian policies compute KL(new || old), the categorical ones "
             "KL(old || new) (spinningup#264, #443, PR #192): use distribution='gaussian'",
             "g = 0: spinningup 'accepts' the zero step; refpg reports no step")),
        "spinningup-npg": Preset(
            "spinningup-npg",
            TRPOConfig(max_kl=0.01, damping=0.1, cg_max_iter=10, cg_rtol=0.0, cg_atol=0.0,
                       step_metric="damped_fisher", step_eps=1e-8, line_search=False,
                       kl_direction="new_old" if gauss else "old_new"),
            0.0, "spinup/algos/tf1/trpo/trpo.py (algo='npg')",
            ("EPS = 1e-8 in CG's alpha (see spinningup)",)),
        "rllab": Preset(
            "rllab",
            TRPOConfig(max_kl=0.01, damping=1e-5, cg_max_iter=10, cg_rtol=0.0, cg_atol=atol_rr,
                       step_metric="damped_fisher", step_eps=1e-8, shrink=0.8,
                       max_backtracks=14,
                       acceptance=_rule(kl_comparison="le", improvement_comparison="gt")),
            0.0, "rllab/optimizers/conjugate_gradient_optimizer.py, rllab/algos/npo.py",
            (after,
             "a trial with KL exactly = delta passes the loop but the post-check "
             "(KL >= delta) reverts: measure-zero",
             "subsample_factor < 1 computes the FVP on a random subsample")),
        "garage": Preset(
            "garage",
            TRPOConfig(max_kl=0.01, damping=1e-5, cg_max_iter=10, cg_rtol=0.0, cg_atol=atol_rr,
                       step_metric="damped_fisher", step_eps=1e-8, shrink=0.8,
                       max_backtracks=14,
                       acceptance=_rule(kl_comparison="le", improvement_comparison="gt")),
            0.0, "src/garage/torch/optimizers/conjugate_gradient_optimizer.py",
            (after,
             "NaN step length is replaced by 1.0 and NaN entries of the CG solution by 0; "
             "refpg never takes a non-finite step",
             "a trial with KL exactly = delta passes the loop but the post-check reverts",
             "accept_violation=True keeps the last trial: on_failure='keep_last'")),
        "baselines": Preset(
            "baselines",
            TRPOConfig(max_kl=0.001, damping=1e-2, cg_max_iter=10, cg_rtol=0.0, cg_atol=atol_rr,
                       step_metric="damped_fisher", shrink=0.5, max_backtracks=9,
                       acceptance=_rule(kl_comparison="le", kl_slack=1.5,
                                        improvement_comparison="ge"),
                       fvp_stride=5),
            0.0, "baselines/trpo_mpi/trpo_mpi.py, baselines/common/cg.py",
            (after,
             "np.allclose(g, 0) (every |g_i| <= 1e-8) skips the update; refpg steps unless "
             "g = 0 exactly",
             "entcoeff (default 0) adds an entropy bonus: entropy_coef",
             "advantages are standardised before the step: pass standardised advantages")),
        "modular_rl": Preset(
            "modular_rl",
            TRPOConfig(max_kl=0.01, damping=1e-3, cg_max_iter=10, cg_rtol=0.0, cg_atol=atol_rr,
                       step_metric="damped_fisher", shrink=0.5, max_backtracks=9,
                       acceptance=_rule(check_kl=False, improvement_comparison="gt",
                                        min_improvement_ratio=0.1)),
            0.0, "modular_rl/trpo.py",
            (after,
             "np.allclose(g, 0) skips the update; refpg steps unless g = 0 exactly")),
        "pfrl": Preset(
            "pfrl",
            TRPOConfig(max_kl=0.01, damping=1e-2, cg_max_iter=10, cg_rtol=0.0, cg_atol=1e-10,
                       step_metric="damped_fisher", step_eps=1e-8, shrink=0.5,
                       max_backtracks=10,
                       acceptance=_rule(kl_comparison="le", improvement_comparison="ge")),
            0.01, "pfrl/agents/trpo.py, pfrl/utils/conjugate_gradient.py",
            ("CG stops on ||r|| < 1e-10 after each update (not before)",
             "advantages are standardised (std + 1e-8) before the step: pass standardised "
             "advantages")),
        "tianshou": Preset(
            "tianshou",
            TRPOConfig(max_kl=0.01, damping=0.1, cg_max_iter=10, cg_rtol=0.0, cg_atol=atol_rr,
                       step_metric="damped_fisher", shrink=0.8, max_backtracks=9,
                       acceptance=_rule(kl_comparison="lt", improvement_comparison="gt")),
            0.0, "tianshou/algorithm/modelfree/trpo.py, npg.py",
            (after,
             "one step per minibatch, 'old' = parameters at the start of each minibatch",
             "versions before PR #1287 keep the last trial on failure: preset "
             "'tianshou-legacy'")),
        "tianshou-legacy": Preset(
            "tianshou-legacy",
            TRPOConfig(max_kl=0.01, damping=0.1, cg_max_iter=10, cg_rtol=0.0, cg_atol=atol_rr,
                       step_metric="damped_fisher", shrink=0.8, max_backtracks=9,
                       acceptance=_rule(kl_comparison="lt", improvement_comparison="gt"),
                       on_failure="keep_last"),
            0.0, "tianshou/policy/modelfree/trpo.py before PR #1287",
            (after,)),
    }


def preset_names():
    """Names of the presets. derivations/verify_trpo.md#presets"""
    return sorted(_presets("categorical"))


def get_preset(name, *, distribution="categorical"):
    """The ``Preset`` called ``name`` (``preset_names()``); ``distribution``
    ``"categorical"`` or ``"gaussian"`` selects spinningup's KL direction.
    derivations/verify_trpo.md#presets
    """
    if distribution not in ("categorical", "gaussian"):
        raise ValueError(f"distribution must be 'categorical' or 'gaussian'; got "
                         f"{distribution!r}")
    table = _presets(distribution)
    if name not in table:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(table)}")
    return table[name]


def config_departures(config, entropy_coef=0.0):
    """Where ``config`` departs from CONVENTIONS.md, one sentence each with its cost.

    ``config: TRPOConfig``. The costs quoted as formulas are measured on
    concrete cases by ``refpg.verify.trpo.verify_trpo_step``.
    derivations/verify_trpo.md#what-each-departure-costs
    """
    if not isinstance(config, TRPOConfig):
        raise TypeError(f"config must be a TRPOConfig; got {type(config).__name__}")
    c, r = config, config.acceptance
    out = []
    if c.damping:
        out.append(f"damping lam = {c.damping:g}: the direction solves (F + lam I) x = g, "
                   f"not F x = g (angle to the natural gradient measured)")
    if c.cg_max_iter is not None:
        out.append(f"CG capped at {c.cg_max_iter} iterations (rtol {c.cg_rtol:g}, atol "
                   f"{c.cg_atol:g}): x is not the converged solve when the spectrum is wide")
    if c.cg_x0 == "random":
        out.append(f"CG starts at {c.cg_x0_scale:g} N(0, I): the step is random; compared "
                   f"with the start passed in (pass_x0) or within the spread of random starts")
    if c.step_metric == "damped_fisher" and c.damping:
        out.append("step length from x^T (F + lam I) x: 1/2 s^T F s = delta x^T F x / "
                   "(x^T F x + lam x^T x) < delta (the quadratic KL model is short of delta)")
    elif c.step_metric == "gradient":
        out.append("step length from g^T x: equals x^T F x only when CG is exact and undamped")
    if c.step_eps:
        out.append(f"step_eps = {c.step_eps:g} in the step-length denominator: the step is "
                   f"shorter by sqrt(xFx / (xFx + eps)), visible when xFx is tiny")
    if not c.line_search:
        out.append("no line search: the full step is taken unchecked (KL can exceed delta)")
    if c.shrink != _REFPG.shrink or c.max_backtracks != _REFPG.max_backtracks:
        out.append(f"backtracking by {c.shrink:g}^k, k <= {c.max_backtracks} (refpg 0.5^k, "
                   f"k <= 10): smallest trial fraction {c.shrink ** c.max_backtracks:.3g}")
    if not r.check_kl:
        out.append("KL never checked: accepted steps can violate the trust region "
                   "(largest KL / delta measured)")
    elif r.kl_slack != 1.0:
        out.append(f"KL accepted up to {r.kl_slack:g} delta (largest KL / delta measured)")
    if r.check_kl and r.kl_comparison == "lt":
        out.append("strict KL < delta: differs from KL <= delta only at equality")
    if r.improvement_comparison == "ge":
        out.append("improvement >= 0 accepted: a step that does not improve the surrogate "
                   "passes")
    elif r.improvement_comparison == "none":
        out.append("improvement not checked")
    if r.min_improvement_ratio is not None:
        out.append(f"also requires improvement / expected > {r.min_improvement_ratio:g}")
    if c.on_failure == "keep_last":
        out.append("on failure the last trial is kept: the returned step may violate the "
                   "constraint or worsen the surrogate")
    if c.kl_direction == "new_old":
        out.append("line search checks KL(new || old), not KL(old || new): same F, same step, "
                   "decisions can differ near delta (cases where the outcome changes counted)")
    if c.fvp_stride != 1:
        out.append(f"Fisher-vector products on every {c.fvp_stride}-th sample: the quadratic "
                   f"KL model uses a noisier F (1/2 s^T F_all s / delta measured)")
    if entropy_coef:
        out.append(f"entropy bonus {entropy_coef:g} mean H in the objective: another objective")
    return tuple(out)


def preset_step(logits, states, actions, advantages, old_log_probs, max_kl, preset="refpg",
                *, rng=None, perturb=None):
    """The TRPO step (T1)-(T5) of ``preset`` on one batch, on the logits of a tabular softmax.

    ``logits: (S, A)`` the current (old) policy's logits; ``states, actions:
    (M,)`` int; ``advantages, old_log_probs: (M,)``. Surrogate (ratio form,
    mean over samples) ``L(z) = mean_j exp(log pi_z(a_j|s_j) - old_j) A_j``
    (+ ``entropy_coef mean_j H(pi_z(.|s_j))``); average KL ``mean_j KL(pi_old(.|s_j)
    || pi_z(.|s_j))`` (or reversed per the preset) with ``pi_old = softmax(logits)``;
    ``F`` its Hessian at ``logits`` (every ``fvp_stride``-th sample). ``preset``
    a name or a ``Preset``; ``rng`` for a random CG start. ``perturb(kind, value)``,
    if given, is applied to the gradient, every Fisher-vector product and every
    surrogate and KL value (the verifier's rounding model). Returns
    ``refpg.trpo.TRPOStep`` over ``theta = logits.ravel()``.
    derivations/verify_trpo.md#the-trpo-step
    """
    if isinstance(preset, str):
        preset = get_preset(preset)
    if not isinstance(preset, Preset):
        raise TypeError(f"preset must be a name or a Preset; got {type(preset).__name__}")
    z = as_float_array("logits", logits, ndim=2)
    S, A = z.shape
    if np.ndim(states) != 1:
        raise ValueError(f"states must be a vector (M,); got shape {np.shape(states)}")
    M = np.shape(states)[0]
    states = as_index_array("states", states, upper=S, shape=(M,))
    actions = as_index_array("actions", actions, upper=A, shape=(M,))
    adv = as_float_array("advantages", advantages, shape=(M,))
    old = as_float_array("old_log_probs", old_log_probs, shape=(M,))
    if M == 0:
        raise ValueError("a TRPO step needs at least one sample (M >= 1)")
    max_kl = check_positive_float("max_kl", max_kl)
    cfg = replace(preset.config, max_kl=max_kl)
    policy = TabularSoftmaxPolicy(S, A)
    theta_old = z.ravel().copy()
    sur = SampledSurrogate(policy=policy, theta_old=theta_old, states=states, actions=actions,
                           log_q=old, q_values=adv, coef=np.ones(M), unit=np.arange(M),
                           n_units=M, kl_states=states, kl_sample_weights=np.full(M, 1.0 / M),
                           kl_direction=cfg.kl_direction, estimator="verify")
    fvp_sur = sur if cfg.fvp_stride == 1 else sur.subsample_kl(cfg.fvp_stride)
    c = preset.entropy_coef
    per = perturb if perturb is not None else (lambda kind, x, arg: x)

    def entropy(theta):
        return float(np.mean(_categorical_entropy(theta.reshape(S, A)[states])))

    def entropy_gradient(theta):
        # dH/dz = -pi (log pi - sum_b pi_b log pi_b), per sample, averaged over samples
        logp = log_softmax(theta.reshape(S, A)[states])
        p = np.exp(logp)
        h = np.sum(p * logp, axis=1, keepdims=True)
        out = np.zeros((S, A))
        np.add.at(out, states, -p * (logp - h) / M)
        return out.ravel()

    g = np.asarray(sur.gradient(theta_old), dtype=float)
    if c:
        g = g + c * entropy_gradient(theta_old)
    g = np.asarray(per("gradient", g, theta_old), dtype=float)

    def fvp(v):
        return np.asarray(per("fvp", fvp_sur.fisher_vector_product(v), v), dtype=float)

    def value(theta):
        out = float(sur.value(theta))
        return float(per("surrogate", out + c * entropy(theta) if c else out, theta))

    def kl(theta):
        return float(per("kl", sur.kl(theta), theta))

    return trpo_step(theta_old, g, fvp, value, kl, cfg, rng=rng, mode="sampled")
