"""Linear softmax policy (SCOPE P2): ``pi(a | s) = softmax_a(theta . phi(s, a))``.

The logits are linear in ``theta: (k,)``, so the logit Jacobian of one
observation is the feature matrix itself, independent of ``theta``:

    z(s)    = Phi_s theta,      Phi_s = [phi(s, a)]_a : (A, k)
    J_s v   = Phi_s v                       (forward mode)
    J_s^T c = Phi_s^T c = sum_a c_a phi(s, a)   (reverse mode)

Two constructions (derivations/policies.md#linear-softmax):

* ``LinearSoftmaxPolicy(features)`` with a feature table ``features: (S, A, k)``;
  observations are state indices, so the policy is tabular-capable
  (``n_states = S``) and works with ``refpg.policy_gradient``.
* ``LinearSoftmaxPolicy.for_observations(obs_dim, n_actions, bias=True)``:
  ``z = W x + b`` on observation vectors ``x: (*B, obs_dim)``, i.e.
  ``phi(x, a) = e_a (x) [x, 1]`` (Kronecker product). ``theta`` is the
  ``(A, obs_dim + 1)`` matrix ``[W | b]`` flattened in C order
  (``theta[a*(m+1) + i] = W[a, i]``, ``theta[a*(m+1) + m] = b[a]``); without
  bias it is ``W: (A, obs_dim)`` flattened.
"""
from __future__ import annotations

import numpy as np

from ..validation import as_float_array, check_positive_int
from .base import SoftmaxPolicy, _check_obs_or_indices

__all__ = ["LinearSoftmaxPolicy"]


class LinearSoftmaxPolicy(SoftmaxPolicy):
    """``pi_theta(a | s) = exp(theta . phi(s, a)) / sum_b exp(theta . phi(s, b))`` (P2).

    ``LinearSoftmaxPolicy(features)``: ``features: (S, A, k)``, observations
    ``obs: (*B,)`` state indices, ``d = k``. Use ``for_observations`` for
    observation vectors. derivations/policies.md#linear-softmax
    """

    def __init__(self, features):
        phi = as_float_array("features", features, ndim=3)
        S, A, k = phi.shape
        if min(S, A, k) < 1:
            raise ValueError(f"features must have shape (S, A, k) with S, A, k >= 1; "
                             f"got {phi.shape}")
        phi = phi.copy()
        phi.flags.writeable = False
        self.features = phi
        self.n_states, self.n_actions, self.n_params = S, A, k
        self.obs_dim = None
        self.bias = None

    @classmethod
    def for_observations(cls, obs_dim, n_actions, bias=True):
        """``z = W x + b`` on observation vectors ``x: (*B, obs_dim)``; ``d = A (obs_dim + bias)``.

        ``theta`` is ``[W | b]: (A, obs_dim + 1)`` flattened in C order (or
        ``W: (A, obs_dim)`` when ``bias`` is False). Not tabular-capable.
        derivations/policies.md#linear-softmax
        """
        self = cls.__new__(cls)
        self.obs_dim = check_positive_int("obs_dim", obs_dim)
        self.n_actions = check_positive_int("n_actions", n_actions)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be a bool; got {bias!r}")
        self.bias = bool(bias)
        self.features = None
        self.n_states = None
        self.n_params = self.n_actions * (self.obs_dim + int(self.bias))
        return self

    @classmethod
    def one_hot(cls, n_states, n_actions):
        """Features ``phi(s, a) = e_{s*A + a}``: the tabular softmax as a linear policy.

        derivations/policies.md#linear-softmax
        """
        S = check_positive_int("n_states", n_states)
        A = check_positive_int("n_actions", n_actions)
        return cls(np.eye(S * A).reshape(S, A, S * A))

    def __repr__(self):
        if self.features is None:
            return (f"LinearSoftmaxPolicy.for_observations(obs_dim={self.obs_dim}, "
                    f"n_actions={self.n_actions}, bias={self.bias})")
        S, A, k = self.features.shape
        return f"LinearSoftmaxPolicy(features: (S, A, k) = ({S}, {A}, {k}))"

    # --- views ------------------------------------------------------------------------
    def weights(self, theta):
        """``(W, b)`` with ``W: (A, obs_dim)`` and ``b: (A,)`` (zeros without bias).

        Observation mode only. derivations/policies.md#linear-softmax
        """
        if self.features is not None:
            raise ValueError("weights() is for LinearSoftmaxPolicy.for_observations; this "
                             "policy has a feature table (theta is its coefficient vector)")
        theta = self.check_theta(theta)
        M = theta.reshape(self.n_actions, self.obs_dim + int(self.bias))
        b = M[:, self.obs_dim] if self.bias else np.zeros(self.n_actions, dtype=theta.dtype)
        return M[:, :self.obs_dim], b

    def phi(self, obs):
        """The features ``phi(s, a)`` of each observation: ``(*B, A, d)``.

        ``z = phi(obs) @ theta``. derivations/policies.md#linear-softmax
        """
        obs, B = self._check_obs(obs)
        if self.features is not None:
            return self.features[obs]
        xa = self._augmented(obs)
        eye = np.eye(self.n_actions)
        out = eye[:, :, None] * xa[..., None, None, :]      # (*B, A, A, m+1)
        return out.reshape(B + (self.n_actions, self.n_params))

    # --- SoftmaxPolicy kernels ----------------------------------------------------------
    def _augmented(self, x):
        if not self.bias:
            return x
        return np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1)

    def _check_obs(self, obs):
        return _check_obs_or_indices(obs, self.features, self.n_states, self.obs_dim)

    def _matrix(self, theta):
        return theta.reshape(self.n_actions, self.obs_dim + int(self.bias))

    def _logits(self, theta, obs):
        if self.features is not None:
            return self.features[obs] @ theta
        return self._augmented(obs) @ self._matrix(theta).T

    def _logits_jvp(self, theta, obs, v):
        return self._logits(v, obs)  # linear in theta: J v = z(v)

    def _logits_vjp(self, theta, obs, cot):
        cot = np.asarray(cot)
        if self.features is not None:
            return np.einsum("...ak,...a->...k", self.features[obs], cot)
        xa = self._augmented(obs)
        out = cot[..., :, None] * xa[..., None, :]
        return out.reshape(cot.shape[:-1] + (self.n_params,))

    def _logits_vjp_sum(self, theta, obs, cot):
        cot = np.asarray(cot)
        A = self.n_actions
        if self.features is not None:
            phi = self.features[obs].reshape(-1, A, self.n_params)
            return np.einsum("nak,na->k", phi, cot.reshape(-1, A))
        xa = self._augmented(obs)
        return np.einsum("na,ni->ai", cot.reshape(-1, A),
                         xa.reshape(-1, xa.shape[-1])).ravel()
