"""Bug catalogue for trajectory data: returns, GAE, lambda-returns, importance weights.

Each bug is a small, deliberately wrong function written the way real code
writes it (a time-major rollout-buffer loop, a per-episode function, a
vectorised batch-major expression) with the convention it CLAIMS to follow;
the matching verifier must reject it and shrink the failure to at most 4 time
steps in at most 2 rows. Every correct variant (refpg's own functions and
independently written loops) must pass. Fixed seeds (the verifiers' default
seed 0).
"""
import numpy as np
import pytest

from refpg.returns import gae, lambda_returns, reward_to_go
from refpg.verify.returns import verify_gae, verify_lambda_returns, verify_returns
from refpg.verify.weights import verify_importance_weights


# ----------------------------------------------------------------- GAE bugs (time-major loops)
def _loop(rewards, values, next_values, terminated, truncated, gamma, lam, *, boot_value,
          nonterminal, cont, lam_on_delta=False):
    """A time-major GAE loop whose three ingredients a bug replaces."""
    T = len(rewards)
    adv, last = np.zeros_like(rewards), 0.0
    for t in reversed(range(T)):
        nv = boot_value(t)
        delta = rewards[t] + gamma * nv * nonterminal(t) - values[t]
        if lam_on_delta:
            last = lam * delta + gamma * cont(t) * last
        else:
            last = delta + gamma * lam * cont(t) * last
        adv[t] = last
    return adv


def gae_no_cut(rewards, values, next_values, dones, gamma, lam):
    """CleanRL-style, but the recursion is not cut at done: advantages leak across episodes."""
    T = len(rewards)
    adv, last = np.zeros_like(rewards), 0.0
    for t in reversed(range(T)):
        delta = rewards[t] + gamma * next_values[t] * (1.0 - dones[t]) - values[t]
        adv[t] = last = delta + gamma * lam * last
    return adv


