"""The policy interface and the generic softmax machinery (SCOPE P1-P4).

A policy is a family of distributions ``pi_theta(a | s)`` indexed by one flat
``theta: (d,)``; it never stores ``theta`` (CONVENTIONS.md: policies are
functions of an explicit theta, so that gradients can be checked by
perturbing it). Every method is batched over the leading axes of ``obs``.

``SoftmaxPolicy`` derives everything from three hand-written maps of its
logits ``z(theta, s): (A,)`` (derivations/policies.md#softmax-policies):

    logits(theta, s)               z                  (A,)
    _logits_jvp(theta, s, v)       J v                (A,)      J = dz/dtheta
    _logits_vjp(theta, s, c)       J^T c              (d,)

    grad log pi(a|s)            = J^T (e_a - pi)                       (P1)
    grad_new KL(pi_old || pi_new) = J_new^T (pi_new - pi_old)          (P2)
    F(s) = J^T (diag(pi) - pi pi^T) J = E_a[g g^T]                     (P3)
    F(s) v = J^T (pi * (J v) - pi (pi . J v))   (never forms F)        (P4)
"""
from __future__ import annotations

import abc

import numpy as np

from ..distributions import (_categorical_entropy, _kl_categorical, _log_softmax,
                             _softmax_difference)
from ..validation import as_float_array, as_index_array, check_rng, check_theta

__all__ = ["Policy", "SoftmaxPolicy"]


class Policy(abc.ABC):
    """Abstract policy ``pi_theta(a | s)``. See derivations/policies.md#the-policy-interface.

    Shapes: ``obs: (*B,)`` state indices or ``(*B, k)`` observation vectors
    (each subclass says which), ``actions: (*B,)`` integers or ``(*B, m)``
    vectors, ``theta: (d,)`` with ``d = n_params``.
    """

    #: ``d``, the length of ``theta``.
    n_params: int
    #: ``S`` if observations are state indices in ``range(S)`` (tabular-capable), else None.
    n_states: int | None = None

    def check_theta(self, theta, name="theta"):
        """``theta`` as a flat float64/complex128 vector of length ``n_params``, else ValueError."""
        return check_theta(theta, self.n_params, name=name)

    @abc.abstractmethod
    def log_prob(self, theta, obs, actions):
        """``log pi_theta(a | s)``: ``(*B,)``."""

    @abc.abstractmethod
    def grad_log_prob(self, theta, obs, actions):
        """Score ``grad_theta log pi_theta(a | s)``: ``(*B, d)``."""

    @abc.abstractmethod
    def sample(self, theta, obs, rng):
        """Actions ``a ~ pi_theta(. | s)`` drawn with ``rng`` only."""

    @abc.abstractmethod
    def entropy(self, theta, obs):
        """``H(pi_theta(. | s))``: ``(*B,)``."""

    @abc.abstractmethod
    def kl(self, theta_old, theta_new, obs):
        """``KL(pi_old(. | s) || pi_new(. | s))`` per state: ``(*B,)``."""

    @abc.abstractmethod
    def grad_kl(self, theta_old, theta_new, obs):
        """``grad_{theta_new} KL(pi_old(. | s) || pi_new(. | s))``: ``(*B, d)``."""

    @abc.abstractmethod
    def fisher(self, theta, obs, weights=None):
        """``sum_i w_i F(s_i)`` with ``F(s) = E_{a~pi}[g g^T]``: ``(d, d)``.

        ``weights: (*B,)`` non-negative; default the plain mean over ``obs``.
        With ``obs`` all states and ``weights = d_pi`` this is the exact Fisher.
        """

    @abc.abstractmethod
    def fisher_vector_product(self, theta, v, obs, weights=None):
        """``(sum_i w_i F(s_i)) v`` without forming the matrix: ``(d,)``."""

    def init_params(self, rng, scale=0.1):
        """A random ``theta ~ scale * N(0, I)`` (seeded through ``rng``)."""
        check_rng(rng)
        return scale * rng.standard_normal(self.n_params)

    # helpers shared by subclasses -------------------------------------------------
    def _weights(self, weights, batch_shape):
        if weights is None:
            n = int(np.prod(batch_shape)) if batch_shape else 1
            return np.full(batch_shape, 1.0 / max(n, 1))
        # complex weights arise when d_pi itself is complex-stepped (exact Fisher of a
        # complex theta); the sign rule applies to the real part
        w = as_float_array("weights", weights, allow_complex=True)
        if w.shape != tuple(batch_shape):
            raise ValueError(f"weights must have the batch shape of obs {tuple(batch_shape)}; "
                             f"got {w.shape}")
        if np.any(np.real(w) < 0):
            raise ValueError("weights must be non-negative")
        return w


