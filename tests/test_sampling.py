"""The sampler on finite MDPs (refpg.sampling, derivations/sampling.md).

Monte-Carlo checks are Pearson chi-square tests of multinomial counts against
probabilities computed here by an independent route (products of the tables
``pi`` and ``P`` and a forward recursion over time, never the alias tables).
Each test rejects when the chi-square p-value is below ``ALPHA = 1e-6`` (the
false-alarm rate of one test; the seeds are fixed, so a test that passes once
passes always). Categories of probability 0 must have count 0 (exact check).
Categories with expected count below 20 are pooled, so every expected count is
>= 20, where the chi-square approximation of the tail at 1e-6 is accurate well
within a factor 10. ``test_chi_square_has_power``
shows that a 3 % error in one probability is rejected at these sample sizes.
"""
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import chi2

from refpg import FiniteMDP, TabularSoftmaxPolicy, random_mdp
from refpg.batch import Batch
from refpg.sampling import (_WIDTH, alias_table, joint_table, sample_batch,
                            sample_from_table, sample_transitions)
from refpg.transitions import Transitions

ALPHA = 1e-6


def chi_square_p(counts, probs):
    """p-value of Pearson's statistic for counts ~ Multinomial(n, probs) (one row).

    Categories with expected count < 20 are pooled into one (pooling keeps the
    counts multinomial, so the test stays exact); a pool still below 20 is merged
    into the largest category.
    """
    counts = np.asarray(counts, float).ravel()
    probs = np.asarray(probs, float).ravel()
    n = counts.sum()
    pos = probs > 0
    assert np.all(counts[~pos] == 0), "an outcome of probability 0 was drawn"
    counts, probs = counts[pos], probs[pos]
    rare = n * probs < 20
    if rare.any():
        c_pool, p_pool = counts[rare].sum(), probs[rare].sum()
        counts, probs = counts[~rare], probs[~rare]
        if n * p_pool >= 20:
            counts, probs = np.append(counts, c_pool), np.append(probs, p_pool)
        else:
            big = np.argmax(probs)
            counts[big] += c_pool
            probs[big] += p_pool
    assert counts.size >= 2, "too few categories for a chi-square test"
    expected = n * probs
    stat = np.sum((counts - expected) ** 2 / expected)
    return chi2.sf(stat, counts.size - 1)


def mdp_with_terminals(seed, S=5, A=3, n_terminal=1, sparsity=0.4, horizon=6):
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, S, A, sparsity=sparsity, n_terminal=n_terminal, horizon=horizon)
    pi = rng.dirichlet(np.ones(A), size=S)
    return mdp, pi


# ------------------------------------------------- alias tables: sampling (S4)
def test_alias_sampling_passes_chi_square():
    rng = np.random.default_rng(12)
    p = np.array([0.5, 0.0, 0.2, 0.05, 0.25])
    x = alias_table(p[None, :]).sample(np.zeros(200_000, np.int64), rng)
    assert chi_square_p(np.bincount(x, minlength=5), p) > ALPHA


# -------------------------------------------------------- the sampler: chi-square
def test_one_step_joint_frequencies_match_pi_times_P():
    """horizon 1 from given start states: each row is one draw of (a, s') ~ pi(a|s) P(s'|s,a),
    i.i.d. across rows, so the counts per start state are exactly multinomial."""
    mdp, pi = mdp_with_terminals(3, S=4, A=3, n_terminal=0, sparsity=0.3)
    S, A = mdp.n_states, mdp.n_actions
    n = 40_000
    starts = np.repeat(np.arange(S), n)
    b = sample_from_table(mdp, pi, S * n, np.random.default_rng(5), horizon=1,
                          start_states=starts)
    assert_array_equal(b.states[:, 0], starts)
    for s in range(S):
        rows = starts == s
        code = b.actions[rows, 0] * S + b.next_states[rows, 0]
        counts = np.bincount(code, minlength=A * S)
        exact = (pi[s][:, None] * mdp.P[s]).ravel()         # product of the two tables
        assert chi_square_p(counts, exact) > ALPHA / S         # Bonferroni over states


