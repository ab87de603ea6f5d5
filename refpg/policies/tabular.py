"""Tabular softmax policy (SCOPE P1): ``pi(a | s) = softmax(theta[s, :])_a``.

``theta: (S*A,)`` is the ``(S, A)`` logit table flattened in C order
(``theta[s*A + a] = z(s, a)``). ``J_s = dz(s)/dtheta`` selects row ``s``, so

    J_s v   = v.reshape(S, A)[s]
    J_s^T c = c placed in row s (zeros elsewhere)

derivations/policies.md#tabular-softmax. Adding a constant to one row of the
table leaves the policy unchanged: ``F`` is singular along those ``S``
directions (derivations/natural.md explains the pseudo-inverse).
"""
from __future__ import annotations

import numpy as np

from ..validation import as_float_array, check_positive_int, check_probabilities
from .base import SoftmaxPolicy, _check_state_indices

__all__ = ["TabularSoftmaxPolicy"]


class TabularSoftmaxPolicy(SoftmaxPolicy):
    """``pi_theta(a | s) = exp(theta[s, a]) / sum_b exp(theta[s, b])``.

    Observations are state indices ``obs: (*B,)`` in ``range(S)``;
    ``d = S * A``. derivations/policies.md#tabular-softmax
    """

    def __init__(self, n_states, n_actions):
        self.n_states = check_positive_int("n_states", n_states)
        self.n_actions = check_positive_int("n_actions", n_actions)
        self.n_params = self.n_states * self.n_actions

    @classmethod
    def for_mdp(cls, mdp):
        """The tabular softmax policy over ``mdp``'s states and actions.

        derivations/policies.md#tabular-softmax
        """
        return cls(mdp.n_states, mdp.n_actions)

    def __repr__(self):
        return f"TabularSoftmaxPolicy(n_states={self.n_states}, n_actions={self.n_actions})"

    def table(self, theta):
        """``theta`` viewed as the ``(S, A)`` logit table.

        derivations/policies.md#tabular-softmax
        """
        return self.check_theta(theta).reshape(self.n_states, self.n_actions)

    def theta_from_probs(self, pi):
        """Logits ``theta = log pi`` (flattened) whose softmax is the table ``pi: (S, A)``.

        Rows must be probability vectors with every entry > 0 (``log 0`` is
        not a logit). derivations/policies.md#tabular-softmax
        """
        pi = as_float_array("pi", pi, shape=(self.n_states, self.n_actions))
        check_probabilities("pi rows", pi, axis=1)
        if np.any(pi <= 0):
            idx = tuple(int(i) for i in np.argwhere(pi <= 0)[0])
            raise ValueError(f"pi must be > 0 everywhere (log 0 is not a logit); "
                             f"found {pi[idx]!r} at index {idx}")
        return np.log(pi).ravel()

    def _check_obs(self, obs):
        return _check_state_indices(obs, self.n_states)

    def _logits(self, theta, obs):
        return theta.reshape(self.n_states, self.n_actions)[obs]

    def _logits_jvp(self, theta, obs, v):
        return v.reshape(self.n_states, self.n_actions)[obs]

    def _logits_vjp(self, theta, obs, cot):
        S, A = self.n_states, self.n_actions
        cot = np.asarray(cot)
        dtype = np.result_type(theta.dtype, cot.dtype)
        out = np.zeros(obs.shape + (S, A), dtype=dtype)
        idx = np.indices(obs.shape)
        out[tuple(idx) + (obs,)] = cot
        return out.reshape(obs.shape + (S * A,))

    def _logits_vjp_sum(self, theta, obs, cot):
        S, A = self.n_states, self.n_actions
        cot = np.asarray(cot)
        out = np.zeros((S, A), dtype=np.result_type(theta.dtype, cot.dtype))
        np.add.at(out, obs.ravel(), cot.reshape(-1, A))
        return out.ravel()
