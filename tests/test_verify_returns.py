"""refpg.verify.returns: the returns / GAE / lambda-return verifiers and their presets.

Independent routes: each truncation preset's reference is compared with a
re-implementation of the PEER'S OWN LOOP written here from its source (CleanRL
ppo.py, SB3 rollout buffer + collect_rollouts, pytorch-a2c-ppo-acktr-gail
storage.py, modular_rl compute_advantage, Spinning Up's epoch loop and
finish_path) and with explicit per-episode sums (refpg's own convention C),
never with refpg.returns. The peers' loops are run through the verifier in the
layout the peer uses, and directly on hypothesis-generated buffers.

Tolerances: two float64 summations of at most 300 terms of size <= 1e6 in a
different order: 1e-9 relative plus 1e-9 absolute (the verifiers' default);
the direct comparisons use 1e-11 on O(1) data (differences measured ~1e-15).
"""
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from refpg.returns import gae, lambda_returns, reward_to_go
from refpg.verify.returns import (NORMALIZATIONS, PRESETS, reference_gae,
                                  reference_lambda_returns, reference_returns, trajectory_cases,
                                  verify_gae, verify_lambda_returns, verify_returns)


# ----------------------------------------------------------------- peer loops (from source)
def _obs_aligned(dones):
    """CleanRL's / SB3's ``dones[t]`` / ``episode_starts[t]``: the episode ended before obs t."""
    out = np.zeros_like(dones, dtype=float)
    out[1:] = dones[:-1]
    return out


def cleanrl_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """CleanRL ppo.py (time-major): next_done = terminated | truncated (convention A)."""
    dones = (terminated | truncated).astype(float)
    obs_dones, next_done, next_value = _obs_aligned(dones), dones[-1], next_values[-1]
    T = len(rewards)
    adv = np.zeros_like(rewards)
    lastgaelam = 0.0
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal, nextvalues = 1.0 - next_done, next_value
        else:
            nextnonterminal, nextvalues = 1.0 - obs_dones[t + 1], values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        adv[t] = lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
    return adv, adv + values


def sb3_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """SB3: collect_rollouts' reward augmentation (TimeLimit.truncated = truncated and not
    terminated) + RolloutBuffer.compute_returns_and_advantage (time-major)."""
    timeout = truncated & ~terminated
    rewards = rewards + gamma * np.where(timeout, next_values, 0.0)
    dones = (terminated | truncated).astype(float)
    episode_starts, last_values = _obs_aligned(dones), next_values[-1]
    T = len(rewards)
    adv = np.zeros_like(rewards)
    last_gae_lam = 0.0
    for step in reversed(range(T)):
        if step == T - 1:
            next_non_terminal, nv = 1.0 - dones[-1], last_values
        else:
            next_non_terminal, nv = 1.0 - episode_starts[step + 1], values[step + 1]
        delta = rewards[step] + gamma * nv * next_non_terminal - values[step]
        adv[step] = last_gae_lam = delta + gamma * lam * next_non_terminal * last_gae_lam
    return adv, adv + values


def a2c_ppo_acktr_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """pytorch-a2c-ppo-acktr-gail storage.compute_returns, use_gae and use_proper_time_limits;
    bad_transition whenever done at the step limit (TimeLimitMask), time-major."""
    T, N = rewards.shape
    value_preds = np.concatenate([values, next_values[-1:]])
    masks = np.ones((T + 1, N))
    masks[1:] = 1.0 - (terminated | truncated)
    bad_masks = np.ones((T + 1, N))
    bad_masks[1:] = 1.0 - truncated
    returns = np.zeros((T + 1, N))
    gae_ = 0.0
    for step in reversed(range(T)):
        delta = rewards[step] + gamma * value_preds[step + 1] * masks[step + 1] - value_preds[step]
        gae_ = delta + gamma * lam * masks[step + 1] * gae_
        gae_ = gae_ * bad_masks[step + 1]
        returns[step] = gae_ + value_preds[step]
    return returns[:-1] - values, returns[:-1]


def a2c_ppo_acktr_returns(rewards, values, next_values, terminated, truncated, gamma):
    """The same storage, use_gae=False (reward-to-go with proper time limits)."""
    T, N = rewards.shape
    masks = np.ones((T + 1, N))
    masks[1:] = 1.0 - (terminated | truncated)
    bad_masks = np.ones((T + 1, N))
    bad_masks[1:] = 1.0 - truncated
    returns = np.zeros((T + 1, N))
    returns[-1] = next_values[-1]
    for step in reversed(range(T)):
        returns[step] = (returns[step + 1] * gamma * masks[step + 1] + rewards[step]) \
            * bad_masks[step + 1] + (1 - bad_masks[step + 1]) * values[step]
    return returns[:-1]


