"""Benchmark: refpg's sampler and returns against the peers, ratios measured in one run.

Claims checked (issue 3, performance section; derivations/sampling.md and
derivations/returns.md):

1. Sampling on the imported FrozenLake-v1 (uniform and optimal policies) and
   Taxi-v4 (``refpg.gym_tabular``): transitions per second of
   ``refpg.sampling.sample_transitions`` (packed ``Transitions``, every field
   materialised), of ``sample_from_table`` (the same draw as a padded ``Batch``)
   and of the streaming roll alone (transition ids only), against a Python loop
   stepping gymnasium's FrozenLake with the same policy, in the same run. Target:
   >= 20 M transitions/s and >= 200x the Python loop. The packed sample's joint
   ``(s, a, s')`` counts are checked against the exact table by a chi-square test.
2. GAE and bootstrapped reward-to-go on (T=2048, N=16), float64: refpg against
   stable-baselines3's ``RolloutBuffer.compute_returns_and_advantage`` and against
   ``scipy.signal.lfilter`` per episode (Spinning Up's ``discount_cumsum`` route);
   target >= 10x, error <= 1e-13 relative to the plain recursion.
3. GAE on (T=1000, N=1000): refpg (float64) no slower than stable-baselines3 (float32).

Timings are the minimum over ``--repeat`` runs (the machine is shared); the Python
loop's rate is the best of ``--repeat`` runs, so the ratios are conservative. A peer
that is not installed is skipped with a message; stable-baselines3 lives in its
own venv: ``/tmp/sb3/bin/python scripts/bench_sampling_returns.py``.
Usage: ``python scripts/bench_sampling_returns.py [--seed 0] [--repeat 5] [--quick]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from refpg import returns as R
from refpg.sampling import (_stream, _transition_tables, sample_from_table,
                            sample_transitions)


def best_time(f, repeat):
    out, ts = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def table(rows, head):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(head)]
    print("  ".join(str(h).ljust(w) for h, w in zip(head, widths)))
    for r in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)))
    print()


# ------------------------------------------------------------------------ sampling
def optimal_policy(mdp, n_iter=2000):
    """Greedy policy of value iteration (a deterministic table, ties to the first action)."""
    V = np.zeros(mdp.n_states)
    for _ in range(n_iter):
        Q = mdp.r + mdp.gamma * mdp.P @ V
        V = Q.max(axis=1)
    pi = np.zeros((mdp.n_states, mdp.n_actions))
    pi[np.arange(mdp.n_states), Q.argmax(axis=1)] = 1.0
    return pi


def python_loop(env_id, mdp, pi, n_steps, seed):
    """Step gymnasium's environment in a Python loop, actions drawn from ``pi`` (env states)."""
    import gymnasium

    env = gymnasium.make(env_id)
    state_of = mdp.info.get("terminal_index", np.arange(mdp.n_states))  # env state -> MDP state
    cdf = np.cumsum(pi, axis=1).tolist()
    rng = np.random.default_rng(seed)
    u = rng.random(n_steps).tolist()
    obs, _ = env.reset(seed=seed)
    t0 = time.perf_counter()
    for i in range(n_steps):
        row = cdf[int(state_of[obs]) if obs < len(state_of) else obs]
        a = 0
        while a < len(row) - 1 and u[i] >= row[a]:
            a += 1
        obs, r, term, trunc, _ = env.step(a)
        if term or trunc:
            obs, _ = env.reset()
    return n_steps / (time.perf_counter() - t0)


def chi_square_joint(mdp, pi, batch):
    """Pearson statistic of the (s, a, s') counts given the visits of each s; p-value.

    ``batch`` is a packed ``Transitions`` (every row a real step)."""
    from scipy.stats import chi2

    S, A = mdp.n_states, mdp.n_actions
    code = (batch.states * A + batch.actions) * S + batch.next_states   # packed: all rows real
    counts = np.bincount(code, minlength=S * A * S).reshape(S, A * S)
    joint = (pi[:, :, None] * mdp.P).reshape(S, A * S)
    visits = counts.sum(axis=1, keepdims=True)
    expected = visits * joint
    pos = expected > 0
    if np.any(counts[~pos] > 0):
        return float("inf"), 0.0, 0
    stat = float(np.sum((counts[pos] - expected[pos]) ** 2 / expected[pos]))
    df = int(np.sum(np.maximum((joint > 0).sum(axis=1) - 1, 0)[visits[:, 0] > 0]))
    return stat, float(chi2.sf(stat, df)), df