def test_per_time_step_joint_law_matches_a_forward_recursion():
    """At a fixed t the category of episode i (its (s_t, a_t, s_{t+1}) or 'no step') is
    i.i.d. across episodes; its law is computed here by a forward recursion."""
    mdp, pi = mdp_with_terminals(8, S=5, A=2, n_terminal=1, sparsity=0.5, horizon=4)
    S, A, H = mdp.n_states, mdp.n_actions, 4
    n = 200_000
    b = sample_from_table(mdp, pi, n, np.random.default_rng(6))
    p = mdp.rho0.copy()                      # P(s_t = s and the episode is still running)
    for t in range(H):
        p_run = np.where(mdp.terminal, 0.0, p)
        law = p_run[:, None, None] * pi[:, :, None] * mdp.P       # (s, a, s')
        probs = np.append(law.ravel(), 1.0 - law.sum())           # last: no step at t
        code = np.where(b.mask[:, t],
                        (b.states[:, t] * A + b.actions[:, t]) * S + b.next_states[:, t],
                        S * A * S)
        counts = np.bincount(code, minlength=S * A * S + 1)
        assert chi_square_p(counts, probs) > ALPHA / H             # Bonferroni over t
        p = law.sum(axis=(0, 1))


def test_start_state_distribution_matches_rho0():
    mdp, pi = mdp_with_terminals(2, S=6, A=2, n_terminal=0, sparsity=0.0)
    b = sample_from_table(mdp, pi, 100_000, np.random.default_rng(1), horizon=1)
    assert chi_square_p(np.bincount(b.states[:, 0], minlength=6), mdp.rho0) > ALPHA


def test_chi_square_has_power():
    """The same counts are rejected against a table with one entry moved by 0.03 (the
    tests above can fail)."""
    mdp, pi = mdp_with_terminals(3, S=4, A=3, n_terminal=0, sparsity=0.3)
    S, A = mdp.n_states, mdp.n_actions
    n = 40_000
    b = sample_from_table(mdp, pi, n, np.random.default_rng(5), horizon=1,
                          start_states=np.zeros(n, np.int64))
    counts = np.bincount(b.actions[:, 0] * S + b.next_states[:, 0], minlength=A * S)
    wrong = (pi[0][:, None] * mdp.P[0]).ravel()
    i, j = np.argsort(wrong)[-2:]
    wrong[i] += 0.03
    wrong[j] -= 0.03
    assert chi_square_p(counts, wrong) < ALPHA


# ------------------------------------------------------ the batch it produces
@settings(max_examples=20)
@given(seed=st.integers(0, 2**32 - 1), S=st.integers(1, 6), A=st.integers(1, 4),
       n_terminal=st.integers(0, 2), H=st.integers(1, 8), N=st.integers(1, 40))
def test_batch_is_valid_and_consistent_with_the_mdp(seed, S, A, n_terminal, H, N):
    n_terminal = min(n_terminal, S - 1)
    rng = np.random.default_rng(seed)
    mdp = random_mdp(rng, S, A, sparsity=0.5, n_terminal=n_terminal)
    pi = rng.dirichlet(np.ones(A), size=S) * (rng.random((S, A)) < 0.8)
    pi[:, 0] += pi.sum(axis=1) == 0
    pi /= pi.sum(axis=1, keepdims=True)
    b = sample_from_table(mdp, pi, N, np.random.default_rng(seed + 1), horizon=H)
    # the public constructor re-validates everything the fast path skipped
    Batch(**{f.name: getattr(b, f.name) for f in fields(b)})
    m = b.mask
    assert b.rewards.shape == (N, H) and b.rewards.dtype == np.float64
    assert_array_equal(b.rewards[m], mdp.r[b.states[m], b.actions[m]])
    assert_array_equal(b.log_probs[m], np.log(pi[b.states[m], b.actions[m]]))
    assert np.all(pi[b.states[m], b.actions[m]] > 0)
    assert np.all(mdp.P[b.states[m], b.actions[m], b.next_states[m]] > 0)
    assert np.all(~mdp.terminal[b.states[m]])
    # terminated exactly when the state reached is terminal; truncated only at H - 1
    assert_array_equal(b.terminated[m], mdp.terminal[b.next_states[m]])
    assert not b.truncated[:, :H - 1].any()
    assert_array_equal(b.truncated[:, H - 1], m[:, H - 1] & ~b.terminated[:, H - 1])
    # the chain: s_{t+1} of step t is s of step t+1
    cont = m[:, 1:]
    assert_array_equal(b.states[:, 1:][cont], b.next_states[:, :-1][cont])
    # an episode stops only at a terminal state or at the horizon
    lengths = b.lengths
    stopped = (lengths < H) & (lengths > 0)
    assert np.all(b.terminated[stopped, lengths[stopped] - 1])


