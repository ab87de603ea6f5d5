"""refpg.verify.weights: the importance-weight verifier and its reference.

Independent routes for the reference (W1)/(W2): a per-episode Python loop with
``math.fsum`` written here, and ``refpg.off_policy.log_importance_weights`` on
a batch sampled from a random MDP (the target's log-probabilities come from the
policy, not from the batch). Tolerance: sums of at most 1000 log-ratios of size
<= 1000 in different orders: ``1e-9`` absolute on log-weights (rounding bound
``T eps max|partial sum|`` ~ 1e-10 on the long case), 1e-12 on the short ones.
"""
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from refpg.off_policy import log_importance_weights as estimator_log_weights
from refpg.mdp import random_mdp
from refpg.policies import TabularSoftmaxPolicy
from refpg.sampling import sample_batch
from refpg.verify.weights import (golden_importance_weights, importance_cases,
                                  reference_log_weights, verify_importance_weights)


def loop_log_weights(lt, lb, dones, weights):
    N, T = lt.shape
    out = np.zeros((N, T))
    for i in range(N):
        start = 0
        for t in range(T):
            if dones[i, t] or t == T - 1:
                lr = [lt[i, u] - lb[i, u] for u in range(start, t + 1)]
                for u in range(start, t + 1):
                    out[i, u] = math.fsum(lr[:u - start + 1]) if weights == "per_decision" \
                        else math.fsum(lr)
                start = t + 1
    return out


@st.composite
def _buffers(draw):
    N, T = draw(st.integers(1, 3)), draw(st.integers(1, 8))
    real = st.floats(-50, 5, allow_nan=False)
    lt = np.array(draw(st.lists(real, min_size=N * T, max_size=N * T))).reshape(N, T)
    lb = np.array(draw(st.lists(real, min_size=N * T, max_size=N * T))).reshape(N, T)
    dones = np.array(draw(st.lists(st.booleans(), min_size=N * T, max_size=N * T))).reshape(N, T)
    return {"log_target": lt, "log_behaviour": lb, "dones": dones}


@settings(max_examples=50)
@given(_buffers())
def test_reference_equals_a_per_episode_loop(x):
    for w in ("per_decision", "trajectory"):
        # 1e-12 absolute: at most 8 terms of size <= 55, fsum is exact-rounded
        assert_allclose(reference_log_weights(x, w),
                        loop_log_weights(x["log_target"], x["log_behaviour"], x["dones"], w),
                        rtol=1e-13, atol=1e-12)


def test_reference_on_the_battery_including_the_long_case():
    for c in importance_cases(0, 6):
        x = c.inputs
        for w in ("per_decision", "trajectory"):
            # the long case sums 1000 terms: 1e-9 covers T eps max|sum| with margin
            assert_allclose(reference_log_weights(x, w),
                            loop_log_weights(x["log_target"], x["log_behaviour"], x["dones"], w),
                            rtol=0, atol=1e-9, err_msg=c.name)


def test_reference_agrees_with_the_estimators_module_on_sampled_episodes():
    rng = np.random.default_rng(3)
    mdp = random_mdp(rng, 4, 3, n_terminal=1, horizon=6)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta_b, theta = rng.standard_normal(12), rng.standard_normal(12)
    batch = sample_batch(mdp, policy, theta_b, 20, rng, horizon=6)
    expected = estimator_log_weights(batch, policy, theta, per_decision=True)
    whole = estimator_log_weights(batch, policy, theta)
    for i in range(batch.rewards.shape[0]):
        L = int(batch.mask[i].sum())
        lt = policy.log_prob(theta, batch.states[i, :L], batch.actions[i, :L])
        x = {"log_target": lt[None], "log_behaviour": batch.log_probs[i, :L][None],
             "dones": (batch.terminated | batch.truncated)[i, :L][None]}
        # same sums of the same terms: 1e-13
        assert_allclose(reference_log_weights(x)[0], expected[i, :L], rtol=0, atol=1e-13)
        assert_allclose(reference_log_weights(x, "trajectory")[0], whole[i], rtol=0, atol=1e-13)