class SoftmaxPolicy(Policy):
    """``pi_theta(a | s) = softmax(z(theta, s))_a`` over ``A = n_actions`` actions.

    Subclasses implement ``_check_obs``, ``_logits``, ``_logits_jvp`` and
    ``_logits_vjp`` (per sample, no sum over the batch); everything else is
    (P1)-(P4) of derivations/policies.md#softmax-policies.
    """

    n_actions: int

    # --- to implement -----------------------------------------------------------
    @abc.abstractmethod
    def _check_obs(self, obs):
        """Validated observations and their batch shape ``B``."""

    @abc.abstractmethod
    def _logits(self, theta, obs):
        """``z: (*B, A)``."""

    @abc.abstractmethod
    def _logits_jvp(self, theta, obs, v):
        """``J v: (*B, A)`` for ``v: (d,)``."""

    @abc.abstractmethod
    def _logits_vjp(self, theta, obs, cot):
        """``J^T c: (*B, d)`` per sample, for ``cot: (*B, A)``."""

    def _logits_vjp_sum(self, theta, obs, cot):
        """``sum_i J_i^T c_i: (d,)``; subclasses may override with a faster route."""
        out = self._logits_vjp(theta, obs, cot)
        return out.reshape(-1, self.n_params).sum(axis=0)

    # --- public API -----------------------------------------------------------------
    def logits(self, theta, obs):
        """``z(theta, s): (*B, A)``. derivations/policies.md#softmax-policies"""
        theta = self.check_theta(theta)
        obs, _ = self._check_obs(obs)
        return self._logits(theta, obs)

    def log_probs(self, theta, obs):
        """``log pi(. | s): (*B, A)`` via the stable log-softmax (D1) of
        derivations/distributions.md#categorical."""
        return _log_softmax(self.logits(theta, obs))

    def probs(self, theta, obs):
        """``pi(. | s) = exp(log pi(. | s)): (*B, A)``. derivations/policies.md#softmax-policies"""
        return np.exp(self.log_probs(theta, obs))

    def _check_actions(self, actions, batch_shape):
        return as_index_array("actions", actions, upper=self.n_actions, shape=batch_shape)

    def log_prob(self, theta, obs, actions):
        """``log pi_theta(a | s): (*B,)``. derivations/policies.md#softmax-policies"""
        theta = self.check_theta(theta)
        obs, B = self._check_obs(obs)
        actions = self._check_actions(actions, B)
        logp = _log_softmax(self._logits(theta, obs))
        return np.take_along_axis(logp, actions[..., None], axis=-1)[..., 0]

    def grad_log_prob(self, theta, obs, actions):
        """Score (P1) ``J^T (e_a - pi): (*B, d)``. derivations/policies.md#softmax-policies"""
        theta = self.check_theta(theta)
        obs, B = self._check_obs(obs)
        actions = self._check_actions(actions, B)
        logp = _log_softmax(self._logits(theta, obs))
        cot = -np.exp(logp)
        # 1 - pi_a as -expm1(log pi_a): no cancellation when pi_a is close to 1
        np.put_along_axis(cot, actions[..., None],
                          -np.expm1(np.take_along_axis(logp, actions[..., None], axis=-1)),
                          axis=-1)
        return self._logits_vjp(theta, obs, cot)

    def sample(self, theta, obs, rng):
        """``a ~ pi_theta(. | s)``: ``(*B,)`` int64, one uniform ``u`` per sample.

        Inverse CDF: ``a = #{k < A-1 : c_k <= u c_{A-1}}`` with ``c = cumsum(pi)``;
        scaling ``u`` by the computed total ``c_{A-1}`` (1 up to rounding) means
        an action whose probability underflowed to 0 is never drawn.
        derivations/policies.md#the-policy-interface
        """
        check_rng(rng)
        theta = self.check_theta(theta)
        if np.iscomplexobj(theta):
            raise TypeError("sample needs a real theta; got complex128")
        obs, B = self._check_obs(obs)
        cdf = np.cumsum(np.exp(_log_softmax(self._logits(theta, obs))), axis=-1)
        u = rng.random(B)[..., None] * cdf[..., -1:]
        a = np.sum(u >= cdf[..., :-1], axis=-1)
        return a.astype(np.int64)

    def entropy(self, theta, obs):
        """``H(pi(. | s)) = -sum_a pi log pi`` (D2): ``(*B,)``.

        derivations/distributions.md#categorical
        """
        return _categorical_entropy(self.logits(theta, obs))

    def kl(self, theta_old, theta_new, obs):
        """``KL(pi_old(. | s) || pi_new(. | s))`` (D3b): ``(*B,)``, never negative.

        derivations/policies.md#softmax-policies
        """
        theta_old = self.check_theta(theta_old, "theta_old")
        theta_new = self.check_theta(theta_new, "theta_new")
        obs, _ = self._check_obs(obs)
        return _kl_categorical(self._logits(theta_old, obs), self._logits(theta_new, obs))

    def grad_kl(self, theta_old, theta_new, obs):
        """(P2) ``grad_{theta_new} KL(pi_old || pi_new) = J_new^T (pi_new - pi_old): (*B, d)``.

        derivations/policies.md#softmax-policies
        """
        theta_old = self.check_theta(theta_old, "theta_old")
        theta_new = self.check_theta(theta_new, "theta_new")
        obs, _ = self._check_obs(obs)
        # pi_new - pi_old by (D8): accurate relative to the difference itself
        diff = _softmax_difference(self._logits(theta_new, obs), self._logits(theta_old, obs))
        return self._logits_vjp(theta_new, obs, diff)

    def logits_jacobian(self, theta, obs):
        """``J = dz/dtheta: (*B, A, d)``, assembled from ``A`` vector-Jacobian products.

        derivations/policies.md#softmax-policies
        """
        theta = self.check_theta(theta)
        obs, B = self._check_obs(obs)
        eye = np.eye(self.n_actions)
        cols = [self._logits_vjp(theta, obs, np.broadcast_to(eye[a], B + (self.n_actions,)))
                for a in range(self.n_actions)]
        return np.stack(cols, axis=-2)

    def fisher(self, theta, obs, weights=None):
        """(P3) ``sum_i w_i J_i^T (diag pi_i - pi_i pi_i^T) J_i: (d, d)``.

        ``weights: (*B,)`` non-negative, default ``1/N`` each.
        derivations/policies.md#softmax-policies
        """
        theta = self.check_theta(theta)
        obs, B = self._check_obs(obs)
        w = self._weights(weights, B)
        pi = np.exp(_log_softmax(self._logits(theta, obs)))
        J = self.logits_jacobian(theta, obs)
        centred = _centre(pi, J)
        A, d = self.n_actions, self.n_params
        w, pi, centred = w.reshape(-1), pi.reshape(-1, A), centred.reshape(-1, A, d)
        return np.einsum("n,na,nad,nae->de", w, pi, centred, centred)

    def fisher_vector_product(self, theta, v, obs, weights=None):
        """(P4) ``sum_i w_i J_i^T (pi_i * J_i v - pi_i (pi_i . J_i v)): (d,)``, ``v: (d,)``.

        One forward-mode product ``J v`` and one reverse-mode ``J^T c``; ``F`` is
        never formed. derivations/policies.md#softmax-policies
        """
        theta = self.check_theta(theta)
        v = check_theta(v, self.n_params, name="v")
        obs, B = self._check_obs(obs)
        w = self._weights(weights, B)
        pi = np.exp(_log_softmax(self._logits(theta, obs)))
        jv = self._logits_jvp(theta, obs, v)
        u = pi * _centre(pi, jv[..., None])[..., 0]
        return self._logits_vjp_sum(theta, obs, w[..., None] * u)

    # --- tabular-capable helpers (obs are state indices) ------------------------------
    def _all_states(self):
        if self.n_states is None:
            raise ValueError(f"{type(self).__name__} is not tabular-capable: its observations "
                             f"are not state indices (construct it with a feature table)")
        return np.arange(self.n_states)

    def probs_table(self, theta):
        """``pi(a | s)`` for every state: ``(S, A)`` (tabular-capable policies only).

        derivations/policies.md#softmax-policies
        """
        return self.probs(theta, self._all_states())

    def log_probs_table(self, theta):
        """``log pi(a | s)`` for every state: ``(S, A)``.

        derivations/policies.md#softmax-policies
        """
        return self.log_probs(theta, self._all_states())

    def grad_log_prob_table(self, theta):
        """Every score ``grad log pi(a | s) = J_s^T (e_a - pi_s)``: ``(S, A, d)`` (P1).

        derivations/policies.md#softmax-policies
        """
        states = self._all_states()
        theta = self.check_theta(theta)
        logp = _log_softmax(self._logits(theta, states))
        J = self.logits_jacobian(theta, states)
        # e_a - pi_s row by row, with 1 - pi_a as -expm1(log pi_a) (as in grad_log_prob):
        # J_a - pi.J cancels when pi_a is close to 1
        E = -np.broadcast_to(np.exp(logp)[:, None, :], logp.shape + logp.shape[-1:]).copy()
        diag = np.arange(logp.shape[-1])
        E[:, diag, diag] = -np.expm1(logp)
        return np.einsum("sac,scd->sad", E, J)

    def vjp_table(self, theta, cot):
        """``sum_s J_s^T c_s: (d,)`` for a cotangent ``cot: (S, A)`` on the logits table.

        The exact policy gradient (PG2) is one such product.
        derivations/policies.md#softmax-policies
        """
        states = self._all_states()
        theta = self.check_theta(theta)
        cot = as_float_array("cot", cot, shape=(self.n_states, self.n_actions),
                             allow_complex=True)
        return self._logits_vjp_sum(theta, states, cot)