def _discount(x, g):
    out, acc = np.zeros(len(x)), 0.0
    for t in reversed(range(len(x))):
        out[t] = acc = x[t] + g * acc
    return out


def modular_rl_gae(rewards, values, terminated, gamma, lam):
    """modular_rl compute_advantage, per path (episodes layout)."""
    b1 = np.append(values, 0 if terminated else values[-1])
    deltas = rewards + gamma * b1[1:] - b1[:-1]
    return _discount(deltas, gamma * lam), _discount(rewards, gamma)


def spinningup_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Spinning Up ppo.py's epoch loop over one environment per row (batch-major):
    d = terminated, timeout = truncated (its own max_ep_len), epoch end = last column."""
    N, T = rewards.shape
    adv, ret = np.zeros((N, T)), np.zeros((N, T))
    for i in range(N):
        start = 0
        for t in range(T):
            d, timeout, epoch_ended = terminated[i, t], truncated[i, t], t == T - 1
            if d or timeout or epoch_ended:
                last_val = next_values[i, t] if (timeout or epoch_ended) else 0.0
                rews = np.append(rewards[i, start:t + 1], last_val)
                vals = np.append(values[i, start:t + 1], last_val)
                deltas = rews[:-1] + gamma * vals[1:] - vals[:-1]
                adv[i, start:t + 1] = _discount(deltas, gamma * lam)
                ret[i, start:t + 1] = _discount(rews, gamma)[:-1]
                start = t + 1
    return adv, ret


def explicit_gae(rewards, values, next_value, terminated, truncated, gamma, lam):
    """refpg's convention C by the explicit sum A_t = sum_k (gamma lam)^(k-t) delta_k over one
    episode (episodes layout); the final observation's value unless terminated."""
    L = len(rewards)
    nv = np.append(values[1:], 0.0 if terminated else next_value)
    delta = rewards + gamma * nv - values
    adv = np.array([sum((gamma * lam) ** (k - t) * delta[k] for k in range(t, L))
                    for t in range(L)])
    return adv, adv + values


def _time_major(fn):
    def wrapped(rewards, values, next_values, terminated, truncated, gamma, lam):
        return np.stack(fn(rewards, values, next_values, terminated, truncated, gamma, lam))
    return wrapped


def _pick(fn, k):
    def wrapped(**kw):
        return fn(**kw)[k]
    import inspect
    wrapped.__signature__ = inspect.signature(fn)
    return wrapped


PEERS = [  # (preset, function, layout)
    ("cleanrl", cleanrl_gae, "time_major"),
    ("sb3", sb3_gae, "time_major"),
    ("a2c_ppo_acktr", a2c_ppo_acktr_gae, "time_major"),
    ("modular_rl", modular_rl_gae, "episodes"),
    ("spinningup", spinningup_gae, "batch_major"),
    ("refpg", explicit_gae, "episodes"),
]


# ----------------------------------------------------------------- presets = peers' own loops
@pytest.mark.parametrize("preset, fn, layout", PEERS, ids=[p[0] for p in PEERS])
def test_each_peer_loop_passes_under_its_own_preset(preset, fn, layout):
    rep = verify_gae(_time_major(fn) if layout == "time_major" else fn, layout=layout,
                     preset=preset, output="both")
    assert rep.passed, str(rep)
    assert rep.n_cases >= 40


@pytest.mark.parametrize("preset, fn, layout", [p for p in PEERS if p[0] not in ("refpg", "sb3")],
                         ids=[p[0] for p in PEERS if p[0] not in ("refpg", "sb3")])
def test_each_peer_loop_fails_under_refpg_and_the_report_names_its_preset(preset, fn, layout):
    rep = verify_gae(_pick(fn, 0), layout=layout)
    assert not rep.passed
    assert preset in " ".join(rep.notes), rep.notes
    n, t = _size(rep)
    assert n <= 2 and t <= 4, str(rep)


def _size(rep):
    """(rows, steps) of a report's counterexample in batch-major terms."""
    arrays = [v for v in rep.inputs.values() if isinstance(v, np.ndarray)]
    if arrays:
        shape = arrays[0].shape
        return shape if rep.conventions["layout"] != "time_major" else shape[::-1]
    eps = [v for v in rep.inputs.values() if isinstance(v, dict)]
    return len(eps), sum(len(e["rewards"]) for e in eps)


