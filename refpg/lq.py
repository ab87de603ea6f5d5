"""Linear-quadratic systems with linear-Gaussian policies, solved exactly (SCOPE M3).

The continuous-action testbed (derivations/lq.md#setting):

    s_{t+1} = A s_t + B a_t + w_t,   w_t ~ N(0, W),   s_0 ~ N(0, Sigma0)
    r(s, a) = -(s^T Q s + a^T R a),  a ~ N(K s, Sigma),  Sigma = diag(exp(2 log_std))

with ``n`` state and ``m`` action dimensions. ``theta = [vec(K) row-major (m n), log_std (m)]``
is exactly the layout of ``LinearGaussianPolicy(n, m, bias=False)``. With ``M = A + B K``
and ``N = B Sigma B^T + W`` (derivations/lq.md#key-equations):

    P = Q + K^T R K + gamma M^T P M                                 (LQ1) value matrix
    Y = Sigma0 + gamma M Y M^T + gamma/(1-gamma) N                  (LQ2) discounted 2nd moment
    eta = -[tr(P Sigma0) + (tr(R Sigma) + gamma tr(P N)) / (1-gamma)]      (LQ3)
        = -[tr((Q + K^T R K) Y) + tr(R Sigma) / (1-gamma)]                 (LQ4)
    grad_K eta = -2 [(R + gamma B^T P B) K + gamma B^T P A] Y              (LQ5)
    grad_log_std eta = -2 Sigma diag(R + gamma B^T P B) / (1-gamma)        (LQ6)
    F = blockdiag(Sigma^{-1} kron (1-gamma) Y, 2 I_m)                      (LQ7)

Both Lyapunov equations need ``sqrt(gamma) rho(A + B K) < 1``; otherwise the return is
``-inf`` and every routine raises ``ValueError``. The default solver is a Kronecker
(vec) linear solve with plain transposes, so complex ``theta`` flows through and
complex-step derivatives are exact; ``method="scipy"`` uses
``scipy.linalg.solve_discrete_lyapunov`` with the Schur-based "bilinear" method
(real only: it conjugates).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .validation import (as_float_array, check_gamma, check_positive_float,
                         check_positive_int, check_rng, check_theta)

__all__ = ["LQSystem", "random_lq_system", "discrete_lyapunov", "lq_value_matrix",
           "lq_state_moment", "lq_eta",
           "lq_gradient", "lq_fisher", "lq_natural_gradient", "lq_finite_horizon_return",
           "lq_return_moments", "LQRollouts", "simulate_lq", "lecture_example_system",
           "lecture_example_eta", "lecture_example_gradient", "lecture_example_fisher",
           "lecture_example_natural_gradient"]

_SYM_TOL = 1e-10


def _check_psd(name, X, size):
    X = as_float_array(name, X, shape=(size, size))
    scale = max(1.0, float(np.max(np.abs(X))) if X.size else 1.0)
    asym = float(np.max(np.abs(X - X.T))) if X.size else 0.0
    if asym > _SYM_TOL * scale:
        raise ValueError(f"{name} must be symmetric; max |{name} - {name}^T| = {asym:.2e}")
    low = float(np.min(np.linalg.eigvalsh(X))) if X.size else 0.0
    if low < -_SYM_TOL * scale:
        raise ValueError(f"{name} must be positive semi-definite; smallest eigenvalue {low:.3e}")
    return X


@dataclass(frozen=True, eq=False)
class LQSystem:
    """``s' = A s + B a + w``, ``w ~ N(0, W)``, ``s_0 ~ N(0, Sigma0)``,
    reward ``-(s^T Q s + a^T R a)``.

    ``A: (n, n)``, ``B: (n, m)``, ``Q: (n, n)``, ``R: (m, m)``, ``W: (n, n)``,
    ``Sigma0: (n, n)``; ``Q, R, W, Sigma0`` symmetric positive semi-definite;
    ``0 <= gamma < 1``. Validated on construction (``ValueError`` naming the field).
    derivations/lq.md#setting
    """

    A: np.ndarray
    B: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    W: np.ndarray
    Sigma0: np.ndarray
    gamma: float

    def __post_init__(self):
        A = as_float_array("A", self.A, ndim=2)
        n = A.shape[0]
        if A.shape != (n, n):
            raise ValueError(f"A must be square (n, n); got {A.shape}")
        B = as_float_array("B", self.B, ndim=2)
        if B.shape[0] != n:
            raise ValueError(f"B must have shape (n, m) with n = {n}; got {B.shape}")
        m = B.shape[1]
        if m < 1:
            raise ValueError(f"B must have at least one column (m >= 1); got {B.shape}")
        set_ = object.__setattr__
        set_(self, "A", A)
        set_(self, "B", B)
        set_(self, "Q", _check_psd("Q", self.Q, n))
        set_(self, "R", _check_psd("R", self.R, m))
        set_(self, "W", _check_psd("W", self.W, n))
        set_(self, "Sigma0", _check_psd("Sigma0", self.Sigma0, n))
        set_(self, "gamma", check_gamma(self.gamma, allow_one=False))

    @property
    def state_dim(self) -> int:
        """``n``."""
        return self.A.shape[0]

    @property
    def action_dim(self) -> int:
        """``m``."""
        return self.B.shape[1]

    @property
    def n_params(self) -> int:
        """``d = m n + m``: ``vec(K)`` then ``log_std``."""
        return self.action_dim * (self.state_dim + 1)

    def __repr__(self):
        return f"LQSystem(n={self.state_dim}, m={self.action_dim}, gamma={self.gamma})"

    def pack(self, K, log_std):
        """``theta = [vec(K) row-major, log_std]: (d,)`` from ``K: (m, n)``, ``log_std: (m,)``."""
        m, n = self.action_dim, self.state_dim
        K = as_float_array("K", K, shape=(m, n), allow_complex=True)
        log_std = as_float_array("log_std", log_std, shape=(m,), allow_complex=True)
        return np.concatenate([K.ravel(), log_std])

    def unpack(self, theta):
        """``theta -> (K: (m, n), log_std: (m,))``; ``ValueError`` naming ``theta`` if malformed."""
        theta = check_theta(theta, self.n_params)
        m, n = self.action_dim, self.state_dim
        return theta[: m * n].reshape(m, n), theta[m * n:]

    def closed_loop(self, K):
        """``M = A + B K``, after checking ``sqrt(gamma) rho(M) < 1`` (else ``ValueError``)."""
        M = self.A + self.B @ K
        rho = float(np.max(np.abs(np.linalg.eigvals(np.real(M)))))
        if not np.sqrt(self.gamma) * rho < 1.0:
            raise ValueError(
                f"K does not stabilise the discounted system: sqrt(gamma) * spectral_radius"
                f"(A + B K) = {np.sqrt(self.gamma) * rho:.6g} >= 1, so the discounted "
                f"return is -inf (derivations/lq.md#stability)")
        return M


def random_lq_system(rng, n, m, *, gamma=0.9, open_loop_radius=0.9):
    """A seeded random ``LQSystem`` with ``n`` states and ``m`` actions.

    ``A`` is Gaussian rescaled to spectral radius ``open_loop_radius`` (so ``K = 0`` is
    stabilising when ``open_loop_radius < 1``), ``B = N(0, 1/4)``, ``Q = X X^T + I/10``,
    ``R = Z Z^T + I/10``, ``W = X_w X_w^T / 5`` and ``Sigma0 = X_s X_s^T`` with random
    ranks (``0..n`` and ``1..n``: rank-deficient noise is part of the test surface).
    derivations/lq.md#setting
    """
    check_rng(rng)
    n = check_positive_int("n", n)
    m = check_positive_int("m", m)
    A = rng.standard_normal((n, n))
    A *= check_positive_float("open_loop_radius", open_loop_radius) \
        / np.max(np.abs(np.linalg.eigvals(A)))
    B = 0.5 * rng.standard_normal((n, m))
    X = rng.standard_normal((n, n))
    Z = rng.standard_normal((m, m))
    Xw = rng.standard_normal((n, int(rng.integers(0, n + 1))))
    Xs = rng.standard_normal((n, int(rng.integers(1, n + 1))))
    return LQSystem(A=A, B=B, Q=X @ X.T + 0.1 * np.eye(n), R=Z @ Z.T + 0.1 * np.eye(m),
                    W=0.2 * Xw @ Xw.T, Sigma0=Xs @ Xs.T, gamma=gamma)


def _check_system(system):
    if not isinstance(system, LQSystem):
        raise TypeError(f"system must be an LQSystem; got {type(system).__name__}")
    return system


def discrete_lyapunov(F, C, *, method="kron"):
    """The solution ``X = sum_t F^t C (F^T)^t`` of ``X = F X F^T + C`` (LQ0).

    ``F, C: (n, n)``, ``rho(F) < 1`` required. ``method="kron"`` solves
    ``(I - F kron F) vec(X) = vec(C)`` with plain transposes (complex-safe);
    ``method="scipy"`` calls ``scipy.linalg.solve_discrete_lyapunov(..., method="bilinear")``
    (a Schur-based solver; real input only).
    derivations/lq.md#lyapunov-equations
    """
    F = as_float_array("F", F, ndim=2, allow_complex=True)
    n = F.shape[0]
    if F.shape != (n, n):
        raise ValueError(f"F must be square; got {F.shape}")
    C = as_float_array("C", C, shape=(n, n), allow_complex=True)
    rho = float(np.max(np.abs(np.linalg.eigvals(np.real(F))))) if n else 0.0
    if not rho < 1.0:
        raise ValueError(f"F must have spectral radius < 1 for the series to converge; "
                         f"got {rho:.6g}")
    if method == "kron":
        lhs = np.eye(n * n) - np.kron(F, F)     # vec_r(F X F^T) = (F kron F) vec_r(X)
        return np.linalg.solve(lhs, C.reshape(-1)).reshape(n, n)
    if method == "scipy":
        if np.iscomplexobj(F) or np.iscomplexobj(C):
            raise TypeError("method='scipy' conjugates (it solves F X F^H - X + C = 0) and "
                            "breaks complex-step derivatives; use method='kron'")
        # "bilinear": Cayley transform to a continuous Lyapunov equation solved by
        # Bartels-Stewart (Schur). scipy's default for n < 10, "direct", is the same
        # Kronecker solve as method="kron" and would not be an independent route.
        return scipy.linalg.solve_discrete_lyapunov(F, C, method="bilinear")
    raise ValueError(f"method must be 'kron' or 'scipy'; got {method!r}")


def _parts(system, theta):
    system = _check_system(system)
    K, log_std = system.unpack(theta)
    M = system.closed_loop(K)
    var = np.exp(2.0 * log_std)                      # diag(Sigma)
    N = (system.B * var) @ system.B.T + system.W     # B Sigma B^T + W
    return system, K, var, M, N


def lq_value_matrix(system, theta, *, method="kron"):
    """(LQ1) ``P = Q + K^T R K + gamma M^T P M``: ``(n, n)``; cost-to-go ``s^T P s + const``.

    derivations/lq.md#the-value-matrix-route
    """
    system, K, _, M, _ = _parts(system, theta)
    g = system.gamma
    return discrete_lyapunov(np.sqrt(g) * M.T, system.Q + K.T @ system.R @ K, method=method)


def lq_state_moment(system, theta, *, method="kron"):
    """(LQ2) ``Y = sum_t gamma^t E[s_t s_t^T]``: ``(n, n)``, the unnormalised discounted
    second moment (``E_{s ~ d_pi}[s s^T] = (1 - gamma) Y``).

    derivations/lq.md#the-second-moment-route
    """
    system, _, _, M, N = _parts(system, theta)
    g = system.gamma
    return discrete_lyapunov(np.sqrt(g) * M, system.Sigma0 + g / (1.0 - g) * N, method=method)


def lq_eta(system, theta, *, route="moment", method="kron"):
    """Exact ``eta = E[sum_t gamma^t r_t]`` by (LQ4) (``route="moment"``) or (LQ3) (``"value"``).

    ``method`` selects the Lyapunov solver (see ``discrete_lyapunov``). Complex-safe with
    ``method="kron"``. derivations/lq.md#key-equations
    """
    system, K, var, _, N = _parts(system, theta)
    g = system.gamma
    noise_cost = np.sum(np.diag(system.R) * var)      # tr(R Sigma)
    if route == "moment":
        Y = lq_state_moment(system, theta, method=method)
        return -(np.trace((system.Q + K.T @ system.R @ K) @ Y) + noise_cost / (1.0 - g))
    if route == "value":
        P = lq_value_matrix(system, theta, method=method)
        return -(np.trace(P @ system.Sigma0) + (noise_cost + g * np.trace(P @ N)) / (1.0 - g))
    raise ValueError(f"route must be 'moment' or 'value'; got {route!r}")


def _gain_terms(system, theta):
    system, K, var, _, _ = _parts(system, theta)
    g = system.gamma
    P = lq_value_matrix(system, theta)
    H = system.R + g * system.B.T @ P @ system.B                 # R + gamma B^T P B
    E = H @ K + g * system.B.T @ P @ system.A
    return system, var, H, E


def lq_gradient(system, theta):
    """Exact ``grad_theta eta: (d,)``, (LQ5) for ``vec(K)`` then (LQ6) for ``log_std``.

    Complex-safe (so its complex-step Jacobian is the Hessian of eta).
    derivations/lq.md#gradient
    """
    system, var, H, E = _gain_terms(system, theta)
    Y = lq_state_moment(system, theta)
    g_K = -2.0 * E @ Y
    g_log_std = -2.0 * var * np.diag(H) / (1.0 - system.gamma)
    return np.concatenate([g_K.ravel(), g_log_std])


def lq_fisher(system, theta):
    """(LQ7) Fisher ``E_{s~d_pi, a~pi}[g g^T]: (d, d)`` with ``E_{d_pi}[s s^T] = (1-gamma) Y``.

    ``Sigma^{-1} kron (1-gamma) Y`` on ``vec(K)`` (row-major), ``2 I_m`` on ``log_std``.
    derivations/lq.md#fisher-matrix-and-natural-gradient
    """
    system, _, var, _, _ = _parts(system, theta)
    Y = lq_state_moment(system, theta)
    m, n = system.action_dim, system.state_dim
    F = np.zeros((m * n + m, m * n + m), dtype=np.result_type(Y.dtype, var.dtype))
    F[: m * n, : m * n] = np.kron(np.diag(1.0 / var), (1.0 - system.gamma) * Y)
    F[m * n:, m * n:] = 2.0 * np.eye(m)
    return F


def lq_natural_gradient(system, theta):
    """(LQ8) A solution of ``F x = grad eta`` in closed form: ``(d,)``.

    ``x_K = -2 Sigma [(R + gamma B^T P B) K + gamma B^T P A] / (1-gamma)`` (``Y`` cancels),
    ``x_log_std = grad_log_std eta / 2``; the unique solution when ``Y`` is non-singular.
    derivations/lq.md#fisher-matrix-and-natural-gradient
    """
    system, var, H, E = _gain_terms(system, theta)
    g = system.gamma
    x_K = -2.0 * var[:, None] * E / (1.0 - g)
    x_log_std = -var * np.diag(H) / (1.0 - g)
    return np.concatenate([x_K.ravel(), x_log_std])


def lq_finite_horizon_return(system, theta, horizon):
    """``J_H = E[sum_{t<H} gamma^t r_t]`` by the forward moment recursion (LQ9):

    ``S_0 = Sigma0``, ``S_{t+1} = M S_t M^T + N``, ``J_H = -sum_t gamma^t [tr((Q + K^T R K) S_t)
    + tr(R Sigma)]``, iterated on ``D_t = gamma^t S_t``. Needs no stability. Complex-safe.
    derivations/lq.md#finite-horizon
    """
    system = _check_system(system)
    horizon = check_positive_int("horizon", horizon)
    K, log_std = system.unpack(theta)
    M = system.A + system.B @ K
    var = np.exp(2.0 * log_std)
    N = (system.B * var) @ system.B.T + system.W
    C = system.Q + K.T @ system.R @ K
    noise_cost = np.sum(np.diag(system.R) * var)
    # D_t = gamma^t E[s_t s_t^T] (scaled so that an unstable M with small gamma cannot
    # overflow): D_0 = Sigma0, D_{t+1} = gamma M D_t M^T + gamma^{t+1} N
    D = system.Sigma0 + 0.0 * M[0, 0]
    total, disc = 0.0, 1.0
    for _ in range(horizon):
        total = total - (np.trace(C @ D) + disc * noise_cost)
        disc *= system.gamma
        D = system.gamma * (M @ D @ M.T) + disc * N
    return total


def _sqrt_psd(X):
    lam, V = np.linalg.eigh(X)
    return (V * np.sqrt(np.clip(lam, 0.0, None))) @ V.T


def lq_return_moments(system, theta, horizon):
    """Exact mean and variance of ``G_H = sum_{t<H} gamma^t r_t``: ``(mean, variance)`` (LQ10).

    The trajectory is linear in standard normal noise ``xi``, so ``G_H = -xi^T Lambda xi``
    and ``E G_H = -tr(Lambda)``, ``Var G_H = 2 ||Lambda||_F^2``. Real ``theta`` only;
    cost ``O(H (n + H (n + m))^2)``. derivations/lq.md#finite-horizon
    """
    system = _check_system(system)
    horizon = check_positive_int("horizon", horizon)
    K, log_std = system.unpack(theta)
    if np.iscomplexobj(theta):
        raise TypeError("lq_return_moments needs a real theta")
    n, m, g = system.state_dim, system.action_dim, system.gamma
    dim = n + horizon * (m + n)
    Ls = np.zeros((n, dim))
    Ls[:, :n] = _sqrt_psd(system.Sigma0)
    W_half, std = _sqrt_psd(system.W), np.exp(log_std)
    Lam = np.zeros((dim, dim))
    disc = 1.0
    for t in range(horizon):
        off = n + t * (m + n)
        La = K @ Ls
        La[:, off: off + m] += np.diag(std)
        Lam += disc * (Ls.T @ system.Q @ Ls + La.T @ system.R @ La)
        Ls = system.A @ Ls + system.B @ La
        Ls[:, off + m: off + m + n] += W_half
        disc *= g
    return -float(np.trace(Lam)), 2.0 * float(np.sum(Lam * Lam))


@dataclass(frozen=True)
class LQRollouts:
    """Sampled episodes: ``states: (N, H+1, n)`` (``s_0..s_H``), ``actions: (N, H, m)``,
    ``rewards: (N, H)`` with ``rewards[:, t] = -(s_t^T Q s_t + a_t^T R a_t)``.

    derivations/lq.md#finite-horizon
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray


def simulate_lq(system, theta, n_episodes, horizon, rng):
    """Sample ``n_episodes`` episodes of ``horizon`` steps with ``rng`` only: ``LQRollouts``.

    Per step it draws the action noise ``xi_a ~ N(0, I_m)`` then the dynamics noise
    ``xi_w ~ N(0, I_n)`` (``w = W^{1/2} xi_w``); ``s_0 = Sigma0^{1/2} xi_0``.
    derivations/lq.md#finite-horizon
    """
    system = _check_system(system)
    n_episodes = check_positive_int("n_episodes", n_episodes)
    horizon = check_positive_int("horizon", horizon)
    check_rng(rng)
    K, log_std = system.unpack(theta)
    if np.iscomplexobj(theta):
        raise TypeError("simulate_lq needs a real theta")
    n, m = system.state_dim, system.action_dim
    std, W_half = np.exp(log_std), _sqrt_psd(system.W)
    # time-major while simulating (contiguous writes), batch-major on return
    states = np.empty((horizon + 1, n_episodes, n))
    actions = np.empty((horizon, n_episodes, m))
    rewards = np.empty((horizon, n_episodes))
    states[0] = rng.standard_normal((n_episodes, n)) @ _sqrt_psd(system.Sigma0)
    for t in range(horizon):
        s = states[t]
        a = s @ K.T + std * rng.standard_normal((n_episodes, m))
        actions[t] = a
        rewards[t] = -(np.sum((s @ system.Q) * s, axis=1) + np.sum((a @ system.R) * a, axis=1))
        states[t + 1] = s @ system.A.T + a @ system.B.T \
            + rng.standard_normal((n_episodes, n)) @ W_half
    states = np.ascontiguousarray(states.transpose(1, 0, 2))
    actions = np.ascontiguousarray(actions.transpose(1, 0, 2))
    rewards = np.ascontiguousarray(rewards.T)
    return LQRollouts(states, actions, rewards)