def bench_sampling(args):
    try:
        from refpg.gym_tabular import from_gymnasium
    except ImportError as exc:  # pragma: no cover
        print(f"skip sampling: refpg.gym_tabular not importable ({exc})")
        return
    rows, checks = [], []
    loop_rate = None
    for env_id, n_eps in (("FrozenLake-v1", 100_000), ("Taxi-v4", 20_000)):
        mdp = from_gymnasium(env_id, gamma=0.99)
        if args.quick:
            n_eps //= 10
        policies = {"uniform": np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)}
        if env_id == "FrozenLake-v1":
            policies["optimal"] = optimal_policy(mdp)
        for pname, pi in policies.items():
            if env_id == "FrozenLake-v1" and pname == "uniform":
                # the best of several runs: a conservative (fast) baseline on a shared machine
                loop_rate = max(python_loop(env_id, mdp, pi, 5_000 if args.quick else 30_000,
                                            args.seed + k) for k in range(args.repeat))
                rows.append((env_id, pname, "python loop over gymnasium.step", "-",
                             f"{loop_rate / 1e6:.3f}", "1x"))

            def ratio(rate):
                return f"{rate / loop_rate:.0f}x" if loop_rate else "-"
            t_packed, packed = best_time(lambda: sample_transitions(
                mdp, pi, n_eps, np.random.default_rng(args.seed)), args.repeat)
            t_batch, batch = best_time(lambda: sample_from_table(
                mdp, pi, n_eps, np.random.default_rng(args.seed)), args.repeat)
            n = packed.n_transitions
            assert int(batch.mask.sum()) == n          # the same draw, padded
            H = batch.max_steps
            tb = _transition_tables(mdp, pi, False)
            row0 = packed.states[packed.offsets[:-1][packed.lengths > 0]] * tb["columns"]
            t_core, (_, _, _, core_len) = best_time(lambda: _stream(
                tb, row0, H, np.random.default_rng(args.seed)), args.repeat)
            n_core = int(core_len.sum())
            rate = n / t_packed
            rows.append((env_id, pname, f"sample_transitions -> Transitions (N={n_eps})",
                         f"{n / n_eps:.1f}", f"{rate / 1e6:.2f}", ratio(rate)))
            rate = n / t_batch
            rows.append((env_id, pname, f"sample_from_table -> Batch (N={n_eps}, T={H})", "",
                         f"{rate / 1e6:.2f}", ratio(rate)))
            rate = n_core / t_core
            rows.append((env_id, pname, "  the streaming roll alone (ids only)", "",
                         f"{rate / 1e6:.2f}", ratio(rate)))
            stat, p, df = chi_square_joint(mdp, pi, packed)
            checks.append((env_id, pname, n, df, f"{stat:.1f}", f"{p:.3g}"))
    print("== sampling: transitions per second (min time over repeats; all fields built) ==")
    table(rows, ("env", "policy", "route", "mean length", "M transitions/s", "vs loop"))
    print("chi-square of the joint (s, a, s') counts of sample_transitions given the visits of "
          "each s (exact table pi(a|s) P(s'|s,a)):")
    table(checks, ("env", "policy", "transitions", "df", "statistic", "p-value"))


# ------------------------------------------------------------------------- returns
def buffer_data(rng, N, T, p_term=0.01, limit=200, dtype=np.float64):
    """A rollout buffer: episodes back to back, terminated w.p. ``p_term`` per step,
    truncated at ``limit`` steps; consistent values / next values."""
    rewards = rng.standard_normal((N, T))
    term = np.zeros((N, T), bool)
    trunc = np.zeros((N, T), bool)
    for i in range(N):
        age = 0
        for t in range(T):
            age += 1
            if rng.random() < p_term:
                term[i, t] = True
                age = 0
            elif age == limit:
                trunc[i, t] = True
                age = 0
    values = rng.standard_normal((N, T))
    next_values = np.empty((N, T))
    next_values[:, :-1] = values[:, 1:]
    done = term | trunc
    next_values[done] = rng.standard_normal(int(done.sum()))   # value of the final obs
    next_values[:, -1] = rng.standard_normal(N)
    return [a.astype(dtype) if a.dtype.kind == "f" else a
            for a in (rewards, values, next_values, term, trunc)]


def plain_recursion(rewards, values, next_values, term, trunc, gamma, lam):
    """GAE by the textbook backward loop over T, float64 (the exactness reference)."""
    N, T = rewards.shape
    done = term | trunc
    adv = np.zeros((N, T))
    acc = np.zeros(N)
    for t in range(T - 1, -1, -1):
        delta = rewards[:, t] + gamma * (~term[:, t]) * next_values[:, t] - values[:, t]
        acc = delta + gamma * lam * (~done[:, t]) * acc
        adv[:, t] = acc
    return adv