def test_sb3_equals_refpg_up_to_rounding():
    rep = verify_gae(_time_major(sb3_gae), layout="time_major", output="both")
    assert rep.passed and rep.worst_error < 1e-9
    rep = verify_gae(_time_major(sb3_gae), layout="time_major", preset="sb3", output="both")
    assert "reward logs" in rep.departures[0]


@st.composite
def _buffers(draw):
    N = draw(st.integers(1, 3))
    T = draw(st.integers(1, 7))
    flag = st.lists(st.sampled_from([0, 0, 0, 1, 2, 3]), min_size=N * T, max_size=N * T)
    f = np.array(draw(flag)).reshape(N, T)
    real = st.floats(-3, 3, allow_nan=False, width=32)
    arr = [np.array(draw(st.lists(real, min_size=N * T, max_size=N * T)), float).reshape(N, T)
           for _ in range(3)]
    return {"rewards": arr[0], "values": arr[1], "next_values": arr[2],
            "terminated": (f == 1) | (f == 3), "truncated": (f == 2) | (f == 3),
            "gamma": draw(st.sampled_from([0.0, 0.5, 0.9, 1.0])),
            "lam": draw(st.sampled_from([0.0, 0.7, 1.0]))}


def _consistent(x):
    nv = x["next_values"].copy()
    inside = ~(x["terminated"] | x["truncated"])[:, :-1]
    nv[:, :-1][inside] = x["values"][:, 1:][inside]
    return {**x, "next_values": nv}


def _run_peer(fn, layout, x):
    r, v, nv, te, tr = (x[k] for k in ("rewards", "values", "next_values", "terminated",
                                       "truncated"))
    g, lam = x["gamma"], x["lam"]
    if layout == "time_major":
        a, b = fn(r.T, v.T, nv.T, te.T, tr.T, g, lam)
        return a.T, b.T
    if layout == "batch_major":
        return fn(r, v, nv, te, tr, g, lam)
    adv, ret = np.zeros_like(r), np.zeros_like(r)
    for i in range(r.shape[0]):
        start = 0
        for t in range(r.shape[1]):
            if te[i, t] or tr[i, t] or t == r.shape[1] - 1:
                s = slice(start, t + 1)
                kw = dict(rewards=r[i, s], values=v[i, s], terminated=bool(te[i, t]),
                          gamma=g, lam=lam)
                if fn is explicit_gae:
                    kw.update(next_value=nv[i, t], truncated=bool(tr[i, t]))
                adv[i, s], ret[i, s] = fn(**kw)
                start = t + 1
    return adv, ret


@settings(max_examples=40)
@given(_buffers())
def test_preset_references_equal_the_peer_loops_on_random_buffers(x):
    x = _consistent(x)
    for preset, fn, layout in PEERS:
        adv, ret = reference_gae(x, preset)
        a, b = _run_peer(fn, layout, x)
        # 1e-11: O(1) data, at most 7 terms; measured differences ~1e-15
        assert_allclose(adv, a, rtol=1e-11, atol=1e-11, err_msg=preset)
        assert_allclose(ret, b, rtol=1e-11, atol=1e-11, err_msg=preset)
        if PRESETS[preset].value_target == "a_plus_v":   # the peer's returns are A + V
            assert_allclose(reference_lambda_returns(x, preset), b, rtol=1e-11, atol=1e-11)
    r, v, nv, te, tr = (x[k].T for k in ("rewards", "values", "next_values", "terminated",
                                         "truncated"))
    assert_allclose(reference_returns(x, "a2c_ppo_acktr"),
                    a2c_ppo_acktr_returns(r, v, nv, te, tr, x["gamma"]).T, rtol=1e-11, atol=1e-11)


def test_every_preset_name_is_a_known_convention():
    assert {p.convention for p in PRESETS.values()} == set("ABCDEF")
    assert all(p.cost for p in PRESETS.values() if p.convention != "C")
    assert PRESETS["refpg"].convention == "C" and PRESETS["tianshou"].convention == "C"


# ----------------------------------------------------------------- layouts
def _refpg_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    return gae(rewards, values, next_values, gamma, lam, terminated=terminated,
               truncated=truncated & ~terminated).advantages