def test_episodes_starting_in_a_terminal_state_are_empty():
    P = np.zeros((2, 1, 2))
    P[0, 0, 1] = 1.0
    P[1, 0, 1] = 1.0
    mdp = FiniteMDP(P=P, r=[[1.0], [0.0]], rho0=[0.5, 0.5], gamma=1.0,
                    terminal=np.array([False, True]), horizon=3)
    b = sample_from_table(mdp, np.ones((2, 1)), 6, np.random.default_rng(0),
                          start_states=[0, 1, 0, 1, 1, 0])
    assert_array_equal(b.lengths, [1, 0, 1, 0, 0, 1])
    assert_array_equal(b.terminated[:, 0], [True, False, True, False, False, True])
    assert not b.truncated.any()


def test_truncation_at_the_horizon_without_terminal_states():
    mdp, pi = mdp_with_terminals(4, n_terminal=0)
    b = sample_from_table(mdp, pi, 50, np.random.default_rng(0), horizon=5)
    assert_array_equal(b.lengths, 5)
    assert b.truncated[:, 4].all() and not b.terminated.any()


def test_start_states_and_first_actions_for_vine_rollouts():
    mdp, pi = mdp_with_terminals(5, S=4, A=3, n_terminal=1, sparsity=0.2, horizon=3)
    n = 60_000
    s0, a0 = 1, 2
    b = sample_from_table(mdp, pi, n, np.random.default_rng(3),
                          start_states=np.full(n, s0), first_actions=np.full(n, a0))
    Batch(**{f.name: getattr(b, f.name) for f in fields(b)})
    assert_array_equal(b.states[:, 0], s0)
    assert_array_equal(b.actions[:, 0], a0)
    assert_array_equal(b.log_probs[:, 0], np.log(pi[s0, a0]))      # still log pi(a_0|s_0)
    assert_array_equal(b.rewards[:, 0], mdp.r[s0, a0])
    # s_1 ~ P(. | s0, a0): chi-square against the transition table row
    assert chi_square_p(np.bincount(b.next_states[:, 0], minlength=4), mdp.P[s0, a0]) > ALPHA
    # the second step follows pi again: (a_1 | s_1) ~ pi(. | s_1)
    m = b.mask[:, 1]
    s1 = b.states[m, 1]
    for s in np.unique(s1):
        if np.sum(s1 == s) * pi[s].min() >= 20:
            counts = np.bincount(b.actions[m, 1][s1 == s], minlength=3)
            assert chi_square_p(counts, pi[s]) > ALPHA / 4


def test_first_action_of_probability_zero_is_rejected():
    mdp, pi = mdp_with_terminals(5, S=4, A=3, n_terminal=0)
    pi[2] = [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="first_actions"):
        sample_from_table(mdp, pi, 2, np.random.default_rng(0), start_states=[2, 2],
                          first_actions=[0, 1])


