"""A catalogue of real policy-gradient estimator bugs that the V2 verifiers must reject,
and correct variants (refpg's reference and independently written formulations) that
must pass. Every bug is a small deliberately wrong NumPy function in the calling
convention of refpg.verify.estimators; derivations/verify_estimators.md#bug-catalogue
tabulates them with the mode that catches each.

For the statistical mode the EXACT bias of every bug is computed independently, by
calling the bug on every enumerated trajectory (or ordered pair of trajectories, for
batch-level bugs) with its probability, and a rejection is asserted only where that
bias exceeds 1.4 times the test's detectable bias (power >= 0.9 is proved at 1x; at
1.4x a miss needs a ~3.7-sigma fluctuation), so no assertion rests on a lucky seed.
"""
import numpy as np
import pytest

from refpg import estimators as E
from refpg.batch import Batch
from refpg.evaluation import evaluate_finite_horizon
from refpg.moments import enumerate_trajectories
from refpg.policies.tabular import TabularSoftmaxPolicy
from refpg.verify import estimators as VE
from refpg.verify import stats as VS
from refpg.verify.estimators import EstimatorClaim, exact_estimator_mean, verify_estimator
from refpg.verify.stats import verify_estimator_mean


# --------------------------------------------------------------------------- helpers
def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def rtg(rewards, gamma):
    """Per-row reward-to-go; padding rewards are 0, so no mask is needed."""
    G = np.zeros_like(rewards)
    acc = np.zeros(rewards.shape[0], dtype=rewards.dtype)
    for t in reversed(range(rewards.shape[1])):
        acc = rewards[:, t] + gamma * acc
        G[:, t] = acc
    return G


def score_sum(logits, states, actions, c):
    """sum_t c_t grad_z log softmax(z[s_t])_{a_t} = sum_t c_t (e_{a_t} - pi(.|s_t)) in row s_t."""
    pi = softmax(logits)
    grad = np.zeros_like(logits)
    np.add.at(grad, (states, actions), c)
    np.add.at(grad, states, -c[..., None] * pi[states])
    return grad


def disc(gamma, T):
    return gamma ** np.arange(T)


def rtg_coefficients(rewards, mask, gamma):
    return np.where(mask, disc(gamma, rewards.shape[1]) * rtg(rewards, gamma), 0.0)


# --------------------------------------------------------------------------- correct variants
def vectorised(logits, states, actions, rewards, mask, gamma):
    """(G3), the docstring's NumPy example."""
    return score_sum(logits, states, actions, rtg_coefficients(rewards, mask, gamma)) / len(rewards)


def refpg_reference(logits, states, actions, rewards, mask, gamma):
    """refpg.estimators.reinforce_reward_to_go on a Batch built from the arrays."""
    lengths = mask.sum(axis=1)
    truncated = np.zeros_like(mask)
    truncated[np.arange(len(mask)), lengths - 1] = True
    batch = Batch(states=states, actions=actions, rewards=rewards, log_probs=np.zeros_like(rewards),
                  next_states=np.zeros_like(states), terminated=np.zeros_like(mask),
                  truncated=truncated, mask=mask)
    policy = TabularSoftmaxPolicy(*logits.shape)
    return E.reinforce_reward_to_go(batch, policy, logits.ravel(), gamma).reshape(logits.shape)


def pseudo_loss_complex_step(logits, states, actions, rewards, mask, gamma):
    """Gradient of the pseudo-loss (PL1) -(1/N) sum c_t log pi(a_t|s_t), by complex step:
    the route autodiff code takes (claim sign='loss')."""
    c = rtg_coefficients(rewards, mask, gamma)

    def loss(z):
        logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        return -np.sum(c * logp[states, actions]) / len(rewards)

    grad = np.zeros(logits.size)
    for k in range(logits.size):
        dz = np.zeros(logits.size, dtype=complex)
        dz[k] = 1e-30j
        grad[k] = loss(logits + dz.reshape(logits.shape)).imag / 1e-30
    return grad.reshape(logits.shape)