def plain_reward_to_go(rewards, next_values, term, trunc, gamma):
    """Bootstrapped reward-to-go by the textbook backward loop over T, float64."""
    N, T = rewards.shape
    done = term | trunc
    boot = trunc.copy()
    boot[:, -1] |= ~done[:, -1]          # the buffer end cuts the last episode: bootstrap
    G = np.zeros((N, T))
    acc = np.zeros(N)
    for t in range(T - 1, -1, -1):
        acc = rewards[:, t] + gamma * (~done[:, t]) * acc + gamma * boot[:, t] * next_values[:, t]
        G[:, t] = acc
    return G


try:
    from scipy.signal import lfilter
except ImportError:  # pragma: no cover
    lfilter = None


def lfilter_route(rewards, values, next_values, term, trunc, gamma, lam, what=("adv", "ret")):
    """Spinning Up's finish_path per episode: deltas, then discount_cumsum by lfilter.

    ``what`` selects the advantage, the reward-to-go or both (finish_path does both)."""
    def discount_cumsum(x, discount):
        return lfilter([1], [1, float(-discount)], x[::-1], axis=0)[::-1]

    N, T = rewards.shape
    adv = np.empty((N, T))
    ret = np.empty((N, T))
    done = term | trunc
    for i in range(N):
        start = 0
        ends = list(np.flatnonzero(done[i])) + ([T - 1] if not done[i, T - 1] else [])
        for end in ends:
            last_val = 0.0 if term[i, end] else next_values[i, end]
            rews = np.append(rewards[i, start:end + 1], last_val)
            if "adv" in what:
                vals = np.append(values[i, start:end + 1], last_val)
                deltas = rews[:-1] + gamma * vals[1:] - vals[:-1]
                adv[i, start:end + 1] = discount_cumsum(deltas, gamma * lam)
            if "ret" in what:
                ret[i, start:end + 1] = discount_cumsum(rews, gamma)[:-1]
            start = end + 1
    return adv, ret


def sb3_buffer(N, T, gamma, lam, rewards, values, next_values, term, trunc, dtype):
    """A filled stable-baselines3 RolloutBuffer (time-major) in SB3's convention B."""
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer

    buf = RolloutBuffer(T, spaces.Box(-1, 1, (1,)), spaces.Discrete(2), device="cpu",
                        gae_lambda=lam, gamma=gamma, n_envs=N)
    done = term | trunc
    aug = rewards + gamma * np.where(trunc, next_values, 0.0)   # SB3#633 reward augmentation
    buf.rewards[:] = aug.T.astype(dtype)
    buf.values[:] = values.T.astype(dtype)
    buf.episode_starts[:] = 0
    buf.episode_starts[1:] = done[:, :-1].T
    return buf, next_values[:, -1].astype(dtype), done[:, -1]


