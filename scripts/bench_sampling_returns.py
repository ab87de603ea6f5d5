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

The machine is shared and its speed drifts (the same code and the same peers moved by up
to 2x between runs). So every route and every peer is timed once per *round*, the rounds
interleave them, and each ratio is computed within a round (both sides measured within
seconds of each other); the tables give the median over ``--rounds`` rounds and its range.
Within a round a route's time is the fastest of ``--inner`` consecutive calls (warm caches,
for every route and peer alike). The Python loop is one run of 20000 steps per round.
A peer that is not installed is skipped with a message; stable-baselines3 lives in its
own venv: ``/tmp/sb3/bin/python scripts/bench_sampling_returns.py``.
Usage: ``python scripts/bench_sampling_returns.py [--seed 0] [--rounds 7] [--inner 3]
[--quick] [--only sampling|returns]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from refpg import recurrence
from refpg import returns as R
from refpg.sampling import (_stream, _transition_tables, sample_from_table,
                            sample_transitions)


def timed(f, inner=1):
    """The fastest of ``inner`` consecutive calls (warm caches) and the last output."""
    best, out = float("inf"), None
    for _ in range(inner):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def spread(values, fmt="{:.2f}"):
    """``median [min-max]`` of per-round values."""
    v = np.asarray(values, float)
    return f"{fmt.format(np.median(v))} [{fmt.format(v.min())}-{fmt.format(v.max())}]"


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
    cases = []
    for env_id, n_eps in (("FrozenLake-v1", 100_000), ("Taxi-v4", 20_000)):
        mdp = from_gymnasium(env_id, gamma=0.99)
        n_eps = n_eps // 10 if args.quick else n_eps
        policies = {"uniform": np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)}
        if env_id == "FrozenLake-v1":
            policies["optimal"] = optimal_policy(mdp)
            loop_case = (env_id, mdp, policies["uniform"])
        for pname, pi in policies.items():
            tb = _transition_tables(mdp, pi, False)
            cases.append((env_id, pname, mdp, pi, n_eps, tb))
    loop_steps = 5_000 if args.quick else 20_000
    loop, rates, packed = [], {}, {}
    for r in range(args.rounds):       # one measurement of every route per round, interleaved
        loop.append(python_loop(*loop_case, loop_steps, args.seed + r))
        for env_id, pname, mdp, pi, n_eps, tb in cases:
            key = (env_id, pname)
            t_p, tr = timed(lambda: sample_transitions(
                mdp, pi, n_eps, np.random.default_rng(args.seed + r)), args.inner)
            t_b, b = timed(lambda: sample_from_table(
                mdp, pi, n_eps, np.random.default_rng(args.seed + r)), args.inner)
            assert int(b.mask.sum()) == tr.n_transitions          # the same draw, padded
            del b
            row0 = tr.states[tr.offsets[:-1][tr.lengths > 0]] * tb["columns"]
            t_c, (ids, _) = timed(lambda: _stream(
                tb, row0, mdp.horizon, np.random.default_rng(args.seed + r)), args.inner)
            n = tr.n_transitions
            for route, rate in (("packed", n / t_p), ("batch", n / t_b), ("roll", ids.size / t_c)):
                rates.setdefault(key + (route,), []).append(rate)
            if r == 0:
                packed[key] = tr
    loop = np.array(loop)
    rows = [("FrozenLake-v1", "uniform", "python loop over gymnasium.step", "-",
             spread(loop / 1e6, "{:.3f}"), "1x")]
    routes = {"packed": "sample_transitions -> Transitions",
              "batch": "sample_from_table -> Batch (N, H)",
              "roll": "  the streaming roll alone (packed ids, no fields)"}
    for env_id, pname, mdp, pi, n_eps, tb in cases:
        tr = packed[(env_id, pname)]
        for route, label in routes.items():
            rate = np.array(rates[(env_id, pname, route)])
            rows.append((env_id, pname, f"{label} (N={n_eps})" if route != "roll" else label,
                         f"{tr.n_transitions / n_eps:.1f}" if route == "packed" else "",
                         spread(rate / 1e6), spread(rate / loop, "{:.0f}")))
    print(f"== sampling: transitions per second, all fields built; median [range] over "
          f"{args.rounds} interleaved rounds, ratios within each round ==")
    table(rows, ("env", "policy", "route", "mean length", "M transitions/s", "vs loop (x)"))
    for env_id, pname, *_ in cases:
        rate = np.array(rates[(env_id, pname, "packed")])
        claim(f"sampling {env_id} {pname}, packed: >= 200x the gymnasium loop in every round",
              (rate / loop).min() >= 200, f"worst round {(rate / loop).min():.0f}x")
        claim(f"sampling {env_id} {pname}, packed: >= 20 M transitions/s (median of rounds)",
              np.median(rate) >= 20e6, f"{np.median(rate) / 1e6:.1f} M/s")
    checks = []
    for (env_id, pname), tr in packed.items():
        mdp, pi = next((c[2], c[3]) for c in cases if c[:2] == (env_id, pname))
        stat, p, df = chi_square_joint(mdp, pi, tr)
        checks.append((env_id, pname, tr.n_transitions, df, f"{stat:.1f}", f"{p:.3g}"))
    print("chi-square of the joint (s, a, s') counts of sample_transitions given the visits of "
          "each s (exact table pi(a|s) P(s'|s,a)):")
    table(checks, ("env", "policy", "transitions", "df", "statistic", "p-value"))
    for env_id, pname, n, df, stat, p in checks:
        claim(f"sampling {env_id} {pname}: chi-square of the joint law not rejected at 1e-6",
              float(p) > 1e-6, f"p = {p}")


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
        rT, vT, nvT, termT, truncT = (np.ascontiguousarray(a.T) for a in (r, v, nv, term, trunc))
        method = recurrence._method("auto", N)
        routes = {   # name -> (function, its advantages or reward-to-go in (N, T), reference)
            f"refpg gae [{method}] float64": (
                lambda: R.gae(r, v, nv, gamma, lam, **flags), lambda o: o.advantages, ref_adv),
            f"refpg reward_to_go [{method}] float64": (
                lambda: R.reward_to_go(r, gamma, next_values=nv, **flags), lambda o: o, ref_ret),
            f"refpg gae [{recurrence._method('auto', N, True)}] time_major=True (T, N) float64": (
                lambda: R.gae(rT, vT, nvT, gamma, lam, terminated=termT, truncated=truncT,
                              time_major=True), lambda o: o.advantages.T, ref_adv),
        }
        for m in ("chunked", "scan", "loop"):
            if m != method:
                routes[f"refpg gae [{m}] float64"] = (
                    lambda m=m: R.gae(r, v, nv, gamma, lam, method=m, **flags),
                    lambda o: o.advantages, ref_adv)
        routes["plain recursion (loop over T) float64"] = (
            lambda: plain_recursion(r, v, nv, term, trunc, gamma, lam), lambda o: o, ref_adv)
        if lfilter is not None and N <= 64:
            routes["Spinning Up lfilter per episode: advantages"] = (
                lambda: lfilter_route(r, v, nv, term, trunc, gamma, lam, what=("adv",)),
                lambda o: o[0], ref_adv)
            routes["Spinning Up lfilter per episode: reward-to-go"] = (
                lambda: lfilter_route(r, v, nv, term, trunc, gamma, lam, what=("ret",)),
                lambda o: o[1], ref_ret)
            routes["Spinning Up finish_path (both)"] = (
                lambda: lfilter_route(r, v, nv, term, trunc, gamma, lam), None, None)
        if has_sb3:
            import torch

            buf, last, dones = sb3_buffer(N, T, gamma, lam, r, v, nv, term, trunc, np.float32)
            lv = torch.as_tensor(last)
            routes["stable-baselines3 RolloutBuffer (float32)"] = (
                lambda: buf.compute_returns_and_advantage(lv, dones) or buf,
                lambda o: o.advantages.T, ref_adv)
        times = {name: [] for name in routes}
        errors = {}
        for rnd in range(args.rounds):            # every route once per round, interleaved
            for name, (f, pick, ref) in routes.items():
                t, out = timed(f, args.inner)
                times[name].append(t)
                if rnd == 0 and pick is not None:
                    errors[name] = np.max(np.abs(pick(out) - ref)) / np.max(np.abs(ref))
        t = {k: np.array(x) for k, x in times.items()}
        gae_name, rtg_name, tm_name = list(routes)[:3]
        vs = {gae_name: "1", rtg_name: "1"}
        for name in routes:
            if name.startswith("refpg gae [") and name != gae_name:
                vs[name] = spread(t[name] / t[gae_name])
            elif name.startswith("plain") or name.endswith("advantages"):
                vs[name] = spread(t[name] / t[gae_name])
            elif name.endswith("reward-to-go"):
                vs[name] = spread(t[name] / t[rtg_name]) + " vs refpg rtg"
            elif name.endswith("(both)"):
                vs[name] = spread(t[name] / (t[gae_name] + t[rtg_name])) + " vs gae + rtg"
            elif name.startswith("stable-baselines3"):
                vs[name] = (spread(t[name] / t[gae_name]) + "; "
                            + spread(t[name] / t[tm_name]) + " vs time-major")
        size = f"({T}, {N})"
        for name in (gae_name, rtg_name):
            claim(f"{size} {name.split(' [')[0]}: error <= 1e-13 relative to the plain recursion",
                  errors[name] <= 1e-13, f"{errors[name]:.1e}")
        for peer, mine in (("Spinning Up lfilter per episode: advantages", gae_name),
                           ("Spinning Up lfilter per episode: reward-to-go", rtg_name),
                           ("stable-baselines3 RolloutBuffer (float32)", gae_name)):
            if peer in t and N <= 64:
                ratio = t[peer] / t[mine]
                claim(f"{size} {mine.split(' [')[0]} >= 10x {peer.split(':')[0].split(' (')[0]}"
                      f" (median of rounds)", np.median(ratio) >= 10,
                      f"{np.median(ratio):.1f}x, worst round {ratio.min():.1f}x")
        sb3 = "stable-baselines3 RolloutBuffer (float32)"
        if sb3 in t and N > 64:
            ratio = t[sb3] / t[tm_name]
            claim(f"{size} GAE time-major no slower than {sb3} (median of rounds)",
                  np.median(ratio) >= 1, f"{np.median(ratio):.2f}x SB3's speed, rounds "
                  f"{ratio.min():.2f}-{ratio.max():.2f}")
        for name in routes:
            err = errors.get(name)
            rows.append((f"({T}, {N})", name, spread(t[name] * 1e3, "{:.3f}"), vs[name],
                         "0 (reference)" if name.startswith("plain") else
                         ("" if err is None else f"{err:.1e}")))
    print(f"== returns: GAE(gamma={gamma}, lam={lam}) and reward-to-go on rollout buffers "
          f"(episodes back to back, terminated p=0.01/step, truncated at 200); median [range] "
          f"over {args.rounds} interleaved rounds, ratios within each round ==")
    table(rows, ("(T, N)", "route", "ms", "time / refpg gae", "max rel. error vs plain"))


CLAIMS = []


def claim(text, met, measured):
    """Record one target of issue 3 against what this run measured (printed at the end)."""
    CLAIMS.append((text, "met" if met else "NOT MET", measured))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=7,
                    help="interleaved rounds (each times every route once)")
    ap.add_argument("--inner", type=int, default=3,
                    help="consecutive calls per route and round; the fastest counts (warm)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--only", choices=("sampling", "returns"))
    args = ap.parse_args()
    if args.only != "returns":
        bench_sampling(args)
    if args.only != "sampling":
        bench_returns(args)
    if CLAIMS:
        print("== the targets of issue 3 in this run ==" + (
            " (--quick: smaller sizes than the targets are stated for; a smoke run)"
            if args.quick else ""))
        table(CLAIMS, ("claim", "status", "measured"))


if __name__ == "__main__":
    main()