def episodes_loop(logits, states, actions, rewards, mask, gamma):
    """Per-episode lists (layout='episodes'), explicit double sum for G_t."""
    pi = softmax(logits)
    grad = np.zeros_like(logits)
    for s, a, r in zip(states, actions, rewards):
        for t in range(len(r)):
            G = sum(gamma ** (u - t) * r[u] for u in range(t, len(r)))
            grad[s[t]] += gamma ** t * G * ((np.arange(logits.shape[1]) == a[t]) - pi[s[t]])
    return grad / len(rewards)


def sb3_style(logits, states, actions, rewards, mask, gamma, values):
    """-mean over valid steps of (G_t - V(s_t)) log pi (SB3/CleanRL without normalisation);
    claim: uniform weighting, value baseline, sign='loss', reduction='steps'."""
    adv = np.where(mask, rtg(rewards, gamma) - values, 0.0)
    return -score_sum(logits, states, actions, adv) / mask.sum()


def float32_vectorised(logits, states, actions, rewards, mask, gamma):
    out = vectorised(logits.astype(np.float32), states, actions, rewards.astype(np.float32),
                     mask, np.float32(gamma))
    return out.astype(np.float32)


CORRECT = [
    ("refpg_reference", refpg_reference, {}),
    ("vectorised", vectorised, {}),
    ("pseudo_loss_complex_step", pseudo_loss_complex_step, {"sign": "loss"}),
    ("episodes_loop", episodes_loop, {"layout": "episodes"}),
    ("sb3_style", sb3_style, {"weighting": "uniform", "baseline": "value", "sign": "loss",
                              "reduction": "steps"}),
]


# --------------------------------------------------------------------------- the bugs
def sign_error(logits, states, actions, rewards, mask, gamma):
    """Returns the gradient of the loss while claiming the objective's (sign='ascent')."""
    return -vectorised(logits, states, actions, rewards, mask, gamma)


def rtg_off_by_one(logits, states, actions, rewards, mask, gamma):
    """Reward-to-go that starts one step late: G_{t+1} instead of G_t (drops r_t)."""
    G = rtg(rewards, gamma)
    G1 = np.zeros_like(G)
    G1[:, :-1] = G[:, 1:]
    c = np.where(mask, disc(gamma, rewards.shape[1]) * G1, 0.0)
    return score_sum(logits, states, actions, c) / len(rewards)


def gamma_twice(logits, states, actions, rewards, mask, gamma):
    """G_t discounted from the episode start (sum_{t'>=t} gamma^t' r_t'), then times gamma^t."""
    G_from_start = rtg(rewards * disc(gamma, rewards.shape[1]), 1.0)
    c = np.where(mask, disc(gamma, rewards.shape[1]) * G_from_start, 0.0)
    return score_sum(logits, states, actions, c) / len(rewards)


def discount_wrong_direction(logits, states, actions, rewards, mask, gamma):
    """Forward accumulation: sum_{t'<=t} gamma^(t-t') r_t' (past rewards) instead of future."""
    G = np.zeros_like(rewards)
    acc = np.zeros(len(rewards))
    for t in range(rewards.shape[1]):
        acc = rewards[:, t] + gamma * acc
        G[:, t] = acc
    c = np.where(mask, disc(gamma, rewards.shape[1]) * G, 0.0)
    return score_sum(logits, states, actions, c) / len(rewards)


def action_dependent_baseline(logits, states, actions, rewards, mask, gamma):
    """Baseline = batch mean of G_t over the steps that took the same action a_t."""
    G = rtg(rewards, gamma)
    b = np.zeros_like(G)
    for a in np.unique(actions[mask]):
        sel = mask & (actions == a)
        b[sel] = G[sel].mean()
    return score_sum(logits, states, actions, np.where(mask, G - b, 0.0)) / len(rewards)


