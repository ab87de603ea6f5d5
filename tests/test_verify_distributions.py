"""refpg.verify.distributions: KL / entropy verifiers, the KL estimators and their moments.

Independent routes: scipy (``scipy.special.rel_entr``, ``xlogy``,
``log_softmax``) and the textbook Gaussian formulas written here, never
refpg.distributions. Tolerances: the verifiers' defaults (``rtol = 1e-9``,
``atol = 1e-10``) must accept these float64 routes, whose absolute errors are
``~eps * max|logit|`` ~ 2e-13 at logits of 1000; direct comparisons use 1e-12.
"""
import time

import numpy as np
import pytest
import scipy.special as sp
from numpy.testing import assert_allclose

from refpg.verify.distributions import (KL_ESTIMATORS, golden_entropy, golden_kl,
                                        kl_estimator_moments, kl_estimator_samples, verify_entropy,
                                        verify_kl)


def scipy_kl(p_logits, q_logits):
    lp, lq = sp.log_softmax(p_logits, axis=-1), sp.log_softmax(q_logits, axis=-1)
    return np.sum(np.exp(lp) * (lp - lq), axis=-1)


def textbook_gaussian_kl(mean_p, std_p, mean_q, std_q):
    """torch.distributions' Normal-Normal KL, summed over components."""
    var_ratio = (std_p / std_q) ** 2
    t1 = ((mean_p - mean_q) / std_q) ** 2
    return 0.5 * np.sum(var_ratio + t1 - 1 - np.log(var_ratio), axis=-1)


CORRECT_KL = [
    ("scipy log_softmax, logits", scipy_kl, {}),
    ("scipy rel_entr, probabilities", lambda p_probs, q_probs: sp.rel_entr(p_probs, q_probs)
     .sum(-1), dict(inputs="probs")),
    ("log-probabilities", lambda p_log_probs, q_log_probs: np.sum(
        np.exp(p_log_probs) * (p_log_probs - q_log_probs), -1), dict(inputs="log_probs")),
    ("reverse direction", lambda p_logits, q_logits: scipy_kl(q_logits, p_logits),
     dict(direction="qp")),
    ("mean over the batch", lambda p_logits, q_logits: scipy_kl(p_logits, q_logits).mean(),
     dict(reduce="mean")),
    ("Gaussian, std", textbook_gaussian_kl, dict(family="gaussian", gaussian_scale="std")),
    ("Gaussian, log_std", lambda mean_p, log_std_p, mean_q, log_std_q: textbook_gaussian_kl(
        mean_p, np.exp(log_std_p), mean_q, np.exp(log_std_q)), dict(family="gaussian")),
    ("Gaussian, reverse, sum", lambda mean_p, std_p, mean_q, std_q: textbook_gaussian_kl(
        mean_q, std_q, mean_p, std_p).sum(),
     dict(family="gaussian", gaussian_scale="std", direction="qp", reduce="sum")),
    ("k1 (Spinning Up)", lambda log_p, log_q: log_p - log_q, dict(estimator="k1")),
    ("k2 (baselines)", lambda log_p, log_q: 0.5 * (log_q - log_p) ** 2, dict(estimator="k2")),
    ("k3 (CleanRL, from the log-ratio)", lambda log_p, log_q: np.expm1(log_q - log_p)
     - (log_q - log_p), dict(estimator="k3")),
    ("k3 mean (SB3)", lambda log_p, log_q: np.mean(np.exp(log_q - log_p) - 1 - (log_q - log_p)),
     dict(estimator="k3", reduce="mean")),
]


@pytest.mark.parametrize("name, fn, options", CORRECT_KL, ids=[c[0] for c in CORRECT_KL])
def test_independent_kl_implementations_pass(name, fn, options):
    rep = verify_kl(fn, **options)
    assert rep.passed, str(rep)