# --- the lecture's one-dimensional example -------------------------------------------------

def lecture_example_system():
    """The 1-D system of the lecture's natural-gradient slide: ``s' = s + a``,
    ``r = -s^2 - a^2``, ``s_0 ~ N(0, 1)``, no dynamics noise, ``gamma = 0.9``.

    ``a ~ N(k s, sigma^2)`` is stabilising iff ``sqrt(0.9) |1 + k| < 1``.
    derivations/lq.md#the-lectures-one-dimensional-example
    """
    one = np.ones((1, 1))
    return LQSystem(A=one, B=one, Q=one, R=one, W=np.zeros((1, 1)), Sigma0=one, gamma=0.9)


def _scalar_terms(k, sigma, system):
    system = lecture_example_system() if system is None else _check_system(system)
    if system.state_dim != 1 or system.action_dim != 1:
        raise ValueError(f"the lecture example is one-dimensional; got n = {system.state_dim}, "
                         f"m = {system.action_dim}")
    k = as_float_array("k", k, allow_complex=True)
    sigma = as_float_array("sigma", sigma, allow_complex=True)
    if np.any(np.real(sigma) <= 0):
        raise ValueError("sigma must be > 0 everywhere")
    k, sigma = np.broadcast_arrays(k, sigma)
    a, b = system.A[0, 0], system.B[0, 0]
    q, r, w, s0, g = system.Q[0, 0], system.R[0, 0], system.W[0, 0], system.Sigma0[0, 0], \
        system.gamma
    closed = a + b * k
    margin = 1.0 - g * closed * closed                      # 1 - gamma (a + b k)^2
    if np.any(np.real(margin) <= 0):
        worst = float(np.max(np.sqrt(g) * np.abs(np.real(closed))))
        raise ValueError(f"k does not stabilise the discounted system everywhere: "
                         f"max sqrt(gamma) |a + b k| = {worst:.6g} >= 1")
    P = (q + r * k * k) / margin
    Y = (s0 + g / (1.0 - g) * (b * b * sigma * sigma + w)) / margin
    H = r + g * b * b * P
    E = H * k + g * b * P * a
    return dict(g=g, q=q, r=r, sigma=sigma, k=k, P=P, Y=Y, H=H, E=E, b=b, w=w)


