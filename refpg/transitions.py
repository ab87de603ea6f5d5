"""``Transitions``: sampled episodes packed back to back, without padding (issue 3).

All ``M`` transitions of ``N`` episodes are stored flat, episode-major:
episode ``i`` is rows ``offsets[i]:offsets[i+1]`` in time order (its step
``t`` is row ``offsets[i] + t``). Same time alignment as ``Batch`` (rlax style):

    states[j]       s_t                          (M,) int64  or (M, k) float64
    actions[j]      a_t ~ pi(. | s_t)            (M,) int64  or (M, m) float64
    rewards[j]      r_t = r(s_t, a_t)            (M,) float64
    log_probs[j]    log pi_b(a_t | s_t)          (M,) float64 (behaviour policy), finite
    next_states[j]  s_{t+1}, the state reached   like states
    terminated[j]   s_{t+1} is terminal: no bootstrap                 (M,) bool
    truncated[j]    a time limit cut the episode after this step       (M,) bool
    offsets[i]      first row of episode i                            (N + 1,) int64

The last row of every non-empty episode is terminated or truncated (exactly
one), no other row is. Empty episodes (``offsets[i] = offsets[i+1]``, an
episode that starts in a terminal state) are allowed. Why a packed layout:
derivations/sampling.md#packed-transitions
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .batch import Batch
from .validation import as_bool_array, as_float_array, as_index_or_vector

__all__ = ["Transitions"]


@dataclass(frozen=True, eq=False)
class Transitions:
    """``N`` episodes of ``M`` transitions in all, packed episode-major (module docstring).

    Fields: ``states, actions, next_states: (M,)`` int64 indices or ``(M, k)``
    float64 vectors; ``rewards, log_probs: (M,)`` float64; ``terminated,
    truncated: (M,)`` bool; ``offsets: (N + 1,)`` int64 with ``offsets[0] = 0``,
    non-decreasing, ``offsets[N] = M``; ``n_states``, ``n_actions`` (optional
    bounds of the indices). Episode ``i`` is rows ``offsets[i]:offsets[i+1]``
    (P1). Construction validates every field and raises ``ValueError`` naming
    it: shapes, NaN or infinite rewards / log-probabilities, offsets, indices
    out of range, exactly one of terminated / truncated on the last row of
    each non-empty episode and on no other row. Arrays are copied and made
    read-only. derivations/sampling.md#packed-transitions
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    log_probs: np.ndarray
    next_states: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    offsets: np.ndarray
    n_states: int | None = None
    n_actions: int | None = None

    def __post_init__(self):
        rewards = as_float_array("rewards", self.rewards, ndim=1)
        M = rewards.shape[0]
        log_probs = as_float_array("log_probs", self.log_probs, shape=(M,), finite=False)
        if not np.all(np.isfinite(log_probs)):
            raise ValueError("log_probs must be finite (no NaN or inf): every row is a real "
                             "step, so its action had positive probability")
        offsets = np.asarray(self.offsets)
        if offsets.dtype.kind not in "iu" or offsets.ndim != 1 or offsets.size < 1:
            raise ValueError(f"offsets must be a 1-d integer array (N + 1,); got "
                             f"dtype {offsets.dtype}, shape {offsets.shape}")
        offsets = offsets.astype(np.int64)
        if offsets[0] != 0 or offsets[-1] != M or np.any(np.diff(offsets) < 0):
            raise ValueError(f"offsets must start at 0, be non-decreasing and end at M = {M}; "
                             f"got {offsets[:3].tolist()}...{offsets[-1:].tolist()}")
        terminated = as_bool_array("terminated", self.terminated, (M,), "(M,)")
        truncated = as_bool_array("truncated", self.truncated, (M,), "(M,)")
        states = as_index_or_vector("states", self.states, (M,), self.n_states, "(M,)")
        next_states = as_index_or_vector("next_states", self.next_states, (M,), self.n_states,
                                         "(M,)")
        actions = as_index_or_vector("actions", self.actions, (M,), self.n_actions, "(M,)")
        if states.shape != next_states.shape:
            raise ValueError(f"states {states.shape} and next_states {next_states.shape} "
                             f"must have the same shape")
        both = terminated & truncated
        if both.any():
            raise ValueError(f"terminated and truncated are exclusive; both set at row "
                             f"{int(np.flatnonzero(both)[0])}")
        last = np.zeros(M, bool)
        last[offsets[1:][np.diff(offsets) > 0] - 1] = True
        ends = terminated | truncated
        if np.any(last & ~ends):
            row = int(np.flatnonzero(last & ~ends)[0])
            raise ValueError(f"terminated/truncated: the last row of each episode must be "
                             f"terminated or truncated; row {row} is neither")
        if np.any(ends & ~last):
            row = int(np.flatnonzero(ends & ~last)[0])
            raise ValueError(f"terminated/truncated may only be set on the last row of an "
                             f"episode; row {row} is not one")
        for f, arr in (("states", states), ("actions", actions), ("rewards", rewards),
                       ("log_probs", log_probs), ("next_states", next_states),
                       ("terminated", terminated), ("truncated", truncated),
                       ("offsets", offsets)):
            arr = np.array(arr, copy=True)
            arr.flags.writeable = False
            object.__setattr__(self, f, arr)

    @classmethod
    def _trusted(cls, **fields_):
        """``Transitions`` from arrays valid by construction (the sampler), unchecked.

        Skips the O(M) validation; the arrays are taken as they are (no copy)
        and made read-only. Tests re-validate sampler output through the public
        constructor.
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
        return self.offsets.size - 1

    @property
    def n_transitions(self) -> int:
        """``M``."""
        return self.rewards.shape[0]

    @property
    def lengths(self) -> np.ndarray:
        """Steps per episode: ``(N,)`` int64, ``offsets[i+1] - offsets[i]``."""
        return np.diff(self.offsets)

    @property
    def episode(self) -> np.ndarray:
        """Episode index of each row: ``(M,)`` int64."""
        return np.repeat(np.arange(self.n_episodes, dtype=np.int64), self.lengths)

    @property
    def step(self) -> np.ndarray:
        """Time step ``t`` of each row within its episode: ``(M,)`` int64."""
        return np.arange(self.n_transitions, dtype=np.int64) - np.repeat(self.offsets[:-1],
                                                                          self.lengths)

    def to_batch(self, max_steps=None) -> Batch:
        """The padded ``Batch`` ``(N, T)``: row ``i`` holds episode ``i``, zeros on padding (P2).

        ``batch.field[i, t] = field[offsets[i] + t]`` for ``t < lengths[i]``.
        ``max_steps`` is ``T`` (default: the longest episode, at least 1); it
        must be at least every episode's length.
        derivations/sampling.md#packed-transitions
        """
        lengths = self.lengths
        longest = int(lengths.max()) if lengths.size else 0
        if max_steps is None:
            T = max(longest, 1)
        else:
            if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)):
                raise TypeError(f"max_steps must be an integer; got {max_steps!r}")
            T = int(max_steps)
            if T < max(longest, 1):
                raise ValueError(f"max_steps must be >= the longest episode ({longest}) "
                                 f"and >= 1; got {T}")
        N, M = self.n_episodes, self.n_transitions
        pos = np.repeat(np.arange(N, dtype=np.int64) * T - self.offsets[:-1], lengths)
        pos += np.arange(M, dtype=np.int64)               # flat index i * T + t

        def pad(x):
            out = np.zeros((N * T,) + x.shape[1:], x.dtype)
            out[pos] = x
            return out.reshape((N, T) + x.shape[1:])

        mask = np.arange(T)[None, :] < lengths[:, None]
        return Batch._trusted(states=pad(self.states), actions=pad(self.actions),
                              rewards=pad(self.rewards), log_probs=pad(self.log_probs),
                              next_states=pad(self.next_states),
                              terminated=pad(self.terminated), truncated=pad(self.truncated),
                              mask=mask, n_states=self.n_states, n_actions=self.n_actions)

    @classmethod
    def from_batch(cls, batch) -> "Transitions":
        """Pack a ``Batch`` ``(N, T)``: the valid steps of row ``i`` become episode ``i`` (P2).

        The inverse of ``to_batch`` (up to the padding width).
        derivations/sampling.md#packed-transitions
        """
        if not isinstance(batch, Batch):
            raise TypeError(f"batch must be a refpg.batch.Batch; got {type(batch).__name__}")
        m = batch.mask
        offsets = np.zeros(batch.n_episodes + 1, np.int64)
        np.cumsum(m.sum(axis=1), out=offsets[1:])
        # boolean indexing is row-major, and each row's mask is a prefix: episode-major order
        return cls._trusted(states=batch.states[m], actions=batch.actions[m],
                            rewards=batch.rewards[m], log_probs=batch.log_probs[m],
                            next_states=batch.next_states[m], terminated=batch.terminated[m],
                            truncated=batch.truncated[m], offsets=offsets,
                            n_states=batch.n_states, n_actions=batch.n_actions)
