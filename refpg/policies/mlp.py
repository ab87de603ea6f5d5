"""A small tanh MLP softmax policy with hand-written derivatives (SCOPE P4).

Layer sizes ``n_0 = obs_dim, n_1..n_L = hidden, n_{L+1} = A``; for an input
``x = h_0: (n_0,)`` (derivations/policies.md#mlp-softmax):

    u_l     = W_l h_l + b_l,   h_{l+1} = tanh(u_l)      l = 0..L-1      (M1)
    z       = W_L h_L + b_L                        (logits, no tanh)    (M2)

Reverse mode (backprop), for a cotangent ``c`` on the logits:

    delta_L = c;   dW_l = delta_l h_l^T,   db_l = delta_l                 (M3)
    delta_{l-1} = (W_l^T delta_l) * (1 - h_l^2)                           (M4)

Forward mode, for a tangent ``v = (dW_l, db_l)_l``:

    hdot_0 = 0;  udot_l = W_l hdot_l + dW_l h_l + db_l;
    hdot_{l+1} = (1 - h_{l+1}^2) * udot_l;  zdot = udot_L                 (M5)

Flat parameter layout: for ``l = 0..L`` in order, ``W_l: (n_{l+1}, n_l)``
flattened in C order, then ``b_l: (n_{l+1},)``. ``unflatten`` / ``flatten``
convert. Everything is analytic in ``theta`` (``tanh``, products, sums;
``tanh' = 1 - tanh^2`` is written in terms of the complex activation), so
complex-step derivatives pass through.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..validation import as_float_array, check_positive_float, check_positive_int, check_rng
from .base import SoftmaxPolicy, _check_obs_or_indices

__all__ = ["MLPSoftmaxPolicy"]


class MLPSoftmaxPolicy(SoftmaxPolicy):
    """``pi_theta(a | x) = softmax(z(theta, x))_a`` with ``z`` a tanh MLP (M1)-(M2).

    ``MLPSoftmaxPolicy(obs_dim, n_actions, hidden=(16,), features=None)``.
    Without ``features`` the observations are vectors ``obs: (*B, obs_dim)``
    (e.g. CartPole: ``obs_dim = 4``, ``n_actions = 2``); with
    ``features: (S, obs_dim)`` they are state indices ``obs: (*B,)`` and
    ``x = features[obs]``, so the policy is tabular-capable (``n_states = S``).
    ``hidden = ()`` gives a linear policy ``z = W x + b``.
    derivations/policies.md#mlp-softmax
    """

    def __init__(self, obs_dim, n_actions, hidden=(16,), features=None):
        self.obs_dim = check_positive_int("obs_dim", obs_dim)
        self.n_actions = check_positive_int("n_actions", n_actions)
        if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
            hidden = (hidden,)
        try:
            hidden = tuple(hidden)
        except TypeError as exc:
            raise TypeError(f"hidden must be a tuple of layer widths; got {hidden!r}") from exc
        self.hidden = tuple(check_positive_int("hidden[{}]".format(i), h)
                            for i, h in enumerate(hidden))
        self.sizes = (self.obs_dim,) + self.hidden + (self.n_actions,)
        self._shapes = []
        offset = 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            self._shapes.append((offset, n_out, n_in))
            offset += n_out * n_in + n_out
        self.n_params = offset
        if features is None:
            self.features = None
            self.n_states = None
        else:
            phi = as_float_array("features", features, ndim=2)
            if phi.shape[1] != self.obs_dim or phi.shape[0] < 1:
                raise ValueError(f"features must have shape (S, obs_dim) = (S, {self.obs_dim}) "
                                 f"with S >= 1; got {phi.shape}")
            phi = phi.copy()
            phi.flags.writeable = False
            self.features = phi
            self.n_states = phi.shape[0]

    def __repr__(self):
        feat = "" if self.features is None else f", features: (S={self.n_states}, {self.obs_dim})"
        return (f"MLPSoftmaxPolicy(obs_dim={self.obs_dim}, n_actions={self.n_actions}, "
                f"hidden={self.hidden}{feat})")

    # --- parameter layout ---------------------------------------------------------------
    def unflatten(self, theta):
        """``[(W_0, b_0), ..., (W_L, b_L)]`` views of the flat ``theta: (d,)``.

        ``W_l: (n_{l+1}, n_l)``, ``b_l: (n_{l+1},)``. derivations/policies.md#mlp-softmax
        """
        theta = self.check_theta(theta)
        return self._unflatten(theta)

    def flatten(self, layers):
        """Inverse of ``unflatten``: ``theta: (d,)`` from ``[(W_l, b_l)]``.

        derivations/policies.md#mlp-softmax
        """
        layers = list(layers)
        if len(layers) != len(self._shapes):
            raise ValueError(f"layers must hold {len(self._shapes)} (W, b) pairs; "
                             f"got {len(layers)}")
        parts = []
        for l, ((W, b), (_, n_out, n_in)) in enumerate(zip(layers, self._shapes)):
            W = as_float_array(f"layers[{l}][0]", W, shape=(n_out, n_in), allow_complex=True)
            b = as_float_array(f"layers[{l}][1]", b, shape=(n_out,), allow_complex=True)
            parts += [W.ravel(), b]
        return np.concatenate(parts)

    def _unflatten(self, theta):
        out = []
        for off, n_out, n_in in self._shapes:
            W = theta[off:off + n_out * n_in].reshape(n_out, n_in)
            b = theta[off + n_out * n_in:off + n_out * n_in + n_out]
            out.append((W, b))
        return out

    def init_params(self, rng, scale=1.0):
        """Glorot-normal weights ``W_l ~ scale * N(0, 2 / (n_l + n_{l+1}))``, biases 0.

        Keeps the variance of activations and back-propagated signals of order
        one through the tanh layers (Glorot & Bengio 2010, eq. 12).
        derivations/policies.md#mlp-softmax
        """
        check_rng(rng)
        scale = check_positive_float("scale", scale, strict=False)
        layers = []
        for _, n_out, n_in in self._shapes:
            W = scale * np.sqrt(2.0 / (n_in + n_out)) * rng.standard_normal((n_out, n_in))
            layers.append((W, np.zeros(n_out)))
        return self.flatten(layers)

    # --- SoftmaxPolicy kernels ----------------------------------------------------------
    def _check_obs(self, obs):
        return _check_obs_or_indices(obs, self.features, self.n_states, self.obs_dim)

    def _inputs(self, obs):
        return self.features[obs] if self.features is not None else obs

    def _forward(self, theta, obs):
        """(M1)-(M2): logits and the activations ``[h_0, ..., h_L]``."""
        layers = self._unflatten(theta)
        h = self._inputs(obs)
        acts = [h]
        for W, b in layers[:-1]:
            h = np.tanh(h @ W.T + b)
            acts.append(h)
        W, b = layers[-1]
        return h @ W.T + b, acts, layers

    def _logits(self, theta, obs):
        return self._forward(theta, obs)[0]

    def _logits_jvp(self, theta, obs, v):
        """(M5) forward mode."""
        layers = self._unflatten(theta)
        tangents = self._unflatten(v)
        h = self._inputs(obs)
        hdot = None
        for (W, b), (dW, db) in zip(layers[:-1], tangents[:-1]):
            udot = h @ dW.T + db
            if hdot is not None:
                udot = udot + hdot @ W.T
            h = np.tanh(h @ W.T + b)
            hdot = (1.0 - h * h) * udot
        (W, b), (dW, db) = layers[-1], tangents[-1]
        zdot = h @ dW.T + db
        if hdot is not None:
            zdot = zdot + hdot @ W.T
        return zdot

    def _backprop(self, theta, obs, cot, per_sample):
        """(M3)-(M4) reverse mode; per sample ``(*B, d)`` or summed ``(d,)``."""
        _, acts, layers = self._forward(theta, obs)
        delta = np.asarray(cot)
        B = delta.shape[:-1]
        grads = [None] * len(layers)
        for l in range(len(layers) - 1, -1, -1):
            h = acts[l]
            W = layers[l][0]
            if per_sample:
                gW = (delta[..., :, None] * h[..., None, :]).reshape(B + (-1,))
                gb = delta
            else:
                d2 = delta.reshape(-1, delta.shape[-1])
                gW = (d2.T @ h.reshape(-1, h.shape[-1])).ravel()
                gb = d2.sum(axis=0)
            grads[l] = (gW, gb)
            if l > 0:
                delta = (delta @ W) * (1.0 - h * h)
        return np.concatenate([g for pair in grads for g in pair], axis=-1)

    def _logits_vjp(self, theta, obs, cot):
        return self._backprop(theta, obs, cot, per_sample=True)

    def _logits_vjp_sum(self, theta, obs, cot):
        return self._backprop(theta, obs, cot, per_sample=False)