def gae_next_episode_bootstrap(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Convention C intended, but a truncated step bootstraps from values[t+1], the value of
    the NEXT episode's first state after the auto-reset (ml-agents PR #574)."""
    T = len(rewards)
    return _loop(rewards, values, next_values, terminated, truncated, gamma, lam,
                 boot_value=lambda t: values[t + 1] if t < T - 1 else next_values[t],
                 nonterminal=lambda t: 1.0 - terminated[t],
                 cont=lambda t: 1.0 - (terminated[t] | truncated[t]))


def gae_last_visited_bootstrap(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Convention C intended, but a truncated step bootstraps from V(s_{T-1}) (modular_rl's
    b[-1]; DexForce/EmbodiChain PR #612)."""
    return _loop(rewards, values, next_values, terminated, truncated, gamma, lam,
                 boot_value=lambda t: np.where(truncated[t], values[t], next_values[t]),
                 nonterminal=lambda t: 1.0 - terminated[t],
                 cont=lambda t: 1.0 - (terminated[t] | truncated[t]))


def gae_truncation_as_termination(rewards, values, next_values, terminated, truncated, gamma,
                                  lam):
    """Convention C claimed, but done = terminated | truncated masks the bootstrap (A)."""
    done = terminated | truncated
    return _loop(rewards, values, next_values, terminated, truncated, gamma, lam,
                 boot_value=lambda t: next_values[t], nonterminal=lambda t: 1.0 - done[t],
                 cont=lambda t: 1.0 - done[t])


def gae_done_off_by_one(rewards, values, next_values, dones, gamma, lam):
    """CleanRL's loop ported to a buffer whose dones are aligned with transitions (done of
    step t) but still indexed dones[t + 1], as CleanRL's obs-aligned dones are."""
    T = len(rewards)
    adv, last = np.zeros_like(rewards), 0.0
    for t in reversed(range(T)):
        nonterminal = 1.0 - (dones[t + 1] if t < T - 1 else dones[t])
        nv = values[t + 1] if t < T - 1 else next_values[t]
        delta = rewards[t] + gamma * nv * nonterminal - values[t]
        adv[t] = last = delta + gamma * lam * nonterminal * last
    return adv


def gae_lambda_on_delta(rewards, values, next_values, terminated, truncated, gamma, lam):
    """lambda multiplies the TD residual instead of the recursion: A_t = lam delta_t + ..."""
    return _loop(rewards, values, next_values, terminated, truncated, gamma, lam,
                 boot_value=lambda t: next_values[t],
                 nonterminal=lambda t: 1.0 - terminated[t],
                 cont=lambda t: 1.0 - (terminated[t] | truncated[t]), lam_on_delta=True)


def gae_truncated_overrides_terminated(rewards, values, next_values, terminated, truncated,
                                       gamma, lam):
    """Bootstraps whenever truncated, without checking terminated: wrong when gymnasium's
    TimeLimit fires on a terminal step (both flags set)."""
    return _loop(rewards, values, next_values, terminated, truncated, gamma, lam,
                 boot_value=lambda t: next_values[t],
                 nonterminal=lambda t: np.where(truncated[t], 1.0, 1.0 - terminated[t]),
                 cont=lambda t: 1.0 - (terminated[t] | truncated[t]))


def gae_batch_loop_over_wrong_axis(rewards, values, next_values, terminated, truncated, gamma,
                                   lam):
    """Receives a time-major (T, N) buffer but loops over axis 1 as if it were time."""
    out = gae(rewards, values, next_values, gamma, lam, terminated=terminated,
              truncated=truncated & ~terminated)
    return out.advantages


def returns_normalised_targets(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Value targets built from the NORMALISED advantages (returns = norm(A) + V)."""
    a = gae(rewards, values, next_values, gamma, lam, terminated=terminated,
            truncated=truncated & ~terminated).advantages
    n = (a - a.mean()) / (a.std(ddof=1) + 1e-8)
    return n, n + values


# ----------------------------------------------------------------- returns / lambda-return bugs
def rtg_discount_from_buffer_start(rewards, next_values, terminated, truncated, gamma):
    """G_t = sum_k gamma^k r_k with k counted from the start of the buffer, not from t."""
    N, T = rewards.shape
    G = np.zeros((N, T))
    for i in range(N):
        for t in range(T):
            acc = 0.0
            for k in range(t, T):
                acc += gamma ** k * rewards[i, k]
                if terminated[i, k] or truncated[i, k] or k == T - 1:
                    if not terminated[i, k]:
                        acc += gamma ** (k + 1) * next_values[i, k]
                    break
            G[i, t] = acc
    return G


def lambda_return_mixes_at_the_end(rewards, next_values, terminated, truncated, gamma, lam):
    """At an episode end the lambda-return still mixes (1 - lam) V + lam * 0."""
    N, T = rewards.shape
    G, acc = np.zeros((N, T)), np.zeros(N)
    for t in reversed(range(T)):
        end = terminated[:, t] | truncated[:, t] | (t == T - 1)
        v = np.where(terminated[:, t], 0.0, next_values[:, t])
        G[:, t] = acc = rewards[:, t] + gamma * ((1 - lam) * v + lam * np.where(end, 0.0, acc))
    return G


# ----------------------------------------------------------------- correct variants
def per_episode_gae(rewards, values, next_value, terminated, truncated, gamma, lam):
    """Independent per-episode loop (episodes layout): terminated wins over truncated."""
    nv = np.append(values[1:], 0.0 if terminated else next_value)
    delta = rewards + gamma * nv - values
    adv, last = np.zeros_like(rewards), 0.0
    for t in reversed(range(len(rewards))):
        adv[t] = last = delta[t] + gamma * lam * last
    return adv


def sb3_style(rewards, values, next_values, terminated, truncated, gamma, lam):
    """SB3: augment the reward at a time limit, then treat it as done (time-major)."""
    rewards = rewards + gamma * np.where(truncated & ~terminated, next_values, 0.0)
    dones = (terminated | truncated).astype(float)
    T = len(rewards)
    adv, last = np.zeros_like(rewards), 0.0
    for t in reversed(range(T)):
        nv = next_values[t] if t == T - 1 else values[t + 1]
        delta = rewards[t] + gamma * nv * (1.0 - dones[t]) - values[t]
        adv[t] = last = delta + gamma * lam * (1.0 - dones[t]) * last
    return adv


def refpg_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    return gae(rewards, values, next_values, gamma, lam, terminated=terminated,
               truncated=truncated & ~terminated).advantages


def per_episode_returns(rewards, next_value, terminated, gamma):
    G, acc = np.zeros_like(rewards), 0.0 if terminated else next_value
    for t in reversed(range(len(rewards))):
        G[t] = acc = rewards[t] + gamma * acc
    return G


def per_episode_lambda_returns(rewards, values, next_value, terminated, gamma, lam):
    nv = np.append(values[1:], 0.0 if terminated else next_value)
    G, acc = np.zeros_like(rewards), None
    for t in reversed(range(len(rewards))):
        tail = nv[t] if acc is None else (1 - lam) * nv[t] + lam * acc
        G[t] = acc = rewards[t] + gamma * tail
    return G


# ----------------------------------------------------------------- importance-weight bugs
def iw_ratio_inverted(log_target, log_behaviour):
    return np.exp(np.cumsum(log_behaviour - log_target))


def iw_product_of_probabilities(log_target, log_behaviour):
    """exp first, products after: 0 / 0 once the probabilities underflow."""
    return np.cumprod(np.exp(log_target)) / np.cumprod(np.exp(log_behaviour))


def iw_not_reset_at_episode_start(log_target, log_behaviour, dones):
    """Batch-major cumulative product along the row, ignoring episode boundaries."""
    return np.exp(np.cumsum(log_target - log_behaviour, axis=1))


def iw_trajectory_product_of_ratios(log_target, log_behaviour):
    """Whole-trajectory weight as the product of per-step ratios: overflows midway."""
    return np.prod(np.exp(log_target - log_behaviour))


def iw_excludes_current_step(log_target, log_behaviour):
    """Per-decision weight W_{0:t-1}: the ratio of a_t itself left out."""
    lr = log_target - log_behaviour
    return np.exp(np.cumsum(lr) - lr)


def iw_per_episode(log_target, log_behaviour):
    return np.exp(np.cumsum(log_target - log_behaviour))


def iw_batch_segmented(log_target, log_behaviour, dones):
    """Vectorised: cumulative sum, minus the cumulative sum at the previous episode end."""
    lr = log_target - log_behaviour
    c = np.cumsum(lr, axis=1)
    start = np.zeros_like(c)
    for i in range(lr.shape[0]):
        base = 0.0
        for t in range(lr.shape[1]):
            start[i, t] = base
            if dones[i, t]:
                base = c[i, t]
    return np.exp(c - start)


def iw_trajectory_log_sum(log_target, log_behaviour):
    return np.exp(np.sum(log_target) - np.sum(log_behaviour))


# ----------------------------------------------------------------- the catalogue
BUGS = [  # (name, verifier, fn, options, preset expected to match or None)
    ("GAE not cut at done (leak across episodes)", verify_gae, gae_no_cut,
     dict(layout="time_major", preset="cleanrl"), None),
    ("bootstrap from the next episode's first state", verify_gae, gae_next_episode_bootstrap,
     dict(layout="time_major"), None),
    ("bootstrap with the value of the last visited state", verify_gae,
     gae_last_visited_bootstrap, dict(layout="time_major"), None),
    ("truncation treated as termination, claimed refpg", verify_gae,
     gae_truncation_as_termination, dict(layout="time_major"), "cleanrl"),
    ("done of step t+1 instead of t (CleanRL port)", verify_gae, gae_done_off_by_one,
     dict(layout="time_major", preset="cleanrl"), None),
    ("lambda applied to delta instead of the recursion", verify_gae, gae_lambda_on_delta,
     dict(layout="time_major"), None),
    ("bootstraps when truncated even if terminated", verify_gae,
     gae_truncated_overrides_terminated, dict(layout="time_major"), None),
    ("time-major buffer treated as batch-major", verify_gae, gae_batch_loop_over_wrong_axis,
     dict(layout="time_major"), None),
    ("value targets from normalised advantages", verify_gae, returns_normalised_targets,
     dict(output="both", normalize="sb3"), None),
    ("discount gamma^t from the buffer start", verify_returns, rtg_discount_from_buffer_start,
     {}, None),
    ("lambda-return mixes lam * 0 at an episode end", verify_lambda_returns,
     lambda_return_mixes_at_the_end, {}, None),
    ("importance ratio inverted", verify_importance_weights, iw_ratio_inverted,
     dict(layout="episodes"), None),
    ("exp of log-probabilities, then products (0/0)", verify_importance_weights,
     iw_product_of_probabilities, dict(layout="episodes"), None),
    ("cumulative product not reset at episode start", verify_importance_weights,
     iw_not_reset_at_episode_start, {}, None),
    ("trajectory weight as a product of ratios (overflow)", verify_importance_weights,
     iw_trajectory_product_of_ratios, dict(layout="episodes", weights="trajectory"), None),
    ("per-decision weight excludes the current step", verify_importance_weights,
     iw_excludes_current_step, dict(layout="episodes"), None),
]

CORRECT = [
    ("refpg.returns.gae", verify_gae, refpg_gae, {}),
    ("per-episode GAE loop", verify_gae, per_episode_gae, dict(layout="episodes")),
    ("SB3-style time-major loop under preset sb3", verify_gae, sb3_style,
     dict(layout="time_major", preset="sb3")),
    ("SB3-style time-major loop under refpg (same numbers)", verify_gae, sb3_style,
     dict(layout="time_major")),
    ("refpg.returns.reward_to_go", verify_returns,
     lambda rewards, next_values, terminated, truncated, gamma: reward_to_go(
         rewards, gamma, terminated=terminated, truncated=truncated & ~terminated,
         next_values=next_values), {}),
    ("per-episode reward-to-go", verify_returns, per_episode_returns, dict(layout="episodes")),
    ("refpg.returns.lambda_returns (time-major)", verify_lambda_returns,
     lambda rewards, next_values, terminated, truncated, gamma, lam: lambda_returns(
         rewards, next_values, gamma, lam, terminated=terminated,
         truncated=truncated & ~terminated, time_major=True), dict(layout="time_major")),
    ("per-episode lambda-returns", verify_lambda_returns, per_episode_lambda_returns,
     dict(layout="episodes")),
    ("per-episode exp(cumsum(log-ratios))", verify_importance_weights, iw_per_episode,
     dict(layout="episodes")),
    ("per-episode log-weights", verify_importance_weights,
     lambda log_target, log_behaviour: np.cumsum(log_target - log_behaviour),
     dict(layout="episodes", log=True)),
    ("batch-major segmented cumulative sum", verify_importance_weights, iw_batch_segmented, {}),
    ("time-major segmented cumulative sum", verify_importance_weights,
     lambda log_target, log_behaviour, dones: iw_batch_segmented(
         log_target.T, log_behaviour.T, dones.T).T, dict(layout="time_major")),
    ("trajectory weight exp(sum - sum)", verify_importance_weights, iw_trajectory_log_sum,
     dict(layout="episodes", weights="trajectory")),
]


def _rows_steps(rep):
    """Rows and time steps of a report's counterexample (as the user received it)."""
    x = rep.inputs
    eps = {k: v for k, v in x.items() if isinstance(v, dict)}
    if eps:
        rows = {k.split("row ")[1].split(",")[0] for k in eps}
        steps = max(sum(len(next(iter(e.values()))) for k, e in eps.items()
                        if f"row {r}," in k) for r in rows)
        return len(rows), steps
    a = next(v for v in x.values() if isinstance(v, np.ndarray))
    return a.shape[::-1] if rep.conventions.get("layout") == "time_major" else a.shape


@pytest.mark.parametrize("name, verifier, fn, options, matches", BUGS,
                         ids=[b[0] for b in BUGS])
def test_bug_is_rejected_with_a_small_counterexample(name, verifier, fn, options, matches):
    rep = verifier(fn, **options)
    assert not rep.passed, name
    rows, steps = _rows_steps(rep)
    assert rows <= 2 and steps <= 4, f"{name}: counterexample {rows} x {steps}\n{rep}"
    if matches:
        assert matches in " ".join(rep.notes)


@pytest.mark.parametrize("name, verifier, fn, options", CORRECT, ids=[c[0] for c in CORRECT])
def test_correct_variant_passes(name, verifier, fn, options):
    rep = verifier(fn, **options)
    assert rep.passed, str(rep)


def test_the_claimed_convention_is_what_decides():
    # the same function is a bug under refpg's convention and correct under the peer's
    assert verify_gae(gae_truncation_as_termination, layout="time_major", preset="cleanrl").passed
    assert verify_gae(gae_last_visited_bootstrap, layout="time_major",
                      preset="modular_rl").passed is False   # modular_rl also uses b[-1] at cuts

    def d_everywhere(rewards, values, next_values, terminated, truncated, gamma, lam):
        T = len(rewards)
        end = truncated | (np.arange(T) == T - 1)[:, None]
        return _loop(rewards, values, next_values, terminated, truncated, gamma, lam,
                     boot_value=lambda t: np.where(end[t] & ~terminated[t], values[t],
                                                   next_values[t]),
                     nonterminal=lambda t: 1.0 - terminated[t],
                     cont=lambda t: 1.0 - (terminated[t] | truncated[t]))
    assert verify_gae(d_everywhere, layout="time_major", preset="modular_rl").passed
