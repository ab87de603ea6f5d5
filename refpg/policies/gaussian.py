"""Linear Gaussian policy with state-independent log standard deviations (SCOPE P3).

    pi_theta(a | s) = N(a; mu(s), Sigma),   mu(s) = K s (+ b),
    Sigma = diag(exp(2 log_std))                                         (G1)

over observations ``s: (n,)`` (``n = obs_dim``) and actions ``a: (m,)``
(``m = act_dim``). The flat parameter vector is, in this order,

    theta = [ vec(K) row-major (m*n) | b (m, only if bias) | log_std (m) ]

so ``theta[i*n + j] = K[i, j]``. With ``z = (a - mu(s)) / sigma`` (elementwise,
``sigma = exp(log_std)``) the hand-written maps are
(derivations/gaussian_policy.md#key-equations):

    grad_K log pi = (z / sigma) s^T,  grad_b log pi = z / sigma,
    grad_log_std log pi = z^2 - 1                                        (G3)
    grad_new KL(pi_old || pi_new): mean part (mu_new - mu_old) / sigma_new^2
        through J_mu; log_std part 1 - (sigma_old^2 + (mu_old - mu_new)^2) / sigma_new^2   (G5)
    F(s) = [[J_mu^T Sigma^{-1} J_mu, 0], [0, 2 I_m]]                     (G6)

``J_mu = d mu / d(K, b)`` is ``[I_m kron s^T | I_m]``. Everything is complex-safe
(complex-step derivatives pass through ``log_prob``, ``kl``, ``grad_log_prob``
and ``grad_kl``).
"""
from __future__ import annotations

import numpy as np

from ..distributions import diag_gaussian_entropy, diag_gaussian_log_prob, kl_diag_gaussian
from ..validation import as_float_array, check_positive_int, check_rng, check_theta
from .base import Policy

__all__ = ["LinearGaussianPolicy"]