def test_same_seed_gives_a_bit_identical_batch_and_slots_do_not_matter():
    mdp, pi = mdp_with_terminals(6, S=3, A=2, n_terminal=1, horizon=3)
    n = _WIDTH + 17            # more episodes than slots: the first 17 slots run two each
    a = sample_from_table(mdp, pi, n, np.random.default_rng(42))
    b = sample_from_table(mdp, pi, n, np.random.default_rng(42))
    c = sample_from_table(mdp, pi, n, np.random.default_rng(43))
    for f in fields(a):
        assert_array_equal(getattr(a, f.name), getattr(b, f.name))
    assert not np.array_equal(a.actions, c.actions)
    # rows of both chunks follow the same law (start-state counts, chi-square)
    for part in (slice(0, _WIDTH), slice(_WIDTH, n)):
        k = np.bincount(a.states[part, 0], minlength=3)
        if (k.sum() * mdp.rho0[mdp.rho0 > 0]).min() >= 20:
            assert chi_square_p(k, mdp.rho0) > ALPHA


def test_sample_batch_uses_the_policy_table():
    mdp, _ = mdp_with_terminals(7, S=4, A=3)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(np.random.default_rng(0), scale=1.0)
    a = sample_batch(mdp, policy, theta, 30, np.random.default_rng(1))
    b = sample_from_table(mdp, policy.probs_table(theta), 30, np.random.default_rng(1))
    assert_array_equal(a.actions, b.actions)
    assert_array_equal(a.log_probs, b.log_probs)


def test_joint_table_rows_sum_to_one():
    mdp, pi = mdp_with_terminals(1)
    J = joint_table(mdp, pi)
    assert J.shape == (5, 15)
    assert_allclose(J.sum(axis=1), 1.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("seed, S, A, sparsity", [(0, 5, 3, 0.5), (1, 7, 2, 0.0), (2, 4, 4, 0.8)])
def test_sampler_tables_hold_exactly_the_joint_law(seed, S, A, sparsity):
    """The sampler builds its alias tables from the nonzeros of P (not from joint_table):
    enumerating every slot's two outcomes (own with probability q/K, alias with (1-q)/K)
    through the per-id tables gives back pi(a|s) P(s'|s,a) for every non-terminal s, and
    the same for the forced-first-action tables P(s'|s,a); exact up to the alias rounding
    bound K 2^-52 (derivations/sampling.md#transition-ids)."""
    from refpg.sampling import _transition_tables
    mdp, _ = mdp_with_terminals(seed, S=S, A=A, n_terminal=1, sparsity=sparsity)
    pi = np.random.default_rng(seed).dirichlet(np.ones(A), size=S)
    pi[0, 0] = 0.0                                   # an action of probability 0
    pi[0] /= pi[0].sum()
    tb = _transition_tables(mdp, pi, True)
    K, K2, off = tb["columns"], tb["cond_columns"], tb["cond_offset"]

    def law(slots, columns):
        out = np.zeros((S, A, S))
        for j in slots:
            q = tb["thr"][j] - j % columns if j < off else tb["thr"][j] - (j - off) % columns
            for tid, w in ((2 * j + 1, q), (2 * j, 1.0 - q)):
                if w > 0:
                    out[tb["s"][tid], tb["a"][tid], tb["s2"][tid]] += w / columns
        return out

    for s in range(S):
        if mdp.terminal[s]:
            assert np.all(tb["thr"][s * K:(s + 1) * K] == -1)     # never drawn from
        else:
            got = law(range(s * K, (s + 1) * K), K)
            assert_allclose(got[s], pi[s][:, None] * mdp.P[s], rtol=0, atol=K * 2.0 ** -52)
            assert got.sum() == pytest.approx(1.0, abs=1e-14)       # nothing leaks elsewhere
    for s in range(S):
        for a in range(A):
            row = range(off + (s * A + a) * K2, off + (s * A + a + 1) * K2)
            cond = law(row, K2)
            assert_allclose(cond[s, a], mdp.P[s, a], rtol=0, atol=K2 * 2.0 ** -52)
            assert cond.sum() == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(n_episodes=0), ValueError, "n_episodes"),
    (dict(horizon=0), ValueError, "horizon"),
    (dict(start_states=[0, 9]), ValueError, "start_states"),
    (dict(start_states=[0]), ValueError, "start_states"),
    (dict(first_actions=[0, 5]), ValueError, "first_actions"),
    (dict(rng=np.random.RandomState(0)), TypeError, "rng"),
    (dict(pi=np.full((5, 3), 0.5)), ValueError, "pi"),
    (dict(pi=np.full((5, 3), 1 / 3) + 0j), TypeError, "pi"),
])
def test_bad_input_names_the_argument(kwargs, exc, match):
    mdp, pi = mdp_with_terminals(0, horizon=4)
    args = dict(mdp=mdp, pi=pi, n_episodes=2, rng=np.random.default_rng(0))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        sample_from_table(**args)


