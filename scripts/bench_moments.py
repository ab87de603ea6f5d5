"""Benchmark of refpg.moments: dynamic programming vs enumeration (derivations/moments.md).

Claim reproduced (issue 3, G9): the dynamic-programming route gives the exact mean and
covariance of the standard estimators for S = 10, A = 4, T = 1000 in under 10 seconds,
enumeration stops near T = 8 on a 2-state, 2-action MDP, and where both run they agree
to 1e-12 (relative to the largest entry).

    python scripts/bench_moments.py --seed 0 [--out results.json] [--mc 2000]

Prints three tables: DP time per estimator at T = 1000 (wall clock and this process's
CPU time, which is the fairer figure on a shared machine); DP vs enumeration error and
time per horizon; a Monte-Carlo sanity check at T = 1000 (max |z| of sampled means
under the DP covariance; |z| of a few units is expected, hundreds would mean a bug).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from refpg import TabularSoftmaxPolicy, random_mdp
from refpg import estimators as E
from refpg.evaluation import evaluate_finite_horizon
from refpg.moments import dp_moments, enumerate_trajectories, exact_moments
from refpg.sampling import sample_batch

CONFIGS = [
    ("REINFORCE", dict(estimator="reinforce")),
    ("REINFORCE, optimal b", dict(estimator="reinforce", baseline="optimal")),
    ("REINFORCE, mean b (N=10)", dict(estimator="reinforce", baseline="mean", n_episodes=10)),
    ("reward-to-go gamma^t", dict()),
    ("reward-to-go gamma^t, V_t", dict(state_values="V")),
    ("reward-to-go gamma^t, optimal b", dict(baseline="optimal")),
    ("reward-to-go uniform", dict(weighting="uniform")),
    ("reward-to-go uniform, V_t", dict(weighting="uniform", state_values="V")),
]


def _kw(kw, V):
    kw = dict(kw)
    if kw.get("state_values") == "V":
        kw["state_values"] = V
    return kw


def bench_dp(seed, S=10, A=4, T=1000, gamma=0.99):
    mdp = random_mdp(np.random.default_rng(seed), S, A, gamma=gamma, horizon=T)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(np.random.default_rng(seed + 1), scale=1.0)
    V = evaluate_finite_horizon(mdp, policy.probs_table(theta), T).V
    rows = []
    for name, kw in CONFIGS:
        t0, c0 = time.perf_counter(), time.process_time()
        m = dp_moments(mdp, policy, theta, T, **_kw(kw, V))
        rows.append(dict(estimator=name, seconds=time.perf_counter() - t0,
                         cpu_seconds=time.process_time() - c0,
                         trace_cov=float(np.trace(m.covariance)),
                         max_abs_bias=float(np.max(np.abs(m.bias)))))
    return mdp, policy, theta, V, rows


def _enum_estimator(kw, policy, theta, gamma, V, b_opt):
    kw = dict(kw)
    est = kw.pop("estimator", "reward_to_go")
    kw.pop("n_episodes", None)
    if kw.get("baseline") == "optimal":
        kw["baseline"] = b_opt
    if kw.get("state_values") == "V":
        kw["state_values"] = V
    if est == "reinforce":
        return lambda b: E.reinforce_contributions(b, policy, theta, gamma, **kw)
    return lambda b: E.reinforce_reward_to_go_contributions(b, policy, theta, gamma, **kw)


def bench_agreement(seed, horizons, S=2, A=2, gamma=0.95):
    from refpg.moments import exact_optimal_baseline
    rows = []
    for T in horizons:
        mdp = random_mdp(np.random.default_rng(seed + 7), S, A, gamma=gamma, horizon=T)
        policy = TabularSoftmaxPolicy.for_mdp(mdp)
        theta = policy.init_params(np.random.default_rng(seed + 8), scale=1.0)
        pi = policy.probs_table(theta)
        V = evaluate_finite_horizon(mdp, pi, T).V
        t0 = time.perf_counter()
        batch, p = enumerate_trajectories(mdp, pi, T)
        t_enum = time.perf_counter() - t0
        worst, t_est, t_dp = 0.0, 0.0, 0.0
        for name, kw in CONFIGS:
            if kw.get("baseline") == "mean":
                continue                               # batch-level: tuple enumeration
            est = kw.get("estimator", "reward_to_go")
            b_opt = exact_optimal_baseline(mdp, policy, theta, T, estimator=est,
                                           weighting=kw.get("weighting", "discounted"))
            t0 = time.perf_counter()
            em = exact_moments(_enum_estimator(kw, policy, theta, mdp.gamma, V, b_opt), mdp, pi,
                               T, per_episode=True)
            t_est += time.perf_counter() - t0
            t0 = time.perf_counter()
            dm = dp_moments(mdp, policy, theta, T, **_kw(kw, V))
            t_dp += time.perf_counter() - t0
            err_m = np.max(np.abs(dm.mean - em.mean)) / np.max(np.abs(em.mean))
            err_c = np.max(np.abs(dm.covariance - em.covariance)) / np.max(np.abs(em.covariance))
            worst = max(worst, float(err_m), float(err_c))
        rows.append(dict(T=T, trajectories=int(p.size), enumerate_seconds=t_enum,
                         enumeration_moments_seconds=t_est, dp_seconds=t_dp,
                         max_rel_error=worst))
    return rows


def bench_mc(mdp, policy, theta, V, n, seed):
    batch = sample_batch(mdp, policy, theta, n, np.random.default_rng(seed + 3))
    rows = []
    for name, fn, kw in (
            ("REINFORCE", E.reinforce_contributions, dict(estimator="reinforce")),
            ("reward-to-go gamma^t, V_t", E.reinforce_reward_to_go_contributions,
             dict(state_values=V)),
            ("reward-to-go uniform", E.reinforce_reward_to_go_contributions,
             dict(weighting="uniform"))):
        m = dp_moments(mdp, policy, theta, **kw)
        skw = {k: v for k, v in kw.items() if k != "estimator"}
        g = fn(batch, policy, theta, mdp.gamma, **skw)
        sd = np.sqrt(np.diag(m.covariance) / n)
        live = sd > 0
        z = (g.mean(axis=0) - m.mean)[live] / sd[live]
        ratio = g.var(axis=0, ddof=1)[live] * n / np.diag(m.covariance)[live] / n
        rows.append(dict(estimator=name, max_abs_z=float(np.max(np.abs(z))),
                         sample_over_exact_variance_min=float(ratio.min()),
                         sample_over_exact_variance_max=float(ratio.max())))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--mc", type=int, default=2000, help="episodes for the T=1000 MC check")
    ap.add_argument("--max-horizon", type=int, default=8)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    mdp, policy, theta, V, dp_rows = bench_dp(args.seed)
    t_dp_total = time.perf_counter() - t0
    print("DP, S=10, A=4, T=1000, d=40, gamma=0.99")
    for r in dp_rows:
        print(f"  {r['estimator']:34s} {r['seconds']:6.2f} s wall {r['cpu_seconds']:6.2f} s cpu"
              f"   tr Cov = {r['trace_cov']:.4e}"
              f"   max|bias| = {r['max_abs_bias']:.2e}")
    print(f"  {'all of the above':34s} {t_dp_total:7.2f} s")

    agree = bench_agreement(args.seed, range(1, args.max_horizon + 1))
    print("\nDP vs enumeration, S=2, A=2 (6 standard estimators per horizon)")
    print(f"  {'T':>3} {'trajectories':>12} {'enumerate s':>12} {'enum moments s':>15} "
          f"{'DP s':>8} {'max rel err':>12}")
    for r in agree:
        print(f"  {r['T']:>3} {r['trajectories']:>12} {r['enumerate_seconds']:>12.3f} "
              f"{r['enumeration_moments_seconds']:>15.3f} {r['dp_seconds']:>8.3f} "
              f"{r['max_rel_error']:>12.2e}")

    mc = bench_mc(mdp, policy, theta, V, args.mc, args.seed)
    print(f"\nMonte Carlo at T=1000, {args.mc} episodes, against the DP moments")
    for r in mc:
        print(f"  {r['estimator']:34s} max|z| = {r['max_abs_z']:.2f}   sample/exact var in "
              f"[{r['sample_over_exact_variance_min']:.2f}, "
              f"{r['sample_over_exact_variance_max']:.2f}]")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(dict(dp=dp_rows, dp_total_seconds=t_dp_total,
                                            agreement=agree, monte_carlo=mc), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