def bench_returns(args):
    import importlib.util

    has_sb3 = importlib.util.find_spec("stable_baselines3") is not None
    has_scipy = lfilter is not None
    if not has_sb3:
        print("skip stable-baselines3: not installed (python3 -m venv /tmp/sb3 && "
              "/tmp/sb3/bin/pip install torch==2.13.0 && /tmp/sb3/bin/pip install "
              "stable-baselines3 -e .)")
    gamma, lam = 0.99, 0.95
    rng = np.random.default_rng(args.seed)
    rows = []
    for (N, T) in ((16, 2048), (1000, 1000)):
        if args.quick and N == 1000:
            N = 200
        r, v, nv, term, trunc = buffer_data(rng, N, T)
        flags = dict(terminated=term, truncated=trunc)
        ref_adv = plain_recursion(r, v, nv, term, trunc, gamma, lam)
        ref_ret = plain_reward_to_go(r, nv, term, trunc, gamma)
        scale_a, scale_r = np.max(np.abs(ref_adv)), np.max(np.abs(ref_ret))

        def err(a, ref):
            return np.max(np.abs(a - ref)) / np.max(np.abs(ref))
        t_gae, res = best_time(lambda: R.gae(r, v, nv, gamma, lam, **flags), args.repeat)
        t_rtg, G = best_time(lambda: R.reward_to_go(r, gamma, next_values=nv, **flags),
                             args.repeat)
        err_a = np.max(np.abs(res.advantages - ref_adv)) / scale_a
        err_r = np.max(np.abs(G - ref_ret)) / scale_r
        method = R._method("auto", N)
        rows.append((f"({T}, {N})", f"refpg gae [{method}] float64", f"{t_gae * 1e3:.3f}", "1",
                     f"{err_a:.1e}"))
        rows.append((f"({T}, {N})", f"refpg reward_to_go [{method}] float64",
                     f"{t_rtg * 1e3:.3f}", "1", f"{err_r:.1e}"))
        for m in ("chunked", "scan", "loop"):
            if m == method:
                continue
            t_m, res_m = best_time(lambda: R.gae(r, v, nv, gamma, lam, method=m, **flags),
                                   max(1, args.repeat // 2))
            rows.append((f"({T}, {N})", f"refpg gae [{m}] float64", f"{t_m * 1e3:.3f}",
                         f"{t_m / t_gae:.2f}",
                         f"{np.max(np.abs(res_m.advantages - ref_adv)) / scale_a:.1e}"))
        rT, vT, nvT, termT, truncT = (np.ascontiguousarray(a.T) for a in (r, v, nv, term, trunc))
        t_tm, res_tm = best_time(lambda: R.gae(rT, vT, nvT, gamma, lam, terminated=termT,
                                               truncated=truncT, time_major=True), args.repeat)
        rows.append((f"({T}, {N})", f"refpg gae [{method}] time_major=True (T, N) float64",
                     f"{t_tm * 1e3:.3f}", f"{t_tm / t_gae:.2f}",
                     f"{err(res_tm.advantages.T, ref_adv):.1e}"))
        t_plain, _ = best_time(lambda: plain_recursion(r, v, nv, term, trunc, gamma, lam),
                               max(1, args.repeat // 2))
        rows.append((f"({T}, {N})", "plain recursion (loop over T) float64",
                     f"{t_plain * 1e3:.3f}", f"{t_plain / t_gae:.1f}", "0 (reference)"))
        if has_scipy and N <= 64:
            rep = max(1, args.repeat // 2)
            t_a, (a_lf, _) = best_time(lambda: lfilter_route(
                r, v, nv, term, trunc, gamma, lam, what=("adv",)), rep)
            t_r, (_, r_lf) = best_time(lambda: lfilter_route(
                r, v, nv, term, trunc, gamma, lam, what=("ret",)), rep)
            t_b, _ = best_time(lambda: lfilter_route(r, v, nv, term, trunc, gamma, lam), rep)
            rows.append((f"({T}, {N})", "Spinning Up lfilter per episode: advantages",
                         f"{t_a * 1e3:.3f}", f"{t_a / t_gae:.1f}", f"{err(a_lf, ref_adv):.1e}"))
            rows.append((f"({T}, {N})", "Spinning Up lfilter per episode: reward-to-go",
                         f"{t_r * 1e3:.3f}", f"{t_r / t_rtg:.1f} (vs refpg rtg)",
                         f"{err(r_lf, ref_ret):.1e}"))
            rows.append((f"({T}, {N})", "Spinning Up finish_path (both)",
                         f"{t_b * 1e3:.3f}", f"{t_b / (t_gae + t_rtg):.1f} (vs gae + rtg)", ""))
        if has_sb3:
            import torch

            for dtype in (np.float32,):           # SB3 allocates its buffers in float32
                buf, last, dones = sb3_buffer(N, T, gamma, lam, r, v, nv, term, trunc, dtype)
                lv = torch.as_tensor(last)
                t_sb3, _ = best_time(lambda: buf.compute_returns_and_advantage(lv, dones),
                                     args.repeat)
                err = np.max(np.abs(buf.advantages.T - ref_adv)) / scale_a
                rows.append((f"({T}, {N})",
                             f"stable-baselines3 RolloutBuffer ({np.dtype(dtype).name})",
                             f"{t_sb3 * 1e3:.3f}",
                             f"{t_sb3 / t_gae:.1f} ({t_sb3 / t_tm:.1f} vs time-major)",
                             f"{err:.1e}"))
    print(f"== returns: GAE(gamma={gamma}, lam={lam}) and reward-to-go on rollout buffers "
          f"(episodes back to back, terminated p=0.01/step, truncated at 200) ==")
    table(rows, ("(T, N)", "route", "ms (min)", "time / refpg gae", "max rel. error vs plain"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--only", choices=("sampling", "returns"))
    args = ap.parse_args()
    if args.only != "returns":
        bench_sampling(args)
    if args.only != "sampling":
        bench_returns(args)


if __name__ == "__main__":
    main()
