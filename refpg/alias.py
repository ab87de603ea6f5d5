"""Walker/Vose alias tables: one uniform per draw from a discrete law (issue 3).

``alias_table(probs)`` turns each row of ``probs: (R, M)`` into ``K``
equiprobable columns, each holding a threshold and an alias (S3), so that a
draw is one uniform, one floor and one comparison (S4). The sampler builds
its per-state joint tables (S2) straight from the nonzeros of ``P`` with the
two internal steps ``_packed_rows`` (rows of positive entries, padded) and
``_sweep`` (the table of such rows).
derivations/sampling.md#walker-alias-tables
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import as_float_array, as_index_array, check_probabilities, check_rng

__all__ = ["AliasTable", "alias_table"]


@dataclass(frozen=True, eq=False)
class AliasTable:
    """Walker/Vose alias tables for ``R`` discrete distributions over ``M`` outcomes.

    Row ``i`` has ``K`` equiprobable columns; column ``k`` returns outcome
    ``support[i, k]`` with probability ``threshold[i, k]`` and outcome
    ``support[i, alias[i, k]]`` otherwise, so that (S3)

        p_i(x) = (1/K) sum_k [ threshold[i,k] 1{support[i,k] = x}
                              + (1 - threshold[i,k]) 1{support[i,alias[i,k]] = x} ].

    Fields: ``support: (R, K)`` int64 outcome indices in ``range(M)`` (the
    outcomes of positive probability first, padded with zero-probability
    columns), ``threshold: (R, K)`` float64 in ``[0, 1]``, ``alias: (R, K)``
    int64 column indices in ``range(K)``, ``n_outcomes = M``.
    derivations/sampling.md#walker-alias-tables
    """

    support: np.ndarray
    threshold: np.ndarray
    alias: np.ndarray
    n_outcomes: int

    @property
    def n_columns(self) -> int:
        """``K``, the columns per row (the largest support size)."""
        return self.support.shape[1]

    def distribution(self):
        """The law (S3) the table samples from, by enumerating its columns: ``(R, M)``.

        derivations/sampling.md#walker-alias-tables
        """
        R, K = self.support.shape
        out = np.zeros((R, self.n_outcomes))
        rows = np.broadcast_to(np.arange(R)[:, None], (R, K))
        np.add.at(out, (rows, self.support), self.threshold / K)
        np.add.at(out, (rows, np.take_along_axis(self.support, self.alias, axis=1)),
                  (1.0 - self.threshold) / K)
        return out

    def sample(self, rows, rng):
        """One outcome per entry of ``rows: (n,)`` (row indices), one uniform each: ``(n,)``.

        (S4): ``x = K u``, ``k = floor(x)``, outcome ``support[k]`` if
        ``x - k < threshold[k]`` else ``support[alias[k]]``.
        derivations/sampling.md#one-uniform-per-transition
        """
        check_rng(rng)
        rows = as_index_array("rows", rows, upper=self.support.shape[0])
        K = self.n_columns
        x = rng.random(rows.shape) * K
        k = x.astype(np.int64)
        keep = (x - k) < self.threshold[rows, k]
        col = np.where(keep, k, self.alias[rows, k])
        return self.support[rows, col]


def alias_table(probs):
    """Alias tables (S3) of the rows of ``probs: (R, M)`` by Vose's sweep, vectorised over rows.

    Each row is normalised to weights ``w = K p / sum(p)`` over its ``K``
    columns (``K`` = the largest number of positive entries in a row). Columns
    with ``w < 1`` ("light") take their own weight as threshold and a "heavy"
    column (``w >= 1``) as alias; the heavy donates ``1 - w`` and, once its
    remaining weight drops below 1, is itself completed by the next heavy.
    The sweep is computed in closed form from cumulative sums (no loop over
    columns). Reconstruction error (checked in tests by enumeration): ``<= K * 2^-52``.
    Returns an ``AliasTable``. derivations/sampling.md#walker-alias-tables
    """
    p = as_float_array("probs", probs, ndim=2)
    if p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"probs must have at least one row and one column; got {p.shape}")
    check_probabilities("probs rows", p, axis=1)
    R, M = p.shape
    positive = p > 0
    r_pos, c_pos = np.divmod(np.flatnonzero(positive), M)   # sorted by row, then column
    support, w = _packed_rows(r_pos, c_pos, p[r_pos, c_pos], R)
    counts = positive.sum(axis=1)
    K = support.shape[1]
    short = np.flatnonzero(counts < K)
    if short.size:                               # pad with the first zero-probability outcomes
        pad = np.arange(K)[None, :] >= counts[:, None]
        zero_cols = np.argsort(positive[short], axis=1, kind="stable")[:, :K]
        support[pad] = zero_cols[np.arange(K)[None, :] < (K - counts[short])[:, None]]
    return _sweep(support, w, M)


def _packed_rows(rows, cols, values, n_rows):
    """``(support, w)``, both ``(n_rows, K)``: row ``i`` holds the ``cols`` and ``values`` of the
    entries with ``rows == i`` in their given order, then zeros (``rows`` sorted, every row
    present at least once; ``K`` = the largest count)."""
    counts = np.bincount(rows, minlength=n_rows)
    K = int(counts.max())
    rank = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    support = np.zeros((n_rows, K), np.int64)
    support[rows, rank] = cols
    w = np.zeros((n_rows, K))
    w[rows, rank] = values
    return support, w


def _sweep(support, w, n_outcomes):
    """The alias table of the rows of ``w: (R, K)`` (non-negative, no row all zero) over the
    outcomes ``support: (R, K)``, by Vose's sweep in closed form (``alias_table``)."""
    R, K = w.shape
    w = w * (K / w.sum(axis=1, keepdims=True))
    light = w < 1.0
    light[np.arange(R), np.argmax(w, axis=1)] = False  # at least one heavy per row
    order = np.argsort(~light, axis=1, kind="stable")  # lights first, then heavies
    n_light = light.sum(axis=1)
    # Vose's sweep in closed form (derivations/sampling.md#walker-alias-tables): in sweep
    # order, light i is completed by the first heavy j whose cumulative excess E_j reaches
    # the deficit D_i of the lights before it; heavy j, once the lights it serves have
    # taken it below 1, keeps threshold 1 + E_j - D(served) and the next heavy as alias.
    ws = np.take_along_axis(w, order, axis=1)
    pos = np.arange(K)
    is_light = pos < n_light[:, None]
    deficit = np.cumsum(np.where(is_light, 1.0 - ws, 0.0), axis=1)   # D after each light
    d_before = np.zeros((R, K))
    d_before[:, 1:] = deficit[:, :-1]
    excess = np.cumsum(np.where(is_light, 0.0, ws - 1.0), axis=1)    # E up to each heavy
    # merge the two non-decreasing sequences (a light's D before a heavy's equal E)
    key = np.where(is_light, d_before, excess)
    rank = np.empty((R, K), np.int64)
    np.put_along_axis(rank, np.argsort(key, axis=1, kind="stable"), pos[None, :], axis=1)
    n_heavy = K - n_light[:, None]
    # light at position i: the heavies ranked before it are those it does not take from
    donor = np.minimum(rank - pos, n_heavy - 1) + n_light[:, None]
    # heavy at position n_light + j: the lights ranked before it are those served up to it
    served = np.clip(rank - (pos - n_light[:, None]), 0, n_light[:, None])
    d_served = np.take_along_axis(np.concatenate([np.zeros((R, 1)), deficit], axis=1),
                                  served, axis=1)
    turns = ~is_light & (d_served > excess) & (pos + 1 < K)
    thr_sorted = np.where(is_light, ws, np.where(turns, 1.0 + excess - d_served, 1.0))
    alias_pos = np.where(is_light, donor, np.where(turns, pos + 1, pos))
    threshold = np.empty((R, K))
    alias = np.empty((R, K), np.int64)
    np.put_along_axis(threshold, order, thr_sorted, axis=1)
    np.put_along_axis(alias, order, np.take_along_axis(order, np.minimum(alias_pos, K - 1),
                                                       axis=1), axis=1)
    np.clip(threshold, 0.0, 1.0, out=threshold)
    for arr in (support, threshold, alias):
        arr.flags.writeable = False
    return AliasTable(support=support, threshold=threshold, alias=alias, n_outcomes=n_outcomes)