def advantage_normalisation(logits, states, actions, rewards, mask, gamma, values):
    """(A - mean) / (std + 1e-8) over the batch's valid steps (SB3, CleanRL), while claiming
    the plain value-baseline estimator."""
    adv = (rtg(rewards, gamma) - values)[mask]
    c = np.zeros_like(rewards)
    c[mask] = (adv - adv.mean()) / (adv.std() + 1e-8)
    return score_sum(logits, states, actions, c) / len(rewards)


def softmax_wrong_axis(logits, states, actions, rewards, mask, gamma):
    """log_softmax over the states (torch dim=0) instead of the actions; gradient exact for
    that wrong policy: d log p(a|s)/d z[s', a'] = 1{s'=s, a'=a} - p[s', a] 1{a'=a}."""
    c = rtg_coefficients(rewards, mask, gamma)
    p = softmax(logits, axis=0)
    grad = np.zeros_like(logits)
    np.add.at(grad, (states, actions), c)
    for i, t in zip(*np.nonzero(mask)):
        grad[:, actions[i, t]] -= c[i, t] * p[:, actions[i, t]]
    return grad / len(rewards)


def wrong_action(logits, states, actions, rewards, mask, gamma):
    """The log-probability of the next action: actions shifted by one step against rewards."""
    a1 = actions.copy()
    a1[:, :-1] = actions[:, 1:]
    return score_sum(logits, states, a1, rtg_coefficients(rewards, mask, gamma)) / len(rewards)


def steps_mean_claimed_episodes(logits, states, actions, rewards, mask, gamma):
    """Mean over valid time steps while claiming the mean over episodes."""
    return score_sum(logits, states, actions, rtg_coefficients(rewards, mask, gamma)) / mask.sum()


def reinforce_unmasked(logits, states, actions, rewards, mask, gamma):
    """REINFORCE summing the scores over every column, padding included (no mask)."""
    R = (rewards * disc(gamma, rewards.shape[1])).sum(axis=1)
    c = np.repeat(R[:, None], rewards.shape[1], axis=1)
    return score_sum(logits, states, actions, c) / len(rewards)


def discount_no_reset(logits, states, actions, rewards, mask, gamma):
    """Reward-to-go over the episodes laid back to back, without resetting at boundaries:
    each episode's G_t also collects gamma^(L-t) times the next episode's return."""
    flat = rewards[mask]
    G = np.zeros_like(flat)
    acc = 0.0
    for k in reversed(range(flat.size)):
        acc = flat[k] + gamma * acc
        G[k] = acc
    Gm = np.zeros_like(rewards)
    Gm[mask] = G
    c = np.where(mask, disc(gamma, rewards.shape[1]) * Gm, 0.0)
    return score_sum(logits, states, actions, c) / len(rewards)


def loo_includes_self(logits, states, actions, rewards, mask, gamma):
    """'Leave-one-out' baseline that averages over all episodes, the episode itself included."""
    G = rtg(rewards, gamma)
    c = np.where(mask, disc(gamma, rewards.shape[1]) * (G - G.mean(axis=0, keepdims=True)), 0.0)
    return score_sum(logits, states, actions, c) / len(rewards)


def dropped_gamma_t(logits, states, actions, rewards, mask, gamma):
    """Claims grad J_H (discounted weighting) but weights every step 1 (G4)."""
    c = np.where(mask, rtg(rewards, gamma), 0.0)
    return score_sum(logits, states, actions, c) / len(rewards)


def steps_count_padding(logits, states, actions, rewards, mask, gamma):
    """Mean over 'steps' that divides by N * T, padding included (loss.mean() on padded tensors)."""
    c = np.where(mask, rtg(rewards, gamma), 0.0)
    return -score_sum(logits, states, actions, c) / rewards.size