def test_refpg_itself_passes_in_every_layout():
    def time_major(rewards, values, next_values, terminated, truncated, gamma, lam):
        return gae(rewards, values, next_values, gamma, lam, terminated=terminated,
                   truncated=truncated & ~terminated, time_major=True).advantages

    def per_episode(rewards, values, next_value, terminated, truncated, gamma, lam):
        nv = np.append(values[1:], next_value)[None]
        return gae(rewards[None], values[None], nv, gamma, lam,
                   terminated=np.eye(1, len(rewards), len(rewards) - 1, dtype=bool) & terminated
                   ).advantages[0]

    for fn, layout in [(_refpg_gae, "batch_major"), (time_major, "time_major"),
                       (per_episode, "episodes")]:
        rep = verify_gae(fn, layout=layout)
        assert rep.passed, str(rep)
        assert rep.worst_error < 1e-13
    ret = lambda rewards, next_values, terminated, truncated, gamma: reward_to_go(  # noqa: E731
        rewards, gamma, terminated=terminated, truncated=truncated & ~terminated,
        next_values=next_values)
    assert verify_returns(ret).passed
    lr = lambda rewards, next_values, terminated, truncated, gamma, lam: lambda_returns(  # noqa
        rewards, next_values, gamma, lam, terminated=terminated, truncated=truncated & ~terminated)
    assert verify_lambda_returns(lr).passed


def test_docstring_examples_pass():
    def rtg(rewards, next_values, terminated, truncated, gamma):
        G, acc = np.zeros_like(rewards), np.zeros(rewards.shape[1])
        for t in reversed(range(len(rewards))):
            end = terminated[t] | truncated[t] | (t == len(rewards) - 1)
            boot = np.where(terminated[t], 0.0, next_values[t])
            acc = rewards[t] + gamma * np.where(end, boot, acc)
            G[t] = acc
        return G
    assert verify_returns(rtg, layout="time_major").passed

    def cleanrl(rewards, values, next_values, dones, gamma, lam):
        adv, last = np.zeros_like(rewards), 0.0
        for t in reversed(range(len(rewards))):
            nonterminal = 1.0 - dones[t]
            delta = rewards[t] + gamma * next_values[t] * nonterminal - values[t]
            adv[t] = last = delta + gamma * lam * nonterminal * last
        return adv
    assert verify_gae(cleanrl, layout="time_major", preset="cleanrl").passed

    def lam_ret(rewards, next_values, terminated, truncated, gamma, lam):
        G, acc = np.zeros_like(rewards), None
        for t in reversed(range(rewards.shape[1])):
            end = terminated[:, t] | truncated[:, t] | (t == rewards.shape[1] - 1)
            v = np.where(terminated[:, t], 0.0, next_values[:, t])
            tail = v if acc is None else np.where(end, v, (1 - lam) * v + lam * acc)
            G[:, t] = acc = rewards[:, t] + gamma * tail
        return G
    assert verify_lambda_returns(lam_ret).passed


def test_positional_function_is_called_in_the_documented_order():
    def f(r, v, nv, te, tr, d, g, la):   # no parameter name matches
        return _refpg_gae(r, v, nv, te, tr, g, la)
    rep = verify_gae(f)
    assert rep.passed, str(rep)
    assert any("positionally" in n for n in rep.notes)


def test_missing_keywords_are_reported():
    rep = verify_gae(lambda rewards, values, next_values, terminated, gamma, lam:
                     gae(rewards, values, next_values, gamma, lam, terminated=terminated)
                     .advantages)
    assert not rep.passed
    assert any("truncated" in n for n in rep.notes)
    # the counterexample shows only what the function received
    assert "truncated" not in rep.inputs and "terminated" in rep.inputs


def test_inputs_modified_in_place_do_not_corrupt_the_battery():
    def vandal(rewards, values, next_values, terminated, truncated, gamma, lam):
        out = _refpg_gae(rewards, values, next_values, terminated, truncated, gamma, lam)
        rewards[:] = 1e9
        terminated[:] = False
        return out
    assert verify_gae(vandal).passed


# ----------------------------------------------------------------- never crash
@pytest.mark.parametrize("bad, word", [
    (lambda **kw: 1 / 0, "raised ZeroDivisionError"),
    (lambda **kw: np.zeros(3), "shape"),
    (lambda rewards, **kw: np.full(rewards.shape, np.nan), "non-finite"),
    (lambda rewards, **kw: np.full(rewards.shape, "x"), "non-numeric"),
    (lambda **kw: None, "non-numeric"),
    (lambda rewards, **kw: np.zeros(rewards.shape + (1,)), "shape"),
])
@pytest.mark.parametrize("layout", ["batch_major", "time_major", "episodes"])
def test_broken_user_functions_give_a_failed_report(bad, word, layout):
    rep = verify_gae(bad, layout=layout, n_random=2)
    assert not rep.passed and word in rep.problem, rep.problem
    str(rep), rep.to_json()    # printable and serialisable


