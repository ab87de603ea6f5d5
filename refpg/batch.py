"""The ``Batch`` of sampled trajectories, validated (SCOPE G, issue 3).

A batch holds ``N`` episodes padded to ``T`` steps, batch-major ``(N, T)``
(CONVENTIONS.md). Row ``i`` is one episode that starts at ``t = 0``; its valid
steps are a prefix marked by ``mask``. Time alignment (rlax style):

    states[i, t]       s_t                       (N, T) int  or (N, T, k) float
    actions[i, t]      a_t ~ pi(. | s_t)         (N, T) int  or (N, T, m) float
    rewards[i, t]      r_t = r(s_t, a_t)         (N, T) float64
    log_probs[i, t]    log pi_b(a_t | s_t)       (N, T) float64 (behaviour policy)
    next_states[i, t]  s_{t+1}, the state reached (N, T) or (N, T, k)
    terminated[i, t]   s_{t+1} is terminal: no bootstrap
    truncated[i, t]    a time limit cut the episode after step t: bootstrap from V(s_{t+1})
    mask[i, t]         step t is a real step (False on padding)

The last valid step of every row is terminated or truncated (exactly one);
padding carries zeros. derivations/sampling.md#the-batch
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .validation import as_bool_array, as_float_array, as_index_or_vector

__all__ = ["Batch"]


@dataclass(frozen=True, eq=False)
class Batch:
    """``N`` episodes of at most ``T`` steps; see the module docstring for fields.

    Construction validates every array and raises ``ValueError`` naming the
    field: mismatched shapes, NaN rewards or log-probabilities, non-prefix
    masks, episodes whose last step is neither terminated nor truncated,
    ``n_states`` / ``n_actions`` given and indices out of range.
    derivations/sampling.md#the-batch
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    log_probs: np.ndarray
    next_states: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    mask: np.ndarray
    n_states: int | None = None
    n_actions: int | None = None

    def __post_init__(self):
        rewards = as_float_array("rewards", self.rewards, ndim=2)
        shape = rewards.shape
        log_probs = as_float_array("log_probs", self.log_probs, shape=shape, finite=False)
        if np.any(np.isnan(log_probs)) or np.any(log_probs == np.inf):
            raise ValueError("log_probs must not contain NaN or +inf")
        mask = as_bool_array("mask", self.mask, shape, "(N, T)")
        terminated = as_bool_array("terminated", self.terminated, shape, "(N, T)")
        truncated = as_bool_array("truncated", self.truncated, shape, "(N, T)")
        states = as_index_or_vector("states", self.states, shape, self.n_states, "(N, T)")
        next_states = as_index_or_vector("next_states", self.next_states, shape, self.n_states,
                                         "(N, T)")
        actions = as_index_or_vector("actions", self.actions, shape, self.n_actions, "(N, T)")
        if states.shape != next_states.shape:
            raise ValueError(f"states {states.shape} and next_states {next_states.shape} "
                             f"must have the same shape")
        lengths = mask.sum(axis=1)
        prefix = np.arange(shape[1])[None, :] < lengths[:, None]
        if not np.array_equal(prefix, mask):
            row = int(np.flatnonzero((prefix != mask).any(axis=1))[0])
            raise ValueError(f"mask must be a prefix of each row (one episode per row); "
                             f"row {row} is not")
        if np.any(log_probs[mask] == -np.inf):
            raise ValueError("log_probs must be finite on valid steps (an action of "
                             "probability 0 was recorded)")
        both = terminated & truncated
        if both.any():
            raise ValueError(f"terminated and truncated are exclusive; both set at "
                             f"{tuple(int(i) for i in np.argwhere(both)[0])}")
        ends = terminated | truncated
        if np.any(ends & ~mask):
            raise ValueError("terminated/truncated must be False on padding (mask False)")
        rows = np.arange(shape[0])
        has = lengths > 0
        last = np.maximum(lengths - 1, 0)
        if shape[1] and np.any(has & ~ends[rows, last]):     # T = 0: no row has a step
            row = int(np.flatnonzero(has & ~ends[rows, last])[0])
            raise ValueError(f"the last valid step of each row must be terminated or "
                             f"truncated; row {row} is neither")
        if np.any(ends & mask & (np.arange(shape[1])[None, :] < last[:, None])):
            raise ValueError("terminated/truncated may only be set on the last valid step "
                             "of a row (one episode per row)")
        for name, arr in (("rewards", rewards), ("log_probs", log_probs)):
            if np.any(arr[~mask] != 0):
                raise ValueError(f"{name} must be 0 on padding (mask False)")
        for f, arr in (("states", states), ("actions", actions), ("rewards", rewards),
                       ("log_probs", log_probs), ("next_states", next_states),
                       ("terminated", terminated), ("truncated", truncated), ("mask", mask)):
            arr = np.array(arr, copy=True)
            arr.flags.writeable = False
            object.__setattr__(self, f, arr)

    @classmethod
    def _trusted(cls, **fields_):
        """A ``Batch`` from arrays that are valid by construction (the samplers), unchecked.

        Skips the O(N T) validation of ``__post_init__``; the arrays are taken
        as they are (no copy) and made read-only. Tests re-validate sampler
        output through the public constructor.
        """
        self = object.__new__(cls)
        for f in fields(cls):
            value = fields_.get(f.name, f.default)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
            object.__setattr__(self, f.name, value)
        return self

    @property
    def n_episodes(self) -> int:
        """``N``."""
        return self.rewards.shape[0]

    @property
    def max_steps(self) -> int:
        """``T``."""
        return self.rewards.shape[1]

    @property
    def lengths(self) -> np.ndarray:
        """Valid steps per episode: ``(N,)``."""
        return self.mask.sum(axis=1)

    def replace(self, **changes) -> "Batch":
        """A copy with some fields changed (validated again)."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        kw.update(changes)
        return Batch(**kw)
