"""Off-policy policy-gradient estimators by importance sampling (SCOPE G6, PL3-PL4).

A batch drawn by a behaviour policy ``pi_b`` (whose log-probabilities are
``batch.log_probs``) estimates the gradient of the target ``pi_theta`` after
reweighting by ratios of action probabilities; the dynamics cancel in every
ratio (derivations/estimators.md#importance-sampling):

    whole trajectory   W_i g_i,  log W_i = sum_t [log pi_theta - log pi_b](a_t|s_t)      (IS1, IS3)
    per decision       sum_t w_t psi_t sum_{t'>=t} gamma^(t'-t) r_t' W_{0:t'}            (IS2, IS4)
    first order        sum_t (pi_theta / pi_b)(a_t|s_t) w_t psi_t G_t  (biased)          (IS5)

Weights are sums of logs, exponentiated once (``ValueError`` beyond the float64
range, never ``inf``). The importance-sampled surrogate ``L_IS`` (PL3) is the
scalar whose gradient at ``theta_old`` is the on-policy estimator (PL4). The
on-policy estimators (G0-G5, G7) are in ``refpg.estimators``; weights of
arbitrary distributions in ``refpg.importance``.
"""
from __future__ import annotations

import numpy as np

from .estimators import (_ESTIMATORS, _check_batch, _choice, _per_step_weights, _reduce,
                         estimator_coefficients, score_contributions)
from .returns import reward_to_go
from .validation import as_float_array, check_gamma

__all__ = ["log_importance_weights", "importance_weights", "off_policy_contributions",
           "off_policy_estimate", "importance_sampled_surrogate",
           "importance_sampled_surrogate_gradient"]

#: exp overflows float64 above this log-weight (log(max float64) = 709.78).
_LOG_MAX = float(np.log(np.finfo(float).max))


# --------------------------------------------------------------------------- weights
def _log_ratios(batch, policy, theta):
    """``log pi_theta(a_t|s_t) - log pi_b(a_t|s_t)`` on valid steps, 0 on padding: ``(N, T)``."""
    _check_batch(batch, policy)
    logp = policy.log_prob(theta, batch.states[batch.mask], batch.actions[batch.mask])
    out = np.zeros(batch.mask.shape, dtype=np.result_type(logp.dtype, np.float64))
    out[batch.mask] = logp - batch.log_probs[batch.mask]
    return out


def log_importance_weights(batch, policy, theta, *, per_decision=False):
    """Log importance weights of the target ``pi_theta`` against the behaviour policy (G6).

    ``batch.log_probs`` are ``log pi_b(a_t | s_t)``. Whole trajectory (IS1):
    ``log W_i = sum_t [log pi_theta(a_t|s_t) - log pi_b(a_t|s_t)]``: ``(N,)`` (the
    dynamics cancel). ``per_decision=True`` (IS2): ``log W_{i,0:t} = sum_{u<=t} ...``:
    ``(N, T)``, holding the whole-trajectory value on padding. Sums of logs, never
    products of ratios: finite for any length. derivations/estimators.md#importance-sampling
    """
    lr = _log_ratios(batch, policy, theta)
    cum = np.cumsum(lr, axis=1)
    return cum if per_decision else cum[:, -1]


def importance_weights(batch, policy, theta, *, per_decision=False):
    """``exp(log_importance_weights(...))``: ``(N,)`` or ``(N, T)`` (G6).

    ``ValueError`` if a weight exceeds the float64 range (log-weight > 709.78):
    such a batch cannot be importance-weighted in float64 and the message gives
    the largest log-weight. derivations/estimators.md#importance-sampling
    """
    lw = log_importance_weights(batch, policy, theta, per_decision=per_decision)
    return _exp_weights(lw)


def _exp_weights(lw):
    re = np.real(lw)
    if np.any(re > _LOG_MAX):
        raise ValueError(f"importance weights overflow float64: the largest log-weight is "
                         f"{float(np.max(re)):.1f} > {_LOG_MAX:.2f}; use "
                         f"log_importance_weights")
    return np.exp(lw)