#: name, function, claim, statistical mode catches it, batch-level (exact mean by pairs),
#: n_batches for the statistical mode
BUGS = [
    ("sign_error", sign_error, {}, True, False, 2500),
    ("rtg_off_by_one", rtg_off_by_one, {}, True, False, 2500),
    ("gamma_twice", gamma_twice, {}, True, False, 10000),
    ("discount_wrong_direction", discount_wrong_direction, {}, True, False, 2500),
    ("action_dependent_baseline", action_dependent_baseline,
     {"weighting": "uniform", "baseline": "leave_one_out"}, True, True, 2500),
    ("advantage_normalisation", advantage_normalisation,
     {"weighting": "uniform", "baseline": "value"}, True, True, 10000),
    ("softmax_wrong_axis", softmax_wrong_axis, {}, True, False, 2500),
    ("wrong_action", wrong_action, {}, True, False, 2500),
    ("steps_mean_claimed_episodes", steps_mean_claimed_episodes, {}, True, True, 2500),
    ("reinforce_unmasked", reinforce_unmasked, {"estimator": "reinforce"}, True, False, 2500),
    ("discount_no_reset", discount_no_reset, {}, False, True, 2500),
    ("loo_includes_self", loo_includes_self, {"baseline": "leave_one_out"}, True, True, 2500),
    ("dropped_gamma_t", dropped_gamma_t, {}, True, False, 5000),
    ("steps_count_padding", steps_count_padding,
     {"weighting": "uniform", "sign": "loss", "reduction": "steps"}, True, True, 2500),
]
IDS = [b[0] for b in BUGS]


# --------------------------------------------------------------------------- exact bias
_MODEL = {}


def _model():
    """The statistical mode's default model (seed 0, horizon 3, gamma 0.7), enumerated."""
    if not _MODEL:
        mdp, policy, theta = VS._statistical_model(0, 3, 0.7)
        batch, p = enumerate_trajectories(mdp, policy.probs_table(theta), 3)
        V = evaluate_finite_horizon(mdp, policy.probs_table(theta), 3).V
        values = np.where(batch.mask, V[np.arange(3)[None, :], batch.states], 0.0)
        _MODEL.update(mdp=mdp, policy=policy, theta=theta, batch=batch, p=p, values=values)
    return _MODEL


def exact_user_mean(fn, claim, n_episodes, *, ordered=False):
    """E[user estimate] in refpg's convention: the user's function on every trajectory
    (n_episodes = 1) or every pair of trajectories (2), weighted by probability. A
    function that ignores the order of the episodes needs only the unordered pairs
    (weight 2 p_x p_y for x != y); ``ordered=True`` enumerates all M^2."""
    m = _model()
    b, p = m["batch"], m["p"]
    M = p.size
    if n_episodes == 1:
        rows, weights = np.arange(M)[:, None], p
    else:
        x, y = np.meshgrid(np.arange(M), np.arange(M), indexing="ij")
        keep = np.ones_like(x, bool) if ordered else x <= y
        rows = np.stack([x[keep], y[keep]], axis=1)
        weights = p[rows[:, 0]] * p[rows[:, 1]] * np.where(
            ordered | (rows[:, 0] == rows[:, 1]), 1.0, 2.0)
    logits = m["theta"].reshape(4, 2)
    total = np.zeros(m["theta"].size)
    for r, w in zip(rows, weights):
        args = (logits, b.states[r], b.actions[r], b.rewards[r], b.mask[r], m["mdp"].gamma)
        out = fn(*args, values=m["values"][r]) if claim.baseline_kind == "value" else fn(*args)
        total += w * VE._ascent_per_episode(out, claim, b.mask[r])
    return total


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name, fn, opts", CORRECT, ids=[c[0] for c in CORRECT])
def test_correct_variants_pass_both_modes(name, fn, opts):
    rep = verify_estimator(fn, **opts)
    assert rep.passed, str(rep)
    assert rep.worst_error < 1e-12        # float64 routes differ by rounding only
    rep = verify_estimator_mean(fn, n_batches=1000, **opts)
    assert rep.passed, str(rep)


