"""Vanilla versus natural policy-gradient fields of the lecture's 1-D LQ example.

Reproduces the picture of CS285 lecture 5 ("natural gradient" slides, after Peters &
Schaal 2008) on refpg's exact model, derivations/lq.md#the-lectures-one-dimensional-example:
``s' = s + a``, ``r = -s^2 - a^2``, ``s_0 ~ N(0, 1)``, ``gamma = 0.9`` and the policy
``a ~ N(k s, sigma^2)`` with parameters ``(k, sigma)``. Every arrow is exact
(``refpg.lq.lecture_example_gradient`` and ``lecture_example_natural_gradient``); no
sampling is involved, so ``--seed`` is accepted for the common script interface and unused.

Usage::

    python scripts/fig_lq_gradient_field.py --seed 0 --out out/

writes ``out/fig_lq_gradient_field.png`` and prints the end points of the two ascent paths.
matplotlib is an optional extra (``pip install -e ".[plots]"``); the script says so and
exits with status 2 if it is missing.

What the figure should show (left: vanilla ``grad eta``, right: natural ``F^{-1} grad eta``;
arrows are unit directions, the background is ``log10(-eta)``, the dashed line is the
optimal gain ``k* = -0.5884`` which is optimal for every ``sigma``):

* left, the vanilla arrows point mostly DOWN (shrink sigma) except near the bottom edge;
  the vanilla ascent path (red, unit steps of 0.005) started at ``(k, sigma) = (-1.7, 0.9)``
  collapses ``sigma`` first and reaches ``sigma = 0.05`` at ``k = -1.19``, far from ``k*``;
* right, the natural arrows are tilted towards the horizontal by the factor
  ``m2 / 2 = E_d[s^2] / 2 < 1`` (derivations/lq.md, claim (C4)); the natural path from the
  same start reaches ``sigma = 0.05`` at ``k = -0.594``, next to ``k*``.

The script prints both end points, so these numbers can be checked.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from refpg.lq import (lecture_example_eta, lecture_example_gradient,
                      lecture_example_natural_gradient)

K_RANGE = (-2.0, 0.0)         # stabilising iff -2.054 < k < 0.054 (sqrt(0.9) |1 + k| < 1)
SIGMA_RANGE = (0.05, 1.0)
START = (-1.7, 0.9)
K_STAR = -0.58840             # discounted Riccati gain; checked in tests/test_lq.py


def ascent_path(field, start, step=0.005, n_steps=2000):
    """Follow the unit direction of ``field(k, sigma)`` until ``sigma`` leaves the plot or
    ``k`` comes within one step of ``k*`` with a vanishing field: ``(n, 2)`` points."""
    point = np.array(start, dtype=float)
    path = [point.copy()]
    for _ in range(n_steps):
        d = field(point[0], point[1])
        norm = np.hypot(d[0], d[1])
        if not norm > 1e-12:
            break
        point = point + step * d / norm
        if not (K_RANGE[0] < point[0] < K_RANGE[1] and SIGMA_RANGE[0] <= point[1] <= 1.05):
            break
        path.append(point.copy())
    return np.array(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="unused: the figure is exact")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("fig_lq_gradient_field: matplotlib is not installed; it is an optional extra: "
              "pip install -e '.[plots]'", file=sys.stderr)
        return 2

    ks = np.linspace(K_RANGE[0] + 0.05, K_RANGE[1] - 0.05, 21)
    sigmas = np.linspace(SIGMA_RANGE[0], SIGMA_RANGE[1], 16)
    K, S = np.meshgrid(ks, sigmas)
    fine_k, fine_s = np.meshgrid(np.linspace(*K_RANGE, 200), np.linspace(*SIGMA_RANGE, 120))
    cost = np.log10(-lecture_example_eta(fine_k, fine_s))

    fields = {
        "vanilla gradient": lambda k, s: lecture_example_gradient(k, s),
        "natural gradient": lambda k, s: lecture_example_natural_gradient(k, s),
    }
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, (title, field) in zip(axes, fields.items()):
        ax.contourf(fine_k, fine_s, cost, levels=30, cmap="Greys")
        d = field(K, S)
        norm = np.hypot(d[..., 0], d[..., 1])
        ax.quiver(K, S, d[..., 0] / norm, d[..., 1] / norm, angles="xy", scale=30,
                  color="tab:blue")
        path = ascent_path(field, START)
        ax.plot(path[:, 0], path[:, 1], color="tab:red", lw=2)
        ax.plot(*START, "o", color="tab:red")
        ax.axvline(K_STAR, ls="--", color="k", lw=1)
        ax.set_title(f"{title} (unit directions)")
        ax.set_xlabel("k (policy mean a = k s)")
        ax.set_xlim(*K_RANGE)
        ax.set_ylim(0.0, SIGMA_RANGE[1] + 0.05)
        print(f"{title}: path from {START} ends at k = {path[-1, 0]:.3f}, "
              f"sigma = {path[-1, 1]:.3f} after {len(path) - 1} steps of 0.005")
    axes[0].set_ylabel("sigma (policy standard deviation)")
    fig.suptitle("s' = s + a, r = -s^2 - a^2, gamma = 0.9: background log10(-eta), "
                 "dashed k* = -0.588")
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "fig_lq_gradient_field.png"
    fig.savefig(target, dpi=120)
    plt.close(fig)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