def off_policy_contributions(batch, policy, theta, gamma, *, correction="per_decision",
                             estimator="reward_to_go", weighting="discounted"):
    """Per-episode off-policy estimator terms: ``(N, d)`` (G6). ``batch`` is from ``pi_b``.

    ``correction="trajectory"`` (IS3): ``W_i g_i`` with ``W_i`` the whole-trajectory
    weight and ``g_i`` the on-policy term of ``estimator`` ("reinforce" or
    "reward_to_go"). ``"per_decision"`` (IS4, reward-to-go only):
    ``sum_t w_t psi_t sum_{t'>=t} gamma^(t'-t) r_t' W_{0:t'}``. Both have the
    on-policy estimator's mean under ``pi_theta``. ``"first_order"`` (IS5,
    reward-to-go only): ``sum_t (pi_theta/pi_b)(a_t|s_t) w_t psi_t G_t``, which
    drops the state-marginal ratio and the future ratios; its mean is
    ``sum_t w_t sum_s p^b_t(s) sum_a pi_theta grad log pi_theta Q^b_t(s, a)``, biased
    (refpg.moments.time_indexed_gradient gives it exactly).
    derivations/estimators.md#importance-sampling
    """
    _check_batch(batch, policy)
    gamma = check_gamma(gamma)
    _choice("correction", correction, ("trajectory", "per_decision", "first_order"))
    _choice("estimator", estimator, _ESTIMATORS)
    mask = batch.mask
    if correction == "trajectory":
        W = _exp_weights(log_importance_weights(batch, policy, theta))
        c = estimator_coefficients(batch, gamma, estimator=estimator, weighting=weighting)
        return W[:, None] * score_contributions(batch, policy, theta, c)
    if estimator != "reward_to_go":
        raise ValueError(f"correction={correction!r} needs estimator='reward_to_go' (a reward "
                         f"may only be reweighted by the ratios of the actions before it)")
    T = batch.max_steps
    w = _per_step_weights(weighting, gamma, T)
    if correction == "first_order":
        rho = _exp_weights(_log_ratios(batch, policy, theta))
        G = reward_to_go(batch.rewards, gamma, mask=mask)
        c = np.where(mask, rho * w[None, :] * G, 0.0)
        return score_contributions(batch, policy, theta, c)
    lw = log_importance_weights(batch, policy, theta, per_decision=True)
    # sum_{t'>=t} gamma^(t'-t) r_t' W_{0:t'} = reward-to-go of the reweighted rewards
    Wr = np.where(mask, batch.rewards * _exp_weights(np.where(mask, lw, 0.0)), 0.0)
    G_w = reward_to_go(Wr, gamma, mask=mask)
    c = np.where(mask, w[None, :] * G_w, 0.0)
    return score_contributions(batch, policy, theta, c)


def off_policy_estimate(batch, policy, theta, gamma, *, correction="per_decision",
                        estimator="reward_to_go", weighting="discounted"):
    """Mean over episodes of ``off_policy_contributions``: ``(d,)`` (G6).

    derivations/estimators.md#importance-sampling
    """
    return off_policy_contributions(batch, policy, theta, gamma, correction=correction,
                                    estimator=estimator, weighting=weighting).mean(axis=0)



# --------------------------------------------------------------------------- surrogate
def importance_sampled_surrogate(batch, policy, theta, coefficients, *, reduction="episodes"):
    """``L_IS(theta) = (1/N) sum_i sum_t exp(log pi_theta - log pi_old)(a_t|s_t) c_{i,t}`` (PL3).

    An objective (maximised). ``batch.log_probs`` are ``log pi_old``; at
    ``theta = theta_old`` every ratio is 1 and ``grad L_IS`` is the on-policy
    estimator (G0) with coefficients ``c``. Complex-safe in ``theta``.
    derivations/estimators.md#the-importance-sampled-surrogate
    """
    lr = _log_ratios(batch, policy, theta)
    c = as_float_array("coefficients", coefficients, shape=batch.mask.shape)
    ratio = _exp_weights(lr[batch.mask])
    return _reduce(batch, np.sum(ratio * c[batch.mask]), reduction)


def importance_sampled_surrogate_gradient(batch, policy, theta, coefficients, *,
                                          reduction="episodes"):
    """Hand-written ``grad L_IS = (1/N) sum_i sum_t rho_t c_{i,t} psi_{i,t}``: ``(d,)`` (PL4).

    ``rho_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t)``; with ``c`` the behaviour
    reward-to-go coefficients this is the first-order off-policy estimator (IS5).
    derivations/estimators.md#the-importance-sampled-surrogate
    """
    lr = _log_ratios(batch, policy, theta)
    c = as_float_array("coefficients", coefficients, shape=batch.mask.shape)
    rho = _exp_weights(lr)
    contrib = score_contributions(batch, policy, theta, np.where(batch.mask, rho * c, 0.0))
    return _reduce(batch, contrib.sum(axis=0), reduction)