def test_float32_variant_fails_deterministic_at_1e_8_but_passes_at_1e_5_and_statistically():
    assert not verify_estimator(float32_vectorised).passed
    assert verify_estimator(float32_vectorised, rtol=1e-5).passed
    assert verify_estimator_mean(float32_vectorised, n_batches=1000).passed


def test_claims_checked_by_the_catalogue_are_what_the_correct_variants_compute():
    # each bug is wrong for its claim, not for a typo in the claim: an independent correct
    # function exists for every claim used (loop reference of test_verify_estimators.py
    # covers all; here refpg's own named estimator as the user function)
    for _, _, opts, *_ in BUGS:
        def named(logits, states, actions, rewards, mask, gamma, values=None, opts=opts):
            claim = {k: v for k, v in opts.items() if k != "layout"}
            return VE.reference_estimate(logits, states, actions, rewards, mask, gamma,
                                         values=values, **claim)
        assert verify_estimator(named, **opts).passed


@pytest.mark.parametrize("name, fn, opts, stat, batch_level, K", BUGS, ids=IDS)
def test_every_bug_is_rejected_in_deterministic_mode(name, fn, opts, stat, batch_level, K):
    rep = verify_estimator(fn, **opts)
    assert not rep.passed and rep.problem == "mismatch", str(rep)
    assert rep.inputs is not None and "shrunk from" in str(rep)


@pytest.mark.parametrize("name, fn, opts, stat, batch_level, K", BUGS, ids=IDS)
def test_statistical_mode_against_the_exact_bias_of_each_bug(name, fn, opts, stat, batch_level, K):
    claim = EstimatorClaim(**opts)
    N = 2 if batch_level else 4          # pair enumeration for batch-level bugs
    m = _model()
    mu = exact_estimator_mean(m["mdp"], m["policy"], m["theta"], 3, estimator=claim.estimator,
                              weighting=claim.weighting, baseline=claim.baseline, n_episodes=N)
    bias = exact_user_mean(fn, claim, 2 if batch_level else 1,
                           ordered=name == "discount_no_reset") - mu   # the leak is ordered
    rep = verify_estimator_mean(fn, n_batches=K, n_episodes=N, **opts)
    if rep.test is None:
        # rejected by the range check on a batch: exact (no false alarm), so a catch is a
        # catch even for a bug below the test's detectable bias; whether some batch falls
        # out of range depends on the sampler's draws (discount_no_reset is caught this
        # way with the streaming sampler's stream for this seed)
        assert not rep.passed and "out of range" in rep.problem
        return
    det = rep.test.detectable_bias
    if stat:
        # the exact bias is well beyond what the test detects with power 0.9
        assert np.any(np.abs(bias) > 1.4 * det), (bias, det)
        assert not rep.passed, str(rep)
    else:
        # discount_no_reset: biased (the leak gamma^(L-t) G_next correlates with the score
        # through the episode length L) but far below the detectable bias: not caught
        assert np.all(np.abs(bias) <= 0.5 * det) and np.linalg.norm(bias) > 1e-3
        assert rep.passed, str(rep)


def test_the_no_reset_leak_is_unbiased_when_every_episode_has_full_length():
    # gamma^(L-t) is then a constant and E[psi_t] = 0 kills the leak: exactly zero bias
    from refpg.mdp import random_mdp
    from refpg.moments import exact_moments
    rng = np.random.default_rng(4)
    mdp = random_mdp(rng, 2, 2, gamma=0.8, horizon=2)            # no terminal state
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(rng, scale=1.0)

    def as_user(batch):
        return discount_no_reset(theta.reshape(2, 2), batch.states, batch.actions,
                                 batch.rewards, batch.mask, mdp.gamma).ravel()

    ex = exact_moments(as_user, mdp, policy.probs_table(theta), n_episodes=2)
    grad = exact_estimator_mean(mdp, policy, theta, 2, n_episodes=2)
    np.testing.assert_allclose(ex.mean, grad, rtol=1e-12, atol=1e-14)  # exact enumeration
