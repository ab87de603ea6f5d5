"""Bug catalogue for KL divergences, KL estimators and entropies.

Each bug is a small deliberately wrong function as real PyTorch/NumPy code
writes it; ``verify_kl`` / ``verify_entropy`` must reject it and shrink the
counterexample to at most 2 distributions of at most 3 actions (or components,
or samples). Every correct variant (refpg's own functions and independent
scipy / textbook routes) must pass. Fixed seeds (the verifiers' default seed 0).
"""
import numpy as np
import pytest
import scipy.special as sp

from refpg.distributions import (categorical_entropy, diag_gaussian_entropy, kl_categorical,
                                 kl_diag_gaussian)
from refpg.verify.distributions import verify_entropy, verify_kl


def _naive_softmax(z):
    e = np.exp(z)                        # no max subtraction
    return e / e.sum(-1, keepdims=True)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ----------------------------------------------------------------- bugs
def kl_direction_flipped(p_logits, q_logits):
    return kl_categorical(q_logits, p_logits)


def kl_log_probs_not_exponentiated(p_logits, q_logits):
    lp, lq = sp.log_softmax(p_logits, -1), sp.log_softmax(q_logits, -1)
    return np.sum(lp * (lp - lq), -1)


def kl_softmax_without_max_subtraction(p_logits, q_logits):
    p, q = _naive_softmax(p_logits), _naive_softmax(q_logits)
    return np.sum(p * np.log(p / q), -1)


def kl_log_of_softmax(p_logits, q_logits):
    """log(softmax(z)) instead of log_softmax(z): log 0 = -inf at extreme logits."""
    p, q = _softmax(p_logits), _softmax(q_logits)
    return np.sum(p * (np.log(p) - np.log(q)), -1)


def kl_logits_as_log_probs(p_logits, q_logits):
    """Treats unnormalised logits as log-probabilities (no log_softmax)."""
    return np.sum(np.exp(p_logits) * (p_logits - q_logits), -1)


def kl_probs_zero_times_log_zero(p_probs, q_probs):
    return np.sum(p_probs * np.log(p_probs / q_probs), -1)


def gaussian_kl_direction_flipped(mean_p, log_std_p, mean_q, log_std_q):
    return kl_diag_gaussian(mean_q, log_std_q, mean_p, log_std_p)


def gaussian_kl_std_for_variance(mean_p, std_p, mean_q, std_q):
    """Standard deviations where the formula needs variances."""
    return np.sum(np.log(std_q / std_p) + (std_p + (mean_p - mean_q) ** 2) / (2 * std_q) - 0.5,
                  -1)


def gaussian_kl_mean_term_scaled_by_p(mean_p, std_p, mean_q, std_q):
    """The mean difference divided by p's variance instead of q's."""
    return np.sum(np.log(std_q / std_p) + std_p ** 2 / (2 * std_q ** 2)
                  + (mean_p - mean_q) ** 2 / (2 * std_p ** 2) - 0.5, -1)


def k3_ratio_inverted(log_p, log_q):
    """SB3-style k3 with r = p/q instead of q/p (x ~ p)."""
    log_r = log_p - log_q
    return np.exp(log_r) - 1 - log_r


def k1_sign_flipped(log_p, log_q):
    """approx_kl = mean(logp_new - logp_old): the negative of k1."""
    return np.mean(log_q - log_p)


def entropy_sign_flipped(logits):
    p = sp.softmax(logits, -1)
    return np.sum(p * sp.log_softmax(logits, -1), -1)


def entropy_zero_probability_nan(probs):
    return -np.sum(probs * np.log(probs), -1)


def gaussian_entropy_constant_once(log_std):
    """The 1/2 log(2 pi e) constant added once per distribution, not per component."""
    return np.sum(log_std, -1) + 0.5 * np.log(2 * np.pi * np.e)