@pytest.mark.parametrize("layout", ["batch_major", "time_major", "episodes"])
@pytest.mark.parametrize("weights", ["per_decision", "trajectory"])
@pytest.mark.parametrize("log", [True, False])
def test_the_reference_passes_in_every_layout(layout, weights, log):
    def fn(log_target, log_behaviour, dones=None):
        if layout == "episodes":
            lw = np.cumsum(log_target - log_behaviour)
            lw = lw if weights == "per_decision" else lw[-1]
        else:
            x = {"log_target": log_target, "log_behaviour": log_behaviour, "dones": dones}
            if layout == "time_major":
                x = {k: v.T for k, v in x.items()}
            lw = reference_log_weights(x, weights)
            lw = lw.T if layout == "time_major" else lw
        return lw if log else np.exp(lw)
    rep = verify_importance_weights(fn, layout=layout, weights=weights, log=log)
    assert rep.passed, str(rep)


def test_weights_mode_skips_what_float64_cannot_hold_and_says_so():
    rep = verify_importance_weights(lambda log_target, log_behaviour:
                                    np.exp(np.cumsum(log_target - log_behaviour)),
                                    layout="episodes")
    assert rep.passed and any("skipped" in n for n in rep.notes)
    rep = verify_importance_weights(lambda log_target, log_behaviour:
                                    np.cumsum(log_target - log_behaviour),
                                    layout="episodes", log=True)
    assert rep.passed and not any("skipped" in n for n in rep.notes)


def test_battery_has_the_numerical_traps():
    cases = {c.name: c for c in importance_cases(0, 24)}
    ext = cases["extreme log-probabilities (exp(log p) / exp(log q) is 0 / 0)"].inputs
    assert np.exp(ext["log_target"][0, 0]) == 0.0                     # underflows in float64
    back = cases["running weight leaves the float64 range and comes back"].inputs
    lw = reference_log_weights(back)
    assert lw.max() > 709.8 and abs(lw[0, -1]) < 700                # leaves and returns
    long = [c for n, c in cases.items() if n.startswith("long")][0].inputs
    assert np.sum(long["log_target"]) < -745                         # the product underflows
    assert np.max(np.abs(reference_log_weights(long))) < 700


@pytest.mark.parametrize("bad, word", [
    (lambda **kw: 1 / 0, "raised"),
    (lambda log_target, **kw: np.full(log_target.shape, np.inf), "non-finite"),
    (lambda log_target, **kw: log_target[..., :-1], "shape"),
    (lambda **kw: "weights", "non-numeric"),
])
def test_broken_user_functions_give_a_failed_report(bad, word):
    for layout in ("batch_major", "episodes"):
        rep = verify_importance_weights(bad, layout=layout, n_random=2)
        assert not rep.passed and word in rep.problem, rep.problem


def test_bad_options_raise():
    f = lambda log_target, log_behaviour: log_target  # noqa: E731
    with pytest.raises(ValueError, match="weights"):
        verify_importance_weights(f, weights="whole")
    with pytest.raises(ValueError, match="log"):
        verify_importance_weights(f, log="maybe")


def test_runs_in_seconds():
    t0 = time.perf_counter()
    rep = verify_importance_weights(lambda log_target, log_behaviour, dones: np.exp(
        np.cumsum(log_target - log_behaviour, axis=1)))          # not reset: fails, shrinks
    assert not rep.passed and time.perf_counter() - t0 < 5.0


def test_golden_vectors_are_deterministic_and_match_the_loop():
    from refpg.verify import vectors
    a, b = golden_importance_weights(), golden_importance_weights()
    assert vectors.to_json(a[2]) == vectors.to_json(b[2])
    for v in a[2]:
        x = {k: np.array(val) for k, val in v["inputs"].items()}
        for w, key in (("per_decision", "log_weights_per_decision"),
                       ("trajectory", "log_weights_trajectory")):
            assert_allclose(v["expected"][key],
                            loop_log_weights(x["log_target"], x["log_behaviour"],
                                             x["dones"].astype(bool), w), rtol=0, atol=1e-12)