def test_horizon_is_required_when_the_mdp_has_none():
    mdp, pi = mdp_with_terminals(0, horizon=None)
    with pytest.raises(ValueError, match="horizon"):
        sample_from_table(mdp, pi, 2, np.random.default_rng(0))


# ------------------------------------------------ the streaming roll and the packed output
def exact_length_law(mdp, pi, H, p0):
    """P(episode length = l), l = 0..H, by a forward recursion over the transition matrix
    (written here): an episode of length l < H enters a terminal state at step l - 1."""
    S = mdp.n_states
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)              # P(s_{t+1} | s_t) under pi
    law = np.zeros(H + 1)
    law[0] = p0[mdp.terminal].sum()
    p = np.where(mdp.terminal, 0.0, p0)                    # running, not yet terminal
    for t in range(H):
        nxt = p @ P_pi
        law[t + 1] = nxt[mdp.terminal].sum()
        p = np.where(mdp.terminal, 0.0, nxt)
    law[H] += p.sum()                                      # truncated at the horizon
    assert S == p0.size
    return law


@pytest.fixture(params=[3, None], ids=["3-slots", "default-width"])
def width(request, monkeypatch):
    """Run with a tiny working set (most episodes start in recycled slots) and the default."""
    if request.param is not None:
        monkeypatch.setattr("refpg.sampling._WIDTH", request.param)
    return request.param


def test_streaming_episode_length_law_is_exact(width):
    mdp, pi = mdp_with_terminals(11, S=5, A=2, n_terminal=1, sparsity=0.5, horizon=6)
    n = 30_000
    tr = sample_transitions(mdp, pi, n, np.random.default_rng(21))
    law = exact_length_law(mdp, pi, 6, mdp.rho0)
    assert chi_square_p(np.bincount(tr.lengths, minlength=7), law) > ALPHA


def test_streaming_per_time_step_joint_law_is_exact(width):
    """As test_per_time_step_joint_law_matches_a_forward_recursion, for sample_transitions
    (viewed padded) with recycled slots: at fixed t the categories are i.i.d. over episodes."""
    mdp, pi = mdp_with_terminals(8, S=5, A=2, n_terminal=1, sparsity=0.5, horizon=4)
    S, A, H = mdp.n_states, mdp.n_actions, 4
    n = 60_000
    b = sample_transitions(mdp, pi, n, np.random.default_rng(16)).to_batch(max_steps=H)
    p = mdp.rho0.copy()
    for t in range(H):
        p_run = np.where(mdp.terminal, 0.0, p)
        law = p_run[:, None, None] * pi[:, :, None] * mdp.P
        probs = np.append(law.ravel(), 1.0 - law.sum())
        code = np.where(b.mask[:, t],
                        (b.states[:, t] * A + b.actions[:, t]) * S + b.next_states[:, t],
                        S * A * S)
        assert chi_square_p(np.bincount(code, minlength=S * A * S + 1), probs) > ALPHA / H
        p = law.sum(axis=(0, 1))


def test_streaming_joint_counts_given_visits(width):
    """(s, a, s') counts per visited state s against pi(a|s) P(s'|s, a), pooled over all
    steps of all episodes. Given the visit counts the cells are only asymptotically
    multinomial (derivations/sampling.md#why-the-chi-square-tests-are-exact), so this is
    the benchmark's summary check, kept at the same level 1e-6 as the others."""
    mdp, pi = mdp_with_terminals(12, S=6, A=3, n_terminal=1, sparsity=0.4, horizon=8)
    S, A = mdp.n_states, mdp.n_actions
    tr = sample_transitions(mdp, pi, 20_000, np.random.default_rng(9))
    code = (tr.states * A + tr.actions) * S + tr.next_states
    counts = np.bincount(code, minlength=S * A * S).reshape(S, A * S)
    for s in np.flatnonzero(counts.sum(axis=1) > 0):
        exact = (pi[s][:, None] * mdp.P[s]).ravel()
        assert chi_square_p(counts[s], exact) > ALPHA / S