CORRECT_ENTROPY = [
    ("xlogy on probabilities", lambda probs: -np.sum(sp.xlogy(probs, probs), -1),
     dict(inputs="probs")),
    ("scipy entropy of softmax", lambda logits: -np.sum(sp.softmax(logits, -1)
                                                        * sp.log_softmax(logits, -1), -1), {}),
    ("log-probabilities, mean", lambda log_probs: np.mean(-np.sum(np.exp(log_probs) * log_probs,
                                                                  -1)),
     dict(inputs="log_probs", reduce="mean")),
    ("Gaussian from std", lambda std: np.sum(np.log(std) + 0.5 * np.log(2 * np.pi * np.e), -1),
     dict(family="gaussian", gaussian_scale="std")),
    ("Gaussian, mean accepted and ignored", lambda mean, log_std: np.sum(
        log_std + 0.5 + 0.5 * np.log(2 * np.pi), -1) + 0 * mean.sum(-1),
     dict(family="gaussian")),
]


@pytest.mark.parametrize("name, fn, options", CORRECT_ENTROPY, ids=[c[0] for c in CORRECT_ENTROPY])
def test_independent_entropy_implementations_pass(name, fn, options):
    rep = verify_entropy(fn, **options)
    assert rep.passed, str(rep)
    assert not rep.notes or "mean" not in " ".join(rep.notes)


def test_probability_inputs_skip_infinite_kls_and_say_so():
    rep = verify_kl(lambda p_probs, q_probs: sp.rel_entr(p_probs, q_probs).sum(-1),
                    inputs="probs")
    assert any("infinite KL" in n for n in rep.notes)
    assert rep.n_cases >= 25


def test_estimator_moments_by_enumeration():
    rng = np.random.default_rng(0)
    zp, zq = rng.normal(0, 1, (5, 4)), rng.normal(0, 1, (5, 4))
    kl = scipy_kl(zp, zq)
    lp, lq = sp.log_softmax(zp, -1), sp.log_softmax(zq, -1)
    p, r = np.exp(lp), np.exp(lq - lp)
    # E_p[k1] = E_p[k3] = KL(p || q): identities, sum_a p_a r_a = sum_a q_a = 1
    for k in ("k1", "k3"):
        assert_allclose(kl_estimator_moments(zp, zq, k)[0], kl, rtol=1e-12)
    # E_p[k2] and the variances by the explicit sums written here
    k2 = 0.5 * (lq - lp) ** 2
    assert_allclose(kl_estimator_moments(zp, zq, "k2")[0], np.sum(p * k2, -1), rtol=1e-12)
    k3 = r - 1 - np.log(r)
    var3 = np.sum(p * k3 ** 2, -1) - np.sum(p * k3, -1) ** 2
    assert_allclose(kl_estimator_moments(zp, zq, "k3")[1], var3, rtol=1e-9)
    # per-sample k3 is accurate where r - 1 - log r cancels: x = 1e-9 gives x^2/2
    assert_allclose(kl_estimator_samples(0.0, 1e-9, "k3"), 0.5e-18, rtol=1e-8)
    assert set(KL_ESTIMATORS) == {"k1", "k2", "k3"}


def test_estimator_reports_give_the_exact_bias():
    rep = verify_kl(lambda log_p, log_q: 0.5 * (log_q - log_p) ** 2, estimator="k2")
    assert rep.passed and "biased" in rep.departures[0]
    rep = verify_kl(lambda log_p, log_q: log_p - log_q, estimator="k1")
    assert "unbiased" in rep.departures[0]


def test_direction_qp_reports_its_departure():
    rep = verify_kl(scipy_kl, direction="qp")
    assert not rep.passed and "KL(q || p)" in rep.departures[0]
    assert rep.inputs["p_logits"].shape[0] == 1          # shrunk to one distribution


@pytest.mark.parametrize("bad, word", [
    (lambda **kw: 1 / 0, "raised"),
    (lambda p_logits, q_logits: np.full(p_logits.shape[0], np.nan), "non-finite"),
    (lambda p_logits, q_logits: p_logits, "shape"),
    (lambda p_logits, q_logits: [["a"]], "non-numeric"),
])
def test_broken_user_functions_give_a_failed_report(bad, word):
    rep = verify_kl(bad, n_random=2)
    assert not rep.passed and word in rep.problem, rep.problem
    rep.to_json()