def test_a_function_failing_on_one_episode_names_it():
    def f(rewards, values, next_value, terminated, truncated, gamma, lam):
        if len(rewards) == 3:
            raise RuntimeError("boom")
        return explicit_gae(rewards, values, next_value, terminated, truncated, gamma, lam)[0]
    rep = verify_gae(f, layout="episodes")
    assert not rep.passed and "boom" in rep.problem and "episode" in rep.problem


def test_bad_options_raise_value_errors():
    ok = _refpg_gae
    with pytest.raises(ValueError, match="preset"):
        verify_gae(ok, preset="stable-baselines")
    with pytest.raises(ValueError, match="layout"):
        verify_gae(ok, layout="T,N")
    with pytest.raises(ValueError, match="bootstrap"):
        verify_returns(ok, preset="sb3", bootstrap=False)
    with pytest.raises(ValueError, match="normalize"):
        verify_gae(ok, layout="episodes", normalize="sb3")
    with pytest.raises(ValueError, match="norm_eps"):
        verify_gae(ok, normalize="sb3", norm_eps=0.0)
    with pytest.raises(ValueError, match="gamma"):
        verify_gae(ok, gamma=1.5)


def test_command_line_strings_are_accepted():
    rep = verify_gae(_refpg_gae, gamma="0.99", lam="0.95", shrink="false", n_random="3",
                     seed="7", rtol="1e-9", atol="1e-9")
    assert rep.passed and rep.conventions["gamma"] == 0.99 and rep.conventions["lam"] == 0.95


# ----------------------------------------------------------------- options
def test_bootstrap_false_and_its_departure():
    def mc(rewards, dones, gamma):
        return reward_to_go(rewards, gamma, terminated=dones)
    rep = verify_returns(mc, bootstrap=False)
    assert rep.passed, str(rep)
    assert "counts as 0" in rep.departures[0]
    assert not verify_returns(mc).passed


def test_normalisation_presets_and_the_ddof_difference():
    def normalised(ddof, eps):
        def f(rewards, values, next_values, terminated, truncated, gamma, lam):
            a = _refpg_gae(rewards, values, next_values, terminated, truncated, gamma, lam)
            return (a - a.mean()) / (a.std(ddof=ddof) + eps)
        return f
    sb3 = normalised(1, 1e-8)
    assert verify_gae(sb3, normalize="sb3").passed
    assert verify_gae(sb3, normalize="mean_std").passed          # default eps 1e-8, ddof 1
    assert not verify_gae(sb3, normalize="none").passed
    rep = verify_gae(sb3, normalize="spinningup")
    assert not rep.passed                                        # ddof 0 vs 1
    assert verify_gae(normalised(0, 0.0), normalize="spinningup").passed
    assert verify_gae(normalised(0, 0.0), normalize="mean_std", norm_eps=0, norm_ddof=0).passed
    assert set(NORMALIZATIONS) >= {"none", "sb3", "cleanrl", "spinningup", "modular_rl"}


def test_returns_are_computed_before_normalisation():
    def both(rewards, values, next_values, terminated, truncated, gamma, lam):
        a = _refpg_gae(rewards, values, next_values, terminated, truncated, gamma, lam)
        return (a - a.mean()) / (a.std(ddof=1) + 1e-8), a + values
    assert verify_gae(both, output="both", normalize="sb3").passed


def test_fixed_gamma_and_lambda():
    def fixed(rewards, values, next_values, terminated, truncated):
        return _refpg_gae(rewards, values, next_values, terminated, truncated, 0.99, 0.95)
    assert verify_gae(fixed, gamma=0.99, lam=0.95).passed
    assert not verify_gae(fixed).passed


def test_departure_cost_is_measured_for_every_peer_preset():
    for name, p in PRESETS.items():
        rep = verify_gae(_refpg_gae, preset=name, n_random=4, shrink=False)
        if p.convention == "C":
            assert rep.passed and not rep.departures
        else:
            assert "Measured on this battery" in rep.departures[-1]
            assert rep.conventions["convention"] == p.convention and p.assumption