def test_streaming_first_actions_law(width):
    """Vine rollouts through the streaming roll: s_1 ~ P(. | s0, a0), then the length of
    the rest of the episode has the law of an episode of horizon H - 1 from s_1."""
    mdp, pi = mdp_with_terminals(5, S=4, A=3, n_terminal=1, sparsity=0.2, horizon=5)
    n, s0, a0 = 40_000, 1, 2
    tr = sample_transitions(mdp, pi, n, np.random.default_rng(13),
                            start_states=np.full(n, s0), first_actions=np.full(n, a0))
    Transitions(**{f.name: getattr(tr, f.name) for f in fields(tr)})
    first = tr.offsets[:-1]
    assert_array_equal(tr.states[first], s0)
    assert_array_equal(tr.actions[first], a0)
    assert chi_square_p(np.bincount(tr.next_states[first], minlength=4), mdp.P[s0, a0]) > ALPHA
    law = exact_length_law(mdp, pi, 4, mdp.P[s0, a0])      # steps after the forced one
    assert chi_square_p(np.bincount(tr.lengths - 1, minlength=5), law) > ALPHA


def test_packed_output_is_valid_and_consistent(width):
    mdp, pi = mdp_with_terminals(4, S=5, A=3, n_terminal=2, sparsity=0.5, horizon=5)
    starts = np.random.default_rng(1).integers(0, 5, 500)   # some start in terminal states
    tr = sample_transitions(mdp, pi, 500, np.random.default_rng(2), start_states=starts)
    Transitions(**{f.name: getattr(tr, f.name) for f in fields(tr)})   # public validation
    assert_array_equal(tr.lengths == 0, mdp.terminal[starts])           # empty episodes
    assert_array_equal(tr.states[tr.offsets[:-1][tr.lengths > 0]], starts[tr.lengths > 0])
    assert_array_equal(tr.rewards, mdp.r[tr.states, tr.actions])
    assert_array_equal(tr.log_probs, np.log(pi[tr.states, tr.actions]))
    assert np.all(mdp.P[tr.states, tr.actions, tr.next_states] > 0)
    assert_array_equal(tr.terminated, mdp.terminal[tr.next_states])
    inner = np.ones(tr.n_transitions, bool)                # the chain within episodes
    inner[tr.offsets[:-1][tr.lengths > 0]] = False
    inner = inner[1:]
    assert_array_equal(tr.states[1:][inner], tr.next_states[:-1][inner])
    assert np.all(tr.truncated == (tr.step == 4) & ~tr.terminated)


def test_packed_output_with_first_actions_is_consistent(width):
    """The forced first steps are interleaved with the rolled steps (each before its episode's
    record); some episodes start in a terminal state (empty) and some end at the forced step."""
    mdp, pi = mdp_with_terminals(9, S=5, A=3, n_terminal=2, sparsity=0.3, horizon=4)
    pi = np.full((5, 3), 1 / 3)
    n = 700
    starts = np.random.default_rng(4).integers(0, 5, n)
    acts = np.random.default_rng(5).integers(0, 3, n)
    tr = sample_transitions(mdp, pi, n, np.random.default_rng(6), start_states=starts,
                            first_actions=acts)
    Transitions(**{f.name: getattr(tr, f.name) for f in fields(tr)})   # public validation
    live = ~mdp.terminal[starts]
    assert_array_equal(tr.lengths == 0, ~live)
    first = tr.offsets[:-1][live]
    assert_array_equal(tr.states[first], starts[live])
    assert_array_equal(tr.actions[first], acts[live])
    assert np.all(mdp.P[tr.states, tr.actions, tr.next_states] > 0)
    assert_array_equal(tr.terminated, mdp.terminal[tr.next_states])
    inner = np.ones(tr.n_transitions, bool)
    inner[first] = False
    assert_array_equal(tr.states[1:][inner[1:]], tr.next_states[:-1][inner[1:]])
    assert tr.lengths.max() <= 4 and np.any(tr.lengths == 1) and np.any(tr.lengths == 4)