class LinearGaussianPolicy(Policy):
    """``a ~ N(K s (+ b), diag(exp(2 log_std)))`` (G1), ``d = m n (+ m) + m``.

    ``obs: (*B, n)`` observation vectors, ``actions: (*B, m)``, ``theta: (d,)``
    laid out as ``[vec(K) row-major, b (if bias), log_std]``.
    derivations/gaussian_policy.md#setting
    """

    def __init__(self, obs_dim, act_dim, *, bias=False):
        self.obs_dim = check_positive_int("obs_dim", obs_dim)
        self.act_dim = check_positive_int("act_dim", act_dim)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False; got {bias!r}")
        self.bias = bool(bias)
        m, n = self.act_dim, self.obs_dim
        self.n_params = m * n + (m if self.bias else 0) + m

    def __repr__(self):
        return (f"LinearGaussianPolicy(obs_dim={self.obs_dim}, act_dim={self.act_dim}, "
                f"bias={self.bias})")

    # --- parameter layout -----------------------------------------------------------
    def unpack(self, theta):
        """``theta -> (K: (m, n), b: (m,) or None, log_std: (m,))`` (views, no copy).

        derivations/gaussian_policy.md#setting
        """
        theta = self.check_theta(theta)
        return self._unpack(theta)

    def _unpack(self, theta):
        m, n = self.act_dim, self.obs_dim
        K = theta[: m * n].reshape(m, n)
        b = theta[m * n: m * n + m] if self.bias else None
        return K, b, theta[self.n_params - m:]

    def pack(self, K, log_std, b=None):
        """Inverse of ``unpack``: ``theta: (d,)`` from ``K: (m, n)``, ``log_std: (m,)``,
        ``b: (m,)``.

        ``b`` is required exactly when the policy has a bias.
        derivations/gaussian_policy.md#setting
        """
        m, n = self.act_dim, self.obs_dim
        K = as_float_array("K", K, shape=(m, n), allow_complex=True)
        log_std = as_float_array("log_std", log_std, shape=(m,), allow_complex=True)
        parts = [K.ravel()]
        if self.bias:
            if b is None:
                raise ValueError("b is required: this policy was built with bias=True")
            parts.append(as_float_array("b", b, shape=(m,), allow_complex=True))
        elif b is not None:
            raise ValueError("b must be None: this policy was built with bias=False")
        parts.append(log_std)
        return np.concatenate(parts)

    def log_std(self, theta):
        """The log standard deviations ``log_std: (m,)`` (state-independent).

        derivations/gaussian_policy.md#setting
        """
        return self.unpack(theta)[2]

    def mean(self, theta, obs):
        """``mu(s) = K s (+ b)``: ``(*B, m)`` for ``obs: (*B, n)`` (G1).

        derivations/gaussian_policy.md#setting
        """
        theta = self.check_theta(theta)
        obs, _ = self._check_obs(obs)
        return self._mean(theta, obs)

    # --- validation helpers ------------------------------------------------------------
    def _check_obs(self, obs):
        obs = as_float_array("obs", obs, allow_complex=True)
        if obs.ndim < 1 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"obs must have shape (*B, obs_dim) = (*B, {self.obs_dim}); "
                             f"got {obs.shape}")
        return obs, obs.shape[:-1]

    def _check_actions(self, actions, batch_shape):
        want = tuple(batch_shape) + (self.act_dim,)
        actions = as_float_array("actions", actions, allow_complex=True)
        if actions.shape != want:
            raise ValueError(f"actions must have shape (*B, act_dim) = {want} to match obs; "
                             f"got {actions.shape}")
        return actions

    def _mean(self, theta, obs):
        K, b, _ = self._unpack(theta)
        mu = obs @ K.T
        return mu if b is None else mu + b

    def _mean_vjp(self, obs, cot):
        """``J_mu^T c`` per sample: ``(*B, m n (+ m))`` for ``cot: (*B, m)``."""
        gk = cot[..., :, None] * obs[..., None, :]
        gk = gk.reshape(cot.shape[:-1] + (self.act_dim * self.obs_dim,))
        return np.concatenate([gk, cot], axis=-1) if self.bias else gk

    # --- the Policy interface -------------------------------------------------------
    def log_prob(self, theta, obs, actions):
        """``log N(a; mu(s), Sigma)`` (G2): ``(*B,)``.

        derivations/gaussian_policy.md#log-density-and-score
        """
        theta = self.check_theta(theta)
        obs, B = self._check_obs(obs)
        actions = self._check_actions(actions, B)
        _, _, log_std = self._unpack(theta)
        return diag_gaussian_log_prob(actions, self._mean(theta, obs), log_std)

    def grad_log_prob(self, theta, obs, actions):
        """Score (G3) ``[(z/sigma) s^T, z/sigma (bias), z^2 - 1]``: ``(*B, d)``.

        ``z = (a - mu(s)) / sigma``. derivations/gaussian_policy.md#log-density-and-score
        """
        theta = self.check_theta(theta)
        obs, B = self._check_obs(obs)
        actions = self._check_actions(actions, B)
        _, _, log_std = self._unpack(theta)
        inv_std = np.exp(-log_std)
        z = (actions - self._mean(theta, obs)) * inv_std
        g_mean = self._mean_vjp(obs, z * inv_std)
        return np.concatenate([g_mean, z * z - 1.0], axis=-1)

    def sample(self, theta, obs, rng):
        """``a = mu(s) + sigma * xi``, ``xi ~ N(0, I_m)`` drawn with ``rng``: ``(*B, m)``.

        derivations/gaussian_policy.md#setting
        """
        check_rng(rng)
        theta = self.check_theta(theta)
        if np.iscomplexobj(theta):
            raise TypeError("sample needs a real theta; got complex128")
        obs, B = self._check_obs(obs)
        if np.iscomplexobj(obs):
            raise TypeError("sample needs real obs; got complex128")
        _, _, log_std = self._unpack(theta)
        xi = rng.standard_normal(tuple(B) + (self.act_dim,))
        return self._mean(theta, obs) + np.exp(log_std) * xi

    def entropy(self, theta, obs):
        """``H = sum_i log_std_i + m/2 log(2 pi e)`` (D5), the same for every state: ``(*B,)``.

        derivations/gaussian_policy.md#entropy
        """
        theta = self.check_theta(theta)
        obs, B = self._check_obs(obs)
        _, _, log_std = self._unpack(theta)
        return np.broadcast_to(diag_gaussian_entropy(log_std), B).copy()

    def kl(self, theta_old, theta_new, obs):
        """``KL(pi_old(. | s) || pi_new(. | s))`` (G4), per state: ``(*B,)``.

        derivations/gaussian_policy.md#kl-and-its-gradient
        """
        theta_old = self.check_theta(theta_old, "theta_old")
        theta_new = self.check_theta(theta_new, "theta_new")
        obs, _ = self._check_obs(obs)
        ls_old, ls_new = self._unpack(theta_old)[2], self._unpack(theta_new)[2]
        # the mean is linear in theta: mu_old - mu_new from the parameter difference, which
        # is exact for nearby parameters (mu_old - mu_new itself would cancel)
        d_mu = self._mean(theta_old - theta_new, obs)
        ls_old = np.broadcast_to(ls_old, d_mu.shape)
        ls_new = np.broadcast_to(ls_new, d_mu.shape)
        return kl_diag_gaussian(d_mu, ls_old, np.zeros_like(d_mu), ls_new)

    def grad_kl(self, theta_old, theta_new, obs):
        """(G5) ``grad_{theta_new} KL(pi_old || pi_new)``: ``(*B, d)``.

        Mean part ``J_mu^T (mu_new - mu_old) / sigma_new^2``; log_std part
        ``1 - (sigma_old^2 + (mu_old - mu_new)^2) / sigma_new^2`` (written with
        ``expm1`` so that it is exactly 0 at ``theta_new = theta_old``). The mean
        difference is the mean of ``theta_new - theta_old`` (the mean is linear in
        theta), so nearby parameters do not cancel.
        derivations/gaussian_policy.md#kl-and-its-gradient
        """
        theta_old = self.check_theta(theta_old, "theta_old")
        theta_new = self.check_theta(theta_new, "theta_new")
        obs, _ = self._check_obs(obs)
        ls_old, ls_new = self._unpack(theta_old)[2], self._unpack(theta_new)[2]
        inv_var_new = np.exp(-2.0 * ls_new)
        diff = self._mean(theta_new - theta_old, obs)      # mu_new - mu_old, no cancellation
        g_mean = self._mean_vjp(obs, diff * inv_var_new)
        g_log_std = -np.expm1(2.0 * (ls_old - ls_new)) - diff * diff * inv_var_new
        return np.concatenate([g_mean, g_log_std], axis=-1)

    def fisher(self, theta, obs, weights=None):
        """(G6)-(G7) ``sum_i w_i F(s_i)``: ``(d, d)``, formed in closed form.

        ``F(s) = E_{a~pi}[g g^T]`` is block diagonal: ``Sigma^{-1} kron x x^T`` on the
        mean parameters (``x = s``, or ``(s, 1)`` with a bias) and ``2 I_m`` on the
        log standard deviations. ``weights: (*B,)`` non-negative, default the plain
        mean over ``obs``. derivations/gaussian_policy.md#fisher-matrix
        """
        theta = self.check_theta(theta)
        obs, B = self._check_obs(obs)
        w = self._weights(weights, B).reshape(-1)
        x = self._features(obs).reshape(-1, self.obs_dim + int(self.bias))
        _, _, log_std = self._unpack(theta)
        inv_var = np.exp(-2.0 * log_std)
        second = np.einsum("n,ni,nj->ij", w, x, x)          # sum_i w_i x_i x_i^T
        m = self.act_dim
        p = x.shape[1]
        # mean block in the (i, j) = (action row, feature) order, then permute to theta order
        mean_block = np.einsum("i,ik,jl->ijkl", inv_var, np.eye(m), second)  # [i, j, k, l]
        mean_block = mean_block.reshape(m * p, m * p)
        order = self._mean_order()
        d = self.n_params
        F = np.zeros((d, d), dtype=np.result_type(mean_block.dtype, w.dtype))
        F[: m * p, : m * p] = mean_block[np.ix_(order, order)]
        F[m * p:, m * p:] = 2.0 * np.sum(w) * np.eye(m)
        return F

    def fisher_vector_product(self, theta, v, obs, weights=None):
        """(G8) ``(sum_i w_i F(s_i)) v`` without forming ``F``: ``(d,)``.

        ``J_mu^T Sigma^{-1} (J_mu v)`` per state, summed with weights, and
        ``2 (sum_i w_i) v_log_std``. derivations/gaussian_policy.md#fisher-vector-product
        """
        theta = self.check_theta(theta)
        v = check_theta(v, self.n_params, name="v")
        obs, B = self._check_obs(obs)
        w = self._weights(weights, B)
        _, _, log_std = self._unpack(theta)
        VK, vb, vl = self._unpack(v)
        jv = obs @ VK.T                                   # J_mu v: (*B, m)
        if vb is not None:
            jv = jv + vb
        u = (w[..., None] * np.exp(-2.0 * log_std)) * jv  # w_i Sigma^{-1} J_mu v
        u2 = u.reshape(-1, self.act_dim)
        x2 = obs.reshape(-1, self.obs_dim)
        parts = [(u2.T @ x2).ravel()]                     # sum_i u_i s_i^T, row-major
        if self.bias:
            parts.append(u2.sum(axis=0))
        parts.append(2.0 * np.sum(w) * vl)
        return np.concatenate(parts)

    # --- internals --------------------------------------------------------------------
    def _features(self, obs):
        if not self.bias:
            return obs
        return np.concatenate([obs, np.ones(obs.shape[:-1] + (1,), dtype=obs.dtype)], axis=-1)

    def _mean_order(self):
        """Map theta's mean-parameter order (vec K, then b) to the (row i, feature j) order."""
        m, n = self.act_dim, self.obs_dim
        p = n + int(self.bias)
        idx = [i * p + j for i in range(m) for j in range(n)]
        if self.bias:
            idx += [i * p + n for i in range(m)]
        return np.asarray(idx)