def _centre(pi, x):
    """``x_a - sum_b pi_b x_b`` for ``pi: (*B, A)``, ``x: (*B, A, k)``.

    The row of the most probable action ``k`` is formed as
    ``sum_b pi_b (x_k - x_b)`` (the ``b = k`` term is exactly zero): for a
    near-deterministic policy it is ``O(1 - pi_k)`` and the plain difference
    would leave an absolute error ``eps |x|`` in it, i.e. a relative error
    ``eps / (1 - pi_k)`` in the Fisher matrix and its products.
    derivations/policies.md#numerical-stability
    """
    w = pi[..., None]
    c = x - np.sum(w * x, axis=-2, keepdims=True)
    k = np.argmax(np.real(pi), axis=-1)[..., None, None]
    xk = np.take_along_axis(x, k, axis=-2)
    np.put_along_axis(c, k, np.sum(w * (xk - x), axis=-2, keepdims=True), axis=-2)
    return c


def _check_state_indices(obs, n_states):
    obs = as_index_array("obs", obs, upper=n_states)
    return obs, obs.shape


def _check_obs_or_indices(obs, features, n_states, obs_dim):
    """Observations of a policy that takes either state indices (when it holds a
    feature table) or observation vectors ``(*B, obs_dim)``; returns ``(obs, B)``."""
    if features is not None:
        return _check_state_indices(obs, n_states)
    x = as_float_array("obs", obs)
    if x.ndim == 0 or x.shape[-1] != obs_dim:
        raise ValueError(f"obs must have shape (*B, obs_dim) = (*B, {obs_dim}); got {x.shape}")
    return x, x.shape[:-1]
