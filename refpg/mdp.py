"""Finite Markov decision processes (SCOPE M1).

``FiniteMDP`` holds ``P: (S, A, S)``, ``r: (S, A)``, ``rho0: (S,)``, ``gamma``,
``terminal: (S,)`` and an optional ``horizon``; all arrays are validated once
and stored read-only. ``random_mdp`` makes seeded random instances.

Conventions (../shared/CONVENTIONS.md, derivations/mdp.md):

* ``P[s, a, s']`` is the probability of ``s'`` after ``a`` in ``s``; kernels
  laid out ``(A, S, S)`` (pymdptoolbox, mushroom-rl) are rejected unless S == A,
  which no check can tell apart, so pass ``(S, A, S)``.
* ``r[s, a]`` is the expected reward; an ``(S, A, S)`` reward is reduced to
  ``r[s, a] = sum_s' P[s, a, s'] r[s, a, s']``.
* terminal states are absorbing with zero reward; a sampled step that enters
  one is *terminated*.
* ``gamma = 1`` needs a finite ``horizon`` or at least one terminal state
  (episodic tasks); evaluation then refuses improper policies.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from .validation import (as_float_array, check_gamma, check_positive_int,
                         check_probabilities, check_rng)

__all__ = ["FiniteMDP", "random_mdp"]


@dataclass(frozen=True, eq=False)
class FiniteMDP:
    """A validated finite MDP. See derivations/mdp.md#the-finite-mdp.

    Parameters
    ----------
    P : (S, A, S) array
        Transition probabilities, each ``P[s, a, :]`` sums to 1.
    r : (S, A) or (S, A, S) array
        Expected reward ``r(s, a)`` (or ``r(s, a, s')``, reduced on input).
    rho0 : (S,) array
        Initial-state distribution.
    gamma : float
        Discount in ``[0, 1]``; ``1`` only with a horizon or terminal states.
    terminal : (S,) bool array, optional
        Absorbing zero-reward states where episodes end (default: none).
    horizon : int, optional
        Time limit used by finite-horizon evaluation and samplers by default.
    name : str
        Free text shown in reports.
    """

    P: np.ndarray
    r: np.ndarray
    rho0: np.ndarray
    gamma: float
    terminal: np.ndarray | None = None
    horizon: int | None = None
    name: str = ""
    info: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        P = as_float_array("P", self.P, ndim=3)
        S, A, S2 = P.shape
        if S != S2 or S == 0 or A == 0:
            raise ValueError(f"P must have shape (S, A, S) with S, A >= 1; got {P.shape}")
        check_probabilities("P[s, a, :]", P, axis=2)
        r = as_float_array("r", self.r)
        if r.shape == (S, A, S):
            r = np.einsum("ijk,ijk->ij", P, r)
        elif r.shape != (S, A):
            raise ValueError(f"r must have shape (S, A) = {(S, A)} or (S, A, S); got {r.shape}")
        rho0 = as_float_array("rho0", self.rho0, shape=(S,))
        check_probabilities("rho0", rho0)
        if isinstance(self.gamma, (str, bytes)):  # check_gamma would parse "0.9" silently
            raise TypeError(f"gamma must be a real number; got {self.gamma!r}")
        gamma = check_gamma(self.gamma)
        if self.terminal is None:
            terminal = np.zeros(S, dtype=bool)
        else:
            terminal = np.asarray(self.terminal)
            if terminal.shape != (S,) or terminal.dtype != bool:
                raise ValueError(f"terminal must be a bool array of shape ({S},); "
                                 f"got dtype {terminal.dtype}, shape {terminal.shape}")
            terminal = terminal.copy()
        for s in np.flatnonzero(terminal):
            if not np.allclose(P[s, :, s], 1.0, rtol=0, atol=1e-12):
                raise ValueError(f"terminal state {s} must be absorbing: P[{s}, a, {s}] = 1 "
                                 f"for every a; got {P[s, :, s]}")
            if np.any(r[s] != 0):
                raise ValueError(f"terminal state {s} must have zero reward; got r[{s}] = {r[s]}")
        horizon = self.horizon
        if horizon is not None:
            horizon = check_positive_int("horizon", horizon)
        if gamma == 1.0 and horizon is None and not terminal.any():
            raise ValueError("gamma = 1 needs a finite horizon or at least one terminal state; "
                             "got neither")
        for name_, arr in (("P", P), ("r", r), ("rho0", rho0), ("terminal", terminal)):
            arr = np.array(arr, copy=True)
            arr.flags.writeable = False
            object.__setattr__(self, name_, arr)
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "horizon", horizon)

    @property
    def n_states(self) -> int:
        """``S``."""
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        """``A``."""
        return self.P.shape[1]

    def replace(self, **changes) -> "FiniteMDP":
        """A copy with some fields changed (validated again)."""
        fields = dict(P=self.P, r=self.r, rho0=self.rho0, gamma=self.gamma,
                      terminal=self.terminal, horizon=self.horizon, name=self.name,
                      info=dict(self.info))
        fields.update(changes)
        return FiniteMDP(**fields)

    def __repr__(self):
        extra = f", horizon={self.horizon}" if self.horizon is not None else ""
        return (f"FiniteMDP({self.name!r}, S={self.n_states}, A={self.n_actions}, "
                f"gamma={self.gamma}{extra}, terminal={int(self.terminal.sum())})")


def random_mdp(rng, n_states, n_actions, *, gamma=0.9, sparsity=0.0, reward_scale=1.0,
               n_terminal=0, horizon=None, name=None):
    """Seeded random MDP. See derivations/mdp.md#random-mdps.

    Each row ``P[s, a, :]`` is Dirichlet(1) over a random support of
    ``max(1, round((1 - sparsity) S))`` next states (``sparsity = 0``: dense;
    close to 1: nearly deterministic). Rewards are ``reward_scale * N(0, 1)``.
    ``rho0`` is Dirichlet(1) over the non-terminal states. The last
    ``n_terminal`` states are terminal (absorbing, zero reward).

    The same ``rng`` state gives bit-identical MDPs.
    """
    check_rng(rng)
    S = check_positive_int("n_states", n_states)
    A = check_positive_int("n_actions", n_actions)
    if not (0.0 <= float(sparsity) < 1.0):
        raise ValueError(f"sparsity must lie in [0, 1); got {sparsity!r}")
    if not (np.isfinite(reward_scale) and reward_scale >= 0):
        raise ValueError(f"reward_scale must be finite and >= 0; got {reward_scale!r}")
    if isinstance(n_terminal, bool) or not isinstance(n_terminal, numbers.Integral):
        raise TypeError(f"n_terminal must be an integer; got {n_terminal!r}")
    if not (0 <= int(n_terminal) < S):
        raise ValueError(f"n_terminal must lie in [0, n_states); got {n_terminal!r}")
    k = max(1, int(round((1.0 - float(sparsity)) * S)))
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            support = rng.choice(S, size=k, replace=False)
            P[s, a, support] = rng.dirichlet(np.ones(k))
    r = reward_scale * rng.standard_normal((S, A))
    terminal = np.zeros(S, dtype=bool)
    if n_terminal:
        terminal[S - n_terminal:] = True
        P[terminal] = 0.0
        for s in np.flatnonzero(terminal):
            P[s, :, s] = 1.0
        r[terminal] = 0.0
    rho0 = np.zeros(S)
    rho0[~terminal] = rng.dirichlet(np.ones(int((~terminal).sum())))
    if name is None:
        name = f"random(S={S}, A={A}, sparsity={sparsity:g})"
    return FiniteMDP(P=P, r=r, rho0=rho0, gamma=gamma, terminal=terminal,
                     horizon=horizon, name=name)
