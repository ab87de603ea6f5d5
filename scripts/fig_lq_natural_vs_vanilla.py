"""Vanilla versus natural gradient on the lecture's 1-D LQ example as sigma shrinks.

Companion of derivations/natural.md#invariance-to-reparametrisation and
derivations/lq.md#the-lectures-one-dimensional-example (the model is ``refpg.lq``'s exact
``s' = s + a``, ``r = -s^2 - a^2``, ``s_0 ~ N(0, 1)``, ``gamma = 0.9``, policy
``a ~ N(k s, sigma^2)`` with parameters ``(k, sigma)``). Everything is exact; ``--seed`` is
accepted for the common script interface and unused.

Usage::

    python scripts/fig_lq_natural_vs_vanilla.py --seed 0 --out out/

prints the numbers below and writes ``out/fig_lq_natural_vs_vanilla.csv`` (the ascent paths);
with matplotlib installed (optional extra ``pip install -e ".[plots]"``) it also writes
``out/fig_lq_natural_vs_vanilla.png``.

What it shows.

* Left panel: the fraction of the unit ascent direction along ``k``, ``|d_k| / ||d||``,
  against ``sigma`` (log scale) at three gains ``k`` (solid vanilla, dashed natural). For
  ``sigma`` between about 0.1 and 1 the vanilla direction is dominated by the ``sigma``
  component (its share along ``k`` dips to 0.2-0.5 near ``sigma = 0.3``); the natural
  direction ``F^{-1} grad eta = (-2 sigma^2 E / (1-gamma), -sigma^3 H / (1-gamma))`` has a
  ``k``/``sigma`` ratio ``2E / (sigma H)`` that grows as ``sigma`` shrinks, and its share
  along ``k`` is close to 1 below ``sigma = 0.1``.
* Middle and right panels: ``k`` and ``sigma`` along two ascent runs from
  ``(k, sigma) = (-1.7, 0.9)``, each step scaled to the same KL, ``1/2 d^T F d = delta``
  (``delta = 1e-3``, the TRPO step length of derivations/natural.md#the-natural-gradient):
  the vanilla direction spends its KL budget on ``sigma`` (the Fisher entry
  ``F_sigma_sigma = 2 / sigma^2`` grows as ``sigma`` shrinks, so parameter steps shrink like
  ``sigma``) and stalls far from ``k* = -0.5884``; the natural direction reaches ``k*``.

The script prints, for each run, the end point and ``eta`` after 400 steps, and the largest
difference between refpg's closed-form natural gradient and ``np.linalg.solve(F, grad)``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from refpg.lq import (lecture_example_eta, lecture_example_fisher, lecture_example_gradient,
                      lecture_example_natural_gradient)

START = (-1.7, 0.9)
DELTA = 1e-3
N_STEPS = 400
K_STAR = -0.58840              # discounted Riccati gain (tests/test_lq.py checks it)
GAINS = (-1.5, -1.0, -0.3)
SIGMAS = np.logspace(-2, 0, 60)


def _stabilising(k):
    return np.sqrt(0.9) * abs(1.0 + k) < 1.0


def trust_region_run(kind, start=START, delta=DELTA, n_steps=N_STEPS):
    """Ascent with steps ``sqrt(2 delta / d^T F d) d``, ``d`` vanilla or natural: ``(n, 2)``."""
    p = np.array(start, dtype=float)
    path = [p.copy()]
    for _ in range(n_steps):
        g = lecture_example_gradient(p[0], p[1])
        F = lecture_example_fisher(p[0], p[1])
        d = g if kind == "vanilla" else lecture_example_natural_gradient(p[0], p[1])
        quad = float(d @ F @ d)
        if not quad > 0:
            break
        q = p + np.sqrt(2.0 * delta / quad) * d
        if not (q[1] > 0 and _stabilising(q[0])):
            break
        p = q
        path.append(p.copy())
    return np.array(path)


def direction_fractions():
    """``|d_k| / ||d||`` for vanilla and natural directions: two ``(len(GAINS), len(SIGMAS))``."""
    out = {}
    for kind, field in (("vanilla", lecture_example_gradient),
                        ("natural", lecture_example_natural_gradient)):
        rows = []
        for k in GAINS:
            d = field(np.full_like(SIGMAS, k), SIGMAS)
            rows.append(np.abs(d[:, 0]) / np.hypot(d[:, 0], d[:, 1]))
        out[kind] = np.array(rows)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="unused: everything is exact")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)

    # cross-check: closed-form natural gradient against a dense solve
    ks, ss = np.meshgrid(np.linspace(-1.9, -0.05, 15), SIGMAS)
    g = lecture_example_gradient(ks, ss)
    F = lecture_example_fisher(ks, ss)
    nat = lecture_example_natural_gradient(ks, ss)
    solved = np.linalg.solve(F, g[..., None])[..., 0]
    rel = np.max(np.abs(nat - solved) / np.maximum(np.abs(solved), 1e-300))
    print(f"closed-form F^-1 grad vs np.linalg.solve: max relative difference {rel:.2e}")

    fractions = direction_fractions()
    for kind in ("vanilla", "natural"):
        for k, row in zip(GAINS, fractions[kind]):
            print(f"{kind:8s} k = {k:5.2f}: |d_k|/||d|| = {row[-1]:.3f} at sigma = 1, "
                  f"{row[0]:.3f} at sigma = 0.01")

    runs = {kind: trust_region_run(kind) for kind in ("vanilla", "natural")}
    for kind, path in runs.items():
        k, s = path[-1]
        print(f"{kind:8s} trust-region run (delta = {DELTA}): {len(path) - 1} steps, ends at "
              f"k = {k:.4f}, sigma = {s:.3e}, eta = {float(lecture_example_eta(k, s)):.6f} "
              f"(k* = {K_STAR})")

    args.out.mkdir(parents=True, exist_ok=True)
    csv = args.out / "fig_lq_natural_vs_vanilla.csv"
    n = max(len(p) for p in runs.values())
    table = np.full((n, 5), np.nan)
    table[:, 0] = np.arange(n)
    for j, kind in enumerate(("vanilla", "natural")):
        table[: len(runs[kind]), 1 + 2 * j: 3 + 2 * j] = runs[kind]
    np.savetxt(csv, table, delimiter=",", header="step,k_vanilla,sigma_vanilla,k_natural,"
               "sigma_natural", comments="")
    print(f"wrote {csv}")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (optional extra: pip install -e '.[plots]'); "
              "no figure written")
        return 0
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    colours = ("tab:green", "tab:orange", "tab:purple")
    for kind, style in (("vanilla", "-"), ("natural", "--")):
        for k, row, colour in zip(GAINS, fractions[kind], colours):
            axes[0].semilogx(SIGMAS, row, style, color=colour, label=f"{kind}, k = {k}")
    axes[0].set_xlabel("sigma")
    axes[0].set_ylabel("|d_k| / ||d||")
    axes[0].set_title("share of the ascent direction along k")
    axes[0].legend(fontsize=7)
    for kind, colour in (("vanilla", "tab:red"), ("natural", "tab:blue")):
        path = runs[kind]
        axes[1].plot(path[:, 0], color=colour, label=kind)
        axes[2].semilogy(path[:, 1], color=colour, label=kind)
    axes[1].axhline(K_STAR, ls=":", color="k", label="k*")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("k")
    axes[1].set_title(f"gain, steps of KL {DELTA}")
    axes[1].legend()
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("sigma")
    axes[2].set_title("standard deviation")
    axes[2].legend()
    fig.tight_layout()
    target = args.out / "fig_lq_natural_vs_vanilla.png"
    fig.savefig(target, dpi=120)
    plt.close(fig)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