def test_bad_options_raise():
    with pytest.raises(ValueError, match="direction"):
        verify_kl(scipy_kl, direction="old_new")
    with pytest.raises(ValueError, match="pq"):
        verify_kl(scipy_kl, estimator="k3", direction="qp")
    with pytest.raises(ValueError, match="family"):
        verify_entropy(scipy_kl, family="beta")


def test_run_in_seconds():
    t0 = time.perf_counter()
    verify_kl(scipy_kl, direction="qp")                       # fails and shrinks
    verify_kl(textbook_gaussian_kl, family="gaussian", gaussian_scale="std")
    verify_entropy(lambda logits: -np.sum(sp.softmax(logits, -1) * np.log(sp.softmax(logits,
                                                                                     -1)), -1))
    assert time.perf_counter() - t0 < 5.0


def test_golden_vectors_are_deterministic_and_match_scipy():
    from refpg.verify import vectors
    for gen in (golden_kl, golden_entropy):
        assert vectors.to_json(gen()[2]) == vectors.to_json(gen()[2])
    for v in golden_kl()[2]:
        x = {k: np.array(val, float) for k, val in v["inputs"].items()}
        if "p_logits" in x:
            want = scipy_kl(x["p_logits"], x["q_logits"])
        elif "mean_p" in x:
            want = textbook_gaussian_kl(x["mean_p"], np.exp(x["log_std_p"]), x["mean_q"],
                                        np.exp(x["log_std_q"]))
        else:
            want = x["log_p"] - x["log_q"]
            assert_allclose(v["expected"]["k1"], want, rtol=1e-12, atol=1e-15)
            continue
        # scipy / textbook routes: absolute error ~eps * max|input| (inputs up to 1e5)
        assert_allclose(v["expected"]["kl_pq"], want, rtol=1e-9,
                        atol=1e-12 * max(1.0, np.max(np.abs(np.concatenate(
                            [a.ravel() for a in x.values()])))))
    for v in golden_entropy()[2]:
        x = {k: np.array(val, float) for k, val in v["inputs"].items()}
        if "logits" in x:
            want = -np.sum(sp.xlogy(sp.softmax(x["logits"], -1), sp.softmax(x["logits"], -1)), -1)
        else:
            want = np.sum(x["log_std"] + 0.5 * np.log(2 * np.pi * np.e), -1)
        assert_allclose(v["expected"]["entropy"], want, rtol=1e-9, atol=1e-12)


@pytest.mark.torch
def test_torch_distributions_pass():
    torch = pytest.importorskip("torch")
    D = torch.distributions

    def cat_kl(p_logits, q_logits):
        return D.kl_divergence(D.Categorical(logits=torch.as_tensor(p_logits)),
                               D.Categorical(logits=torch.as_tensor(q_logits)))

    def normal_kl(mean_p, std_p, mean_q, std_q):
        p = D.Independent(D.Normal(torch.as_tensor(mean_p), torch.as_tensor(std_p)), 1)
        q = D.Independent(D.Normal(torch.as_tensor(mean_q), torch.as_tensor(std_q)), 1)
        return D.kl_divergence(p, q)

    # torch's _kl_categorical_categorical sets a term to inf wherever q.probs == 0, i.e.
    # wherever q's probability underflows, although the KL of the logits is finite: the
    # verifier finds it and shrinks it to two actions, logits (0, 0) vs (-1000, 0)
    rep = verify_kl(cat_kl)
    assert not rep.passed and rep.n_failed == 1 and "non-finite" in rep.problem
    assert rep.inputs["q_logits"].tolist() == [[-1000.0, 0.0]]
    # KL = 1/2 log(1/2 / e^-1000) + 1/2 log(1/2 / 1) = 500 - log 2 (q_1 = 1 - e^-1000)
    assert abs(rep.expected[0] - (500 - np.log(2))) < 1e-9
    assert verify_kl(normal_kl, family="gaussian", gaussian_scale="std").passed
    assert verify_entropy(lambda logits: D.Categorical(logits=torch.as_tensor(logits))
                          .entropy()).passed
    # CleanRL's approx_kl (k3) on tensors
    assert verify_kl(lambda log_p, log_q: ((torch.as_tensor(log_q - log_p)).exp() - 1)
                     - torch.as_tensor(log_q - log_p), estimator="k3").passed