def test_int32_transition_ids_give_the_same_sample(monkeypatch):
    """The roll records ids as int16 when they fit; the int32 path must give the same draw."""
    mdp, pi = mdp_with_terminals(10, S=20, A=4, n_terminal=1, horizon=9)   # ids > 2^8
    a = sample_transitions(mdp, pi, 5000, np.random.default_rng(7))
    monkeypatch.setattr("refpg.sampling._INT16_IDS", 0)
    b = sample_transitions(mdp, pi, 5000, np.random.default_rng(7))
    for f in fields(a):
        assert_array_equal(getattr(a, f.name), getattr(b, f.name), err_msg=f.name)


def test_sample_from_table_is_the_same_draw_padded(width):
    mdp, pi = mdp_with_terminals(6, S=4, A=2, n_terminal=1, horizon=7)
    for kw in (dict(), dict(start_states=np.arange(40) % 4, first_actions=np.arange(40) % 2)):
        pi_ = pi if not kw else np.full((4, 2), 0.5)
        tr = sample_transitions(mdp, pi_, 40, np.random.default_rng(3), **kw)
        b = sample_from_table(mdp, pi_, 40, np.random.default_rng(3), **kw)
        assert b.max_steps == 7
        again = tr.to_batch(max_steps=7)
        for f in fields(b):
            assert_array_equal(getattr(b, f.name), getattr(again, f.name), err_msg=f.name)
        back = Transitions.from_batch(b)
        for f in fields(tr):
            assert_array_equal(getattr(back, f.name), getattr(tr, f.name), err_msg=f.name)


def test_sample_transitions_is_reproducible_for_a_seed():
    mdp, pi = mdp_with_terminals(6, S=3, A=2, n_terminal=1, horizon=3)
    a = sample_transitions(mdp, pi, 5000, np.random.default_rng(42))
    b = sample_transitions(mdp, pi, 5000, np.random.default_rng(42))
    c = sample_transitions(mdp, pi, 5000, np.random.default_rng(43))
    for f in fields(a):
        assert_array_equal(getattr(a, f.name), getattr(b, f.name))
    assert not np.array_equal(a.actions[:100], c.actions[:100])


def test_horizon_one_and_all_terminal_starts():
    mdp, pi = mdp_with_terminals(3, S=4, A=3, n_terminal=1, horizon=1)
    starts = np.arange(40) % 4
    tr = sample_transitions(mdp, pi, 40, np.random.default_rng(0), start_states=starts)
    assert_array_equal(tr.lengths, ~mdp.terminal[starts])
    assert_array_equal(tr.truncated, ~tr.terminated)       # every step is the last one
    term = int(np.flatnonzero(mdp.terminal)[0])
    empty = sample_transitions(mdp, pi, 5, np.random.default_rng(0), horizon=4,
                               start_states=np.full(5, term))
    assert empty.n_transitions == 0
    assert_array_equal(empty.offsets, np.zeros(6))
    assert not sample_from_table(mdp, pi, 5, np.random.default_rng(0), horizon=4,
                                 start_states=np.full(5, term)).mask.any()


def test_a_horizon_beyond_the_step_counters_is_refused():
    # found by the session-4 audit: sys.maxsize crashed with OverflowError for some seeds
    # (t + H overflowed int64 once an episode ended at t >= 2); 2**62 is the documented cap
    import sys

    mdp = random_mdp(np.random.default_rng(0), 2, 1, gamma=0.9, n_terminal=1)
    with pytest.raises(ValueError, match="horizon must be at most 2"):
        sample_transitions(mdp, np.ones((2, 1)), 1, np.random.default_rng(0),
                           horizon=sys.maxsize)
    out = sample_transitions(mdp, np.ones((2, 1)), 50, np.random.default_rng(0),
                             horizon=1 << 62)
    assert out.terminated[out.offsets[1:][out.lengths > 0] - 1].all()   # all end by terminal