BUGS = [  # (name, verifier, fn, options)
    ("KL direction flipped", verify_kl, kl_direction_flipped, {}),
    ("KL of log-probabilities without exponentiating", verify_kl,
     kl_log_probs_not_exponentiated, {}),
    ("softmax without max subtraction overflows", verify_kl,
     kl_softmax_without_max_subtraction, {}),
    ("log of softmax underflows to log 0", verify_kl, kl_log_of_softmax, {}),
    ("logits treated as normalised log-probabilities", verify_kl, kl_logits_as_log_probs, {}),
    ("0 log 0 = NaN on probabilities", verify_kl, kl_probs_zero_times_log_zero,
     dict(inputs="probs")),
    ("Gaussian KL direction flipped", verify_kl, gaussian_kl_direction_flipped,
     dict(family="gaussian")),
    ("Gaussian KL with std for variance", verify_kl, gaussian_kl_std_for_variance,
     dict(family="gaussian", gaussian_scale="std")),
    ("Gaussian KL mean term over p's variance", verify_kl, gaussian_kl_mean_term_scaled_by_p,
     dict(family="gaussian", gaussian_scale="std")),
    ("k3 with the ratio inverted", verify_kl, k3_ratio_inverted, dict(estimator="k3")),
    ("k1 sign flipped", verify_kl, k1_sign_flipped, dict(estimator="k1", reduce="mean")),
    ("entropy sign flipped", verify_entropy, entropy_sign_flipped, {}),
    ("entropy 0 log 0 = NaN", verify_entropy, entropy_zero_probability_nan,
     dict(inputs="probs")),
    ("Gaussian entropy constant once", verify_entropy, gaussian_entropy_constant_once,
     dict(family="gaussian")),
]

CORRECT = [
    ("refpg kl_categorical", verify_kl, lambda p_logits, q_logits:
     kl_categorical(p_logits, q_logits), {}),
    ("scipy log_softmax KL", verify_kl, lambda p_logits, q_logits: np.sum(
        sp.softmax(p_logits, -1) * (sp.log_softmax(p_logits, -1) - sp.log_softmax(q_logits, -1)),
        -1), {}),
    ("scipy rel_entr on probabilities", verify_kl,
     lambda p_probs, q_probs: sp.rel_entr(p_probs, q_probs).sum(-1), dict(inputs="probs")),
    ("refpg kl_diag_gaussian", verify_kl, lambda mean_p, log_std_p, mean_q, log_std_q:
     kl_diag_gaussian(mean_p, log_std_p, mean_q, log_std_q), dict(family="gaussian")),
    ("textbook Gaussian KL", verify_kl, lambda mean_p, std_p, mean_q, std_q: np.sum(
        np.log(std_q / std_p) + (std_p ** 2 + (mean_p - mean_q) ** 2) / (2 * std_q ** 2) - 0.5,
        -1), dict(family="gaussian", gaussian_scale="std")),
    ("k3 via expm1", verify_kl, lambda log_p, log_q: np.expm1(log_q - log_p) - (log_q - log_p),
     dict(estimator="k3")),
    ("k1 mean", verify_kl, lambda log_p, log_q: np.mean(log_p - log_q),
     dict(estimator="k1", reduce="mean")),
    ("refpg categorical_entropy", verify_entropy, lambda logits: categorical_entropy(logits), {}),
    ("xlogy entropy", verify_entropy, lambda probs: -sp.xlogy(probs, probs).sum(-1),
     dict(inputs="probs")),
    ("refpg diag_gaussian_entropy", verify_entropy,
     lambda log_std: diag_gaussian_entropy(log_std), dict(family="gaussian")),
]


def _size(rep):
    a = next(v for v in rep.inputs.values() if isinstance(v, np.ndarray))
    return (a.shape[0], a.shape[1] if a.ndim > 1 else 1)


@pytest.mark.parametrize("name, verifier, fn, options", BUGS, ids=[b[0] for b in BUGS])
def test_bug_is_rejected_with_a_small_counterexample(name, verifier, fn, options):
    rep = verifier(fn, **options)
    assert not rep.passed, name
    rows, width = _size(rep)
    assert rows <= 2 and width <= 3, f"{name}: {rows} x {width}\n{rep}"


@pytest.mark.parametrize("name, verifier, fn, options", CORRECT, ids=[c[0] for c in CORRECT])
def test_correct_variant_passes(name, verifier, fn, options):
    rep = verifier(fn, **options)
    assert rep.passed, str(rep)
