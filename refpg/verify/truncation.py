"""The six time-limit (truncation) conventions of the peers, as reference implementations.

PEER-CONVENTIONS.md lists six distinct ways peer libraries treat an episode cut by a
time limit (conventions A-F; C is refpg's own, CONVENTIONS.md). Each is a
``TruncationPreset`` named by peer (``PRESETS``), with its rule, its assumptions where
the peer's source is silent, and its cost relative to CONVENTIONS.md;
``reference_returns``, ``reference_gae`` and ``reference_lambda_returns`` compute what
that peer computes, so refpg.verify.returns can verify a user's code under the user's
own convention. derivations/verify_returns.md#truncation-presets
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..returns import gae as _gae
from ..returns import lambda_returns as _lambda_returns
from ..returns import linear_recurrence, td_residuals
from ..returns import reward_to_go as _reward_to_go
from .layouts import _choice

__all__ = ["TruncationPreset", "PRESETS", "NORMALIZATIONS", "reference_returns",
           "reference_gae", "reference_lambda_returns"]


_FIELDS = ("rewards", "values", "next_values", "terminated", "truncated")


# --------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class TruncationPreset:
    """A peer's time-limit convention (PEER-CONVENTIONS.md A-F) and value target.

    ``convention``: ``"A"`` truncation = termination, ``"B"`` SB3's reward
    augmentation, ``"C"`` CONVENTIONS.md, ``"D"`` bootstrap from the last
    visited state, ``"E"`` zero advantage at the truncated step, ``"F"``
    Spinning Up's own-limit path. ``value_target``: what the peer's GAE code
    returns as value targets, ``"a_plus_v"`` (``A + V``, the lambda-return),
    ``"reward_to_go"`` (bootstrapped, lambda = 1) or ``"monte_carlo"`` (no
    bootstrap at all). ``cost`` / ``target_cost``: what the convention / the value
    target costs against CONVENTIONS.md (the reports quote them with a measurement);
    ``assumption``: what refpg assumed where PEER-CONVENTIONS.md is silent (both flags
    set, a cut by the end of the buffer). derivations/verify_returns.md#truncation-presets
    """

    name: str
    convention: str
    peers: str
    value_target: str
    rule: str
    cost: str = ""
    assumption: str = ""
    target_cost: str = ""


_RULES = {
    "A": "truncation treated as termination: delta at a time limit is r - V(s_{T-1})",
    "B": "reward augmentation r <- r + gamma V(s_T) at a time limit, then treated as done",
    "C": "value masked by terminated, recursion cut by terminated or truncated (CONVENTIONS.md)",
    "D": "a time limit bootstraps from the last visited state: r + gamma V(s_{T-1}) - V(s_{T-1})",
    "E": "advantage zeroed at the truncated step, its return := V(s_{T-1})",
    "F": "bootstrap at Spinning Up's own time limit and at the epoch end, even when the step "
         "also terminated",
}
_COSTS = {
    "A": "the state reached at a time limit is not terminal (CONVENTIONS.md), so every "
         "advantage of a truncated episode misses (gamma lam)^(e-t) gamma V(s_T): biased, and "
         "value targets become 'return until the clock runs out', a function of time, not state",
    "B": "advantages and returns equal CONVENTIONS.md's up to rounding; the cost is outside "
         "this function: the stored rewards include gamma V(s_T), so reward logs and reward "
         "statistics see value estimates",
    "D": "biased by gamma (V(s_{T-1}) - V(s_T)) at the last step of every episode that is not "
         "terminated, propagated back by (gamma lam)^k; zero only if V is constant there",
    "E": "the last transition of a truncated episode is dropped (A := 0, return := V): its "
         "reward enters no advantage and the earlier steps bootstrap from V(s_{T-1}) instead "
         "of r + gamma V(s_T); unbiased only for an exact critic",
    "F": "as CONVENTIONS.md except where a true termination falls on Spinning Up's own "
         "max_ep_len or on the epoch end: it bootstraps gamma V(s_terminal), a network output "
         "that should be 0",
}
_TARGET_COSTS = {
    "reward_to_go": "value targets are the bootstrapped reward-to-go (lambda = 1), not "
                    "A + V (the lambda-return): unbiased for an exact critic, more variance",
    "monte_carlo": "value targets are the Monte-Carlo reward-to-go with no bootstrap at any "
                   "episode end: the unobserved tail of a truncated episode counts as 0 "
                   "(biased low for positive rewards)",
}
_BOTH = "terminated and truncated both set (gymnasium's TimeLimit at a terminal step): "


def _preset(name, conv, peers, target="a_plus_v", assumption=""):
    return TruncationPreset(name, conv, peers, target, _RULES[conv], _COSTS.get(conv, ""),
                            assumption, _TARGET_COSTS.get(target, ""))


_TERM_WINS = _BOTH + "terminated wins"
_BUFFER_END = "a step cut by the end of the buffer (no flag) bootstraps from next_values"
#: preset name -> TruncationPreset (aliases share a convention).
PRESETS = {p.name: p for p in [
    _preset("refpg", "C", "refpg (CONVENTIONS.md)", assumption=_TERM_WINS),
    _preset("tianshou", "C", "tianshou value_mask", assumption=_TERM_WINS),
    _preset("torchrl", "C", "TorchRL done vs terminated", assumption=_TERM_WINS),
    _preset("pfrl", "C", "pfrl nonterminal", assumption=_TERM_WINS + "; value targets A + V "
            "(assumed)"),
    _preset("rlax", "C", "rlax (discount_t set by the caller)", assumption=_TERM_WINS),
    _preset("cleanrl", "A", "CleanRL ppo*.py", assumption=_TERM_WINS + "; " + _BUFFER_END
            + " (next_value, 1 - next_done)"),
    _preset("baselines", "A", "baselines ppo2 runner", assumption=_TERM_WINS + "; "
            + _BUFFER_END + " (last_values)"),
    _preset("purejaxrl", "A", "purejaxrl", assumption=_TERM_WINS + "; " + _BUFFER_END),
    _preset("rllab", "A", "rllab (append 0)", "monte_carlo",
            assumption=_TERM_WINS + "; rllab collects whole episodes; a buffer cut is assumed "
            "to bootstrap like CleanRL's"),
    _preset("pytorch_trpo", "A", "ikostrikov/pytorch-trpo", "monte_carlo",
            assumption=_TERM_WINS + "; whole episodes; a buffer cut is assumed to bootstrap"),
    _preset("sb3", "B", "stable-baselines3 on_policy_algorithm.py (SB3#633)",
            assumption=_BOTH + "terminated wins (SB3's VecEnv sets TimeLimit.truncated = "
            "truncated and not terminated); " + _BUFFER_END + " (last_values)"),
    _preset("modular_rl", "D", "modular_rl compute_advantage", "monte_carlo",
            assumption=_TERM_WINS + "; a buffer cut is a path that is not terminated, so it "
            "also bootstraps from b[-1] = V(s_{T-1})"),
    _preset("mjrl", "D", "mjrl compute_advantages (b[-1])", "monte_carlo",
            assumption=_TERM_WINS + "; a buffer cut bootstraps from b[-1] as in modular_rl"),
    _preset("a2c_ppo_acktr", "E", "ikostrikov/pytorch-a2c-ppo-acktr-gail "
            "use_proper_time_limits", assumption=_BOTH + "treated as truncated (its "
            "TimeLimitMask sets bad_transition whenever done at the step limit); " + _BUFFER_END
            + " (next_value)"),
    _preset("spinningup", "F", "Spinning Up ppo.py / vpg.py own-limit path",
            "reward_to_go", assumption="`truncated` marks Spinning Up's own max_ep_len "
            "timeout and the last column is the epoch end (an env-internal TimeLimit reaches "
            "Spinning Up as d = True: use preset 'cleanrl'); " + _BOTH + "bootstrapped"),
]}

#: advantage normalisation name -> (eps, ddof); "mean_std" takes both from options.
NORMALIZATIONS = {
    "none": None, "mean_std": None,
    "sb3": (1e-8, 1), "cleanrl": (1e-8, 1), "tianshou": (1e-8, 1),   # torch .std(): ddof 1
    "baselines": (1e-8, 0), "mjrl": (1e-8, 0),                      # numpy .std(): ddof 0
    "spinningup": (0.0, 0), "modular_rl": (0.0, 0),                 # no eps
}


def _check_preset(preset):
    return PRESETS[_choice("preset", preset, tuple(PRESETS))]


# --------------------------------------------------------------------------- inputs
def _consistent(inputs):
    """Canonical arrays with ``next_values[:, t] = values[:, t+1]`` inside episodes."""
    r = np.asarray(inputs["rewards"], float)
    v = np.asarray(inputs["values"], float)
    term = np.asarray(inputs["terminated"], bool)
    trunc = np.asarray(inputs["truncated"], bool)
    nv = np.array(inputs["next_values"], float)
    inside = ~(term | trunc)[:, :-1]
    nv[:, :-1][inside] = v[:, 1:][inside]
    return r, v, nv, term, trunc


def _preset_arrays(inputs, preset):
    """``(r, v, nv, terminated, truncated)`` to feed ``refpg.returns`` under ``preset``."""
    r, v, nv, term, trunc = _consistent(inputs)
    gamma = float(inputs["gamma"])
    last = np.zeros(r.shape, bool)
    last[:, -1] = True
    conv = preset.convention
    if conv == "F":                     # d together with timeout or epoch end: bootstrap
        boot = term & (trunc | last)
        term, trunc = term & ~boot, (trunc & ~term) | boot
    elif conv == "E":                   # bad_transition whenever done at the limit
        term = term & ~trunc
    else:                               # terminated wins
        trunc = trunc & ~term
    if conv == "A":
        term, trunc = term | trunc, np.zeros_like(trunc)
    elif conv == "B":
        r = r + gamma * np.where(trunc, nv, 0.0)
        term, trunc = term | trunc, np.zeros_like(trunc)
    elif conv == "D":
        cut = last & ~(term | trunc)
        nv = np.where(trunc | cut, v, nv)
    return r, v, nv, term, trunc


def _gae_e(r, v, nv, term, trunc, gamma, lam):
    """Convention E: (R5) with ``A_t := 0`` at truncated steps (the recursion then
    restarts from 0, so the step before bootstraps from ``V(s_{T-1})``)."""
    delta = td_residuals(r, v, nv, gamma, terminated=term)
    cont = ~(term | trunc)
    cont[:, -1] = False
    return linear_recurrence(np.where(trunc, 0.0, delta), cont * (gamma * lam))


def reference_returns(inputs, preset="refpg", *, bootstrap=True):
    """Reward-to-go (R2) under ``preset``'s time-limit convention: ``(N, T)``.

    ``inputs``: ``rewards, values, next_values: (N, T)``, ``terminated,
    truncated: (N, T)`` bool, ``gamma``. ``bootstrap=False``: no value enters
    (the tail beyond every episode end counts as 0), whatever the preset.
    derivations/verify_returns.md#truncation-presets
    """
    p = _check_preset(preset)
    gamma = float(inputs["gamma"])
    if not bootstrap:
        r, _, _, term, trunc = _consistent(inputs)
        return _reward_to_go(r, gamma, terminated=term | trunc)
    r, v, nv, term, trunc = _preset_arrays(inputs, p)
    if p.convention == "E":              # return := V(s_t) at a truncated step
        return _reward_to_go(np.where(trunc, v, r), gamma, terminated=term | trunc,
                             next_values=nv)
    return _reward_to_go(r, gamma, terminated=term, truncated=trunc, next_values=nv)


def reference_gae(inputs, preset="refpg"):
    """``(advantages, returns)`` of GAE (R5) under ``preset``: two ``(N, T)`` arrays.

    ``returns`` is the preset's value target (``A + V`` for most peers, see
    ``TruncationPreset.value_target``). ``inputs`` as ``reference_returns``
    plus ``lam``. derivations/verify_returns.md#truncation-presets
    """
    p = _check_preset(preset)
    gamma, lam = float(inputs["gamma"]), float(inputs["lam"])
    r, v, nv, term, trunc = _preset_arrays(inputs, p)
    if p.convention == "E":
        adv = _gae_e(r, v, nv, term, trunc, gamma, lam)
    else:
        adv = _gae(r, v, nv, gamma, lam, terminated=term, truncated=trunc).advantages
    if p.value_target == "a_plus_v":
        ret = adv + v
    elif p.value_target == "reward_to_go":
        ret = reference_returns(inputs, preset)
    else:
        ret = reference_returns(inputs, preset, bootstrap=False)
    return adv, ret


def reference_lambda_returns(inputs, preset="refpg"):
    """Lambda-returns (R4) under ``preset``: ``(N, T)``.

    derivations/verify_returns.md#truncation-presets
    """
    p = _check_preset(preset)
    gamma, lam = float(inputs["gamma"]), float(inputs["lam"])
    r, v, nv, term, trunc = _preset_arrays(inputs, p)
    if p.convention == "E":
        return _gae_e(r, v, nv, term, trunc, gamma, lam) + v
    return _lambda_returns(r, nv, gamma, lam, terminated=term, truncated=trunc)