def lecture_example_eta(k, sigma, system=None):
    """``eta(k, sigma)`` of a 1-D system in closed form (LQ11), broadcast over ``k, sigma``.

    derivations/lq.md#the-lectures-one-dimensional-example
    """
    t = _scalar_terms(k, sigma, system)
    return -((t["q"] + t["r"] * t["k"] ** 2) * t["Y"] + t["r"] * t["sigma"] ** 2
             / (1.0 - t["g"]))


def lecture_example_gradient(k, sigma, system=None):
    """Vanilla gradient ``(d eta/dk, d eta/dsigma)`` (LQ12): ``(*shape, 2)``.

    ``d eta/dk = -2 E Y``, ``d eta/dsigma = -2 sigma H / (1 - gamma)`` with
    ``H = r + gamma b^2 P``, ``E = H k + gamma a b P``.
    derivations/lq.md#the-lectures-one-dimensional-example
    """
    t = _scalar_terms(k, sigma, system)
    return np.stack([-2.0 * t["E"] * t["Y"], -2.0 * t["sigma"] * t["H"] / (1.0 - t["g"])],
                    axis=-1)


def lecture_example_fisher(k, sigma, system=None):
    """Fisher in the lecture's ``(k, sigma)`` coordinates (LQ13): ``(*shape, 2, 2)``,
    ``F = diag((1 - gamma) Y, 2) / sigma^2``.

    derivations/lq.md#the-lectures-one-dimensional-example
    """
    t = _scalar_terms(k, sigma, system)
    s2 = t["sigma"] ** 2
    F = np.zeros(t["k"].shape + (2, 2), dtype=np.result_type(t["Y"], s2))
    F[..., 0, 0] = (1.0 - t["g"]) * t["Y"] / s2
    F[..., 1, 1] = 2.0 / s2
    return F


def lecture_example_natural_gradient(k, sigma, system=None):
    """``F^{-1} grad eta`` in ``(k, sigma)`` coordinates (LQ14): ``(*shape, 2)``,
    ``(-2 sigma^2 E / (1 - gamma), -sigma^3 H / (1 - gamma))``.

    derivations/lq.md#the-lectures-one-dimensional-example
    """
    t = _scalar_terms(k, sigma, system)
    s2 = t["sigma"] ** 2
    return np.stack([-2.0 * s2 * t["E"] / (1.0 - t["g"]),
                     -s2 * t["sigma"] * t["H"] / (1.0 - t["g"])], axis=-1)