# ----------------------------------------------------------------- battery and speed
def test_battery_covers_the_edge_cases():
    cases = trajectory_cases(0, 24)
    assert len({c.name for c in cases}) == len(cases)
    both = [c for c in cases if np.any(c.inputs["terminated"] & c.inputs["truncated"])]
    assert both
    gammas = {c.inputs["gamma"] for c in cases}
    lams = {c.inputs["lam"] for c in cases}
    assert {0.0, 1.0} <= gammas and {0.0, 1.0} <= lams
    assert any(c.size()[1] == 1 for c in cases)
    # episodes end mid-row somewhere
    assert any(np.any((c.inputs["terminated"] | c.inputs["truncated"])[:, :-1]) for c in cases)
    # next_values are consistent inside episodes
    for c in cases:
        x = _consistent(c.inputs)
        assert np.array_equal(x["next_values"], c.inputs["next_values"])


def test_verifiers_run_in_seconds_even_when_shrinking():
    def leak(rewards, values, next_values, gamma, lam):
        return gae(rewards, values, next_values, gamma, lam).advantages
    t0 = time.perf_counter()
    verify_gae(_refpg_gae)
    ok = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep = verify_gae(_time_major(cleanrl_gae), layout="time_major")   # fails and shrinks
    bad = time.perf_counter() - t0
    assert not rep.passed
    assert ok < 2.0 and bad < 5.0, (ok, bad)
    assert not verify_gae(leak).passed


# ----------------------------------------------------------------- golden vectors
def test_golden_vectors_are_deterministic_and_match_the_peer_loops():
    from refpg.verify import vectors
    from refpg.verify.returns import golden_gae, golden_lambda_returns, golden_returns
    for gen in (golden_returns, golden_gae, golden_lambda_returns):
        a, b = gen(), gen()
        assert vectors.to_json(a[2]) == vectors.to_json(b[2])
        assert len({v["name"] for v in a[2]}) == len(a[2])
    checked = 0
    for v in golden_gae()[2]:
        preset = v["conventions"]["preset"]
        x = {k: np.array(val) for k, val in v["inputs"].items()}
        peer = [p for p in PEERS if p[0] == preset]
        if not peer:
            continue
        _, fn, layout = peer[0]
        a, r = _run_peer(fn, layout, {**x, "gamma": float(x["gamma"]), "lam": float(x["lam"])})
        # 1e-11: the vectors' own tolerance is 1e-10 relative
        assert_allclose(a, v["expected"]["advantages"], rtol=1e-11, atol=1e-11)
        assert_allclose(r, v["expected"]["returns"], rtol=1e-11, atol=1e-11)
        checked += 1
    assert checked >= 20


# ----------------------------------------------------------------- a real PyTorch function
@pytest.mark.torch
def test_cleanrl_torch_code_verbatim_passes_under_its_preset():
    torch = pytest.importorskip("torch")

    def cleanrl_torch(rewards, values, next_values, dones, gamma, lam):
        # CleanRL ppo.py's bootstrap block on tensors (dones converted to obs-aligned)
        rewards, values = torch.as_tensor(rewards), torch.as_tensor(values)
        d = torch.as_tensor(dones, dtype=torch.float64)
        obs_dones = torch.cat([torch.zeros_like(d[:1]), d[:-1]])
        next_done, next_value = d[-1], torch.as_tensor(next_values[-1])
        num_steps = rewards.shape[0]
        with torch.no_grad():
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(num_steps)):
                if t == num_steps - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - obs_dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
            returns = advantages + values
        return advantages, returns

    rep = verify_gae(cleanrl_torch, layout="time_major", preset="cleanrl", output="both")
    assert rep.passed, str(rep)
    rep = verify_gae(cleanrl_torch, layout="time_major", output="both")
    assert not rep.passed and "cleanrl" in " ".join(rep.notes)

    def float32(**kw):     # the same code on a float32 buffer, as CleanRL stores it
        kw = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == float else v)
              for k, v in kw.items()}
        return cleanrl_torch(**kw)
    float32.__signature__ = __import__("inspect").signature(cleanrl_torch)
    assert not verify_gae(float32, layout="time_major", preset="cleanrl", output="both").passed
    # float32 rounding of values up to 1e6: rtol 1e-5 is ~100 eps_32
    assert verify_gae(float32, layout="time_major", preset="cleanrl", output="both",
                      rtol=1e-5, atol=1e-5).passed
