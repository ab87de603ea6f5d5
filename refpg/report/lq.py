"""Report section 'lq': the linear-quadratic testbed and the linear Gaussian policy.

Every row compares two independent routes on fixed-seed built-in models
(derivations/lq.md, derivations/gaussian_policy.md): Lyapunov solvers (scipy versus a
Kronecker solve) and formulas (value matrix versus discounted second moment), analytic
gradients versus complex-step derivatives, Fisher matrices versus Gauss-Hermite
quadrature of the score's outer product and versus the Hessian of the KL.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..lq import (lecture_example_gradient, lecture_example_system, lq_eta,
                  lq_finite_horizon_return, lq_fisher, lq_gradient, lq_natural_gradient,
                  lq_state_moment, lq_value_matrix, random_lq_system)
from ..policies.gaussian import LinearGaussianPolicy
from ..testing import complex_step
from . import Check, compare  # noqa: F401

__all__ = ["checks"]

SECTION = "lq"


def _lq_model():
    """Seed 0: n = 3 states, m = 2 actions, gamma = 0.95, a stabilising small gain."""
    rng = np.random.default_rng(0)
    system = random_lq_system(rng, 3, 2, gamma=0.95)
    theta = system.pack(0.2 * rng.standard_normal((2, 3)), 0.3 * rng.standard_normal(2))
    return system, theta


def _gauss_hermite(m, k=5):
    x, w = np.polynomial.hermite_e.hermegauss(k)
    nodes = np.array(list(itertools.product(x, repeat=m)))
    weights = np.prod(np.array(list(itertools.product(w / np.sqrt(2 * np.pi), repeat=m))), 1)
    return nodes, weights


def _lq_rows():
    system, theta = _lq_model()
    rows = []
    for name, f in (("value matrix P (LQ1)", lq_value_matrix),
                    ("discounted 2nd moment Y (LQ2)", lq_state_moment)):
        rows.append(compare(SECTION, name, "Kronecker vec solve", "scipy bilinear + Schur",
                            f(system, theta, method="kron"), f(system, theta, method="scipy"),
                            1e-11, relative=True))
    eta = lq_eta(system, theta, route="moment", method="kron")
    rows.append(compare(SECTION, "eta", "moment route (LQ4), Kronecker",
                        "value route (LQ3), scipy Schur",
                        eta, lq_eta(system, theta, route="value", method="scipy"), 1e-11,
                        relative=True))
    rows.append(compare(SECTION, "eta", "Lyapunov (LQ4)", "2000-step moment recursion (LQ9)",
                        eta, lq_finite_horizon_return(system, theta, 2000), 1e-12,
                        relative=True))
    g = lq_gradient(system, theta)
    rows.append(compare(SECTION, "grad eta (K, log_std)", "closed form (LQ5-6)",
                        "complex step of eta", g,
                        complex_step(lambda t: lq_eta(system, t), theta), 1e-10, relative=True))
    F = lq_fisher(system, theta)
    rows.append(compare(SECTION, "natural gradient", "closed form (LQ8)", "solve(F (LQ7), grad)",
                        lq_natural_gradient(system, theta), np.linalg.solve(F, g), 1e-10,
                        relative=True))
    one_d = lecture_example_system()
    ks, sigmas = np.array([-1.5, -0.59, -0.2]), np.array([0.8, 0.3, 0.05])
    scalar = lecture_example_gradient(ks, sigmas)
    cs = np.array([complex_step(lambda u: lq_eta(one_d, one_d.pack([[u[0]]], [np.log(u[1])])),
                                np.array([k, s])) for k, s in zip(ks, sigmas)])
    rows.append(compare(SECTION, "1-D example grad (k, sigma)", "scalar closed form (LQ12)",
                        "complex step, matrix route", scalar, cs, 1e-10, relative=True))
    return rows


def _gaussian_rows():
    rng = np.random.default_rng(1)
    policy = LinearGaussianPolicy(3, 2, bias=True)
    theta = policy.init_params(rng, scale=0.7)
    theta_new = theta + 0.3 * rng.standard_normal(policy.n_params)
    obs = rng.standard_normal((4, 3))
    actions = policy.sample(theta, obs, rng)
    weights = rng.random(4)
    rows = [compare(SECTION, "Gaussian policy score", "hand-written (G3)",
                    "complex step of log_prob", policy.grad_log_prob(theta, obs, actions),
                    complex_step(lambda t: policy.log_prob(t, obs, actions), theta), 1e-10,
                    relative=True),
            compare(SECTION, "Gaussian grad_new KL(old||new)", "hand-written (G5)",
                    "complex step of kl", policy.grad_kl(theta, theta_new, obs),
                    complex_step(lambda t: policy.kl(theta, t, obs), theta_new), 1e-10,
                    relative=True)]
    F = policy.fisher(theta, obs, weights=weights)
    z, w = _gauss_hermite(policy.act_dim)
    a = policy.mean(theta, obs)[:, None, :] + np.exp(policy.log_std(theta)) * z[None]
    scores = policy.grad_log_prob(theta, np.repeat(obs[:, None], len(w), 1), a)
    quad = np.einsum("b,j,bjd,bje->de", weights, w, scores, scores)
    rows.append(compare(SECTION, "Gaussian Fisher", "closed form (G6)",
                        "Gauss-Hermite E[score score^T]", F, quad, 1e-11, relative=True))
    hess = complex_step(lambda t: weights @ policy.grad_kl(theta, t, obs), theta)
    rows.append(compare(SECTION, "Gaussian Fisher", "closed form (G6)",
                        "Hessian of KL (complex step)", F, hess, 1e-10, relative=True))
    v = rng.standard_normal(policy.n_params)
    rows.append(compare(SECTION, "Gaussian Fisher-vector product", "matrix-free (G8)",
                        "F @ v", policy.fisher_vector_product(theta, v, obs, weights=weights),
                        F @ v, 1e-12, relative=True))
    return rows


def checks():
    """Rows of this section: list of refpg.report.Check (well under a second)."""
    return _lq_rows() + _gaussian_rows()
