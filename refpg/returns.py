"""Returns, reward-to-go, TD residuals, lambda-returns and GAE (SCOPE G8).

All functions take batch-major ``(N, T)`` arrays in which a row may hold
several episodes back to back (a rollout buffer) or one episode followed by
padding (a ``Batch``). Time alignment, rlax style (derivations/returns.md#time-alignment-and-flags):

    rewards[:, t]      r_t, received after a_t in s_t
    values[:, t]       V(s_t)
    next_values[:, t]  V(s_{t+1}), the value of the state actually reached after
                       step t (the observation returned by ``step``, before any reset)
    terminated[:, t]   s_{t+1} is terminal: nothing follows, no bootstrap
    truncated[:, t]    a time limit cut the episode after step t: bootstrap from V(s_{t+1})
    mask[:, t]         step t is real (False on padding; default all True)

A valid step that is neither terminated nor truncated and is followed by
padding or by the end of the row was *cut by the end of the data*: it is
bootstrapped from ``next_values`` exactly like a truncated step (and, where no
``next_values`` are given, its tail counts as 0). Nothing crosses a terminated
step, a truncated step, a padding cell or the end of a row. This is peer
convention C of PEER-CONVENTIONS.md (tianshou, TorchRL, pfrl, rlax); the
others and their cost are in derivations/returns.md#peer-conventions.

Every recursion here is the backward linear recurrence
``y_t = x_t + c_t y_{t+1}``, ``y_T = 0`` (R0), solved by ``linear_recurrence``
either by a plain loop over time or by a log-depth parallel scan
(derivations/returns.md#the-linear-recurrence-and-its-scan).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from .validation import as_bool_array, as_float_array, check_gamma

__all__ = ["episode_returns", "reward_to_go", "td_residuals", "lambda_returns", "gae",
           "GAE", "linear_recurrence"]

_METHODS = ("auto", "chunked", "scan", "loop")
#: ``method="auto"`` uses the chunked solver for at most this many rows and the
#: fused loop above, for batch-major and for time-major memory (measured crossovers
#: on 2 cores: the loop's steps are contiguous only in time-major memory).
_CHUNKED_MAX_ROWS = 256
_CHUNKED_MAX_ROWS_TIME_MAJOR = 32
#: time steps per block of the chunked solver and of the fused loop.
_BLOCK = 16
_LOOP_BLOCK = 32


# --------------------------------------------------------------------------- inputs
def _rewards(rewards, name="rewards", finite=True):
    return as_float_array(name, rewards, ndim=2, allow_complex=True, finite=finite)


def _like(name, x, shape, finite=True):
    if x is None:
        raise ValueError(f"{name} is required")
    arr = as_float_array(name, x, allow_complex=True, finite=finite)
    if arr.shape != shape:
        raise ValueError(f"{name} must have the shape of rewards (N, T) = {shape}; "
                         f"got {arr.shape}")
    return arr


def _bool(name, x, shape, default, like=None):
    if x is None:
        if like is not None:
            return np.full_like(like, default, dtype=bool)   # same memory layout
        return np.full(shape, default, dtype=bool)
    return as_bool_array(name, x, shape, "(N, T)")


def _flags(shape, terminated, truncated, mask, like=None):
    """Validated ``(terminated, truncated, mask, cont, cut)``.

    ``cont[t]``: step t is valid and its episode continues into column t+1
    (the recursion links t to t+1). ``cut[t]``: step t is valid, not done, and
    column t+1 is padding or beyond the row (end of data: bootstrap).
    """
    term = _bool("terminated", terminated, shape, False, like)
    trunc = _bool("truncated", truncated, shape, False, like)
    all_valid = mask is None
    mask = _bool("mask", mask, shape, True, like)
    done = term | trunc
    if np.count_nonzero(done) != np.count_nonzero(term) + np.count_nonzero(trunc):
        idx = tuple(int(i) for i in np.argwhere(term & trunc)[0])
        raise ValueError(f"terminated and truncated are exclusive; both are set at {idx}")
    if all_valid:
        # no padding: every step is valid and only the last column is followed by nothing
        live = ~done
        cont = live.copy(order="K")   # keep time-major memory time-major
        cont[:, -1] = False
        cut = np.zeros_like(live)
        cut[:, -1] = live[:, -1]
        return term, trunc, mask, cont, cut
    on_pad = done & ~mask
    if on_pad.any():
        idx = tuple(int(i) for i in np.argwhere(on_pad)[0])
        raise ValueError(f"terminated/truncated must be False on padding (mask False); "
                         f"set at {idx}")
    live = mask & ~done
    nxt = np.zeros_like(mask)
    nxt[:, :-1] = mask[:, 1:]
    cont = live & nxt
    cut = live & ~nxt
    return term, trunc, mask, cont, cut


def _check_finite(result, total=None, **inputs):
    """Raise ``ValueError`` naming the first non-finite input, looked for only when
    ``result`` is not finite (``total``: the sum of ``result`` if already computed).

    Every entry of every input reaches ``result`` through products and sums
    only (boolean weights multiply, padding is multiplied by 0, never
    selected away), and NaN or inf never turns finite that way (inf * 0 is
    NaN): a non-finite input always makes the result non-finite. So the inputs'
    own scans (a pass over each) run only on failure; a result that overflowed
    from finite inputs is returned as computed.
    derivations/returns.md#the-linear-recurrence-and-its-scan
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if total is None:
            total = np.add.reduce(result, axis=None)
        if np.isfinite(total):
            return
    for name, arr in inputs.items():
        if arr is not None:
            as_float_array(name, arr, allow_complex=True)
    if not np.all(np.isfinite(result)):
        warnings.warn("the result overflowed (finite inputs, non-finite result)",
                      RuntimeWarning, stacklevel=3)


def _delta(r, v, nv, gamma, term, mask):
    """(R3): ``delta = r - v + gamma (1 - term) nv``, 0 on padding (few passes, in place)."""
    delta = np.subtract(r, v, dtype=_dtype(r, v, nv))
    boot = np.multiply(~term, gamma, dtype=delta.dtype)
    boot *= nv
    delta += boot
    if not mask.all():
        delta[~mask] = 0.0
    return delta


def _batch_major(time_major, *arrays):
    """Views ``(N, T)`` of the inputs (transposes of ``(T, N)`` arrays when ``time_major``)."""
    if not time_major:
        return arrays
    return tuple(None if a is None else np.asarray(a).T for a in arrays)


def _method(method, n_rows, time_major_memory=False):
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    if method == "auto":
        limit = _CHUNKED_MAX_ROWS_TIME_MAJOR if time_major_memory else _CHUNKED_MAX_ROWS
        return "chunked" if n_rows <= limit else "loop"
    return method


# ----------------------------------------------------------------- the recurrence
def _loop(x, c, block=32):
    """(R0) by a plain backward loop over time, two ufunc calls per step.

    The columns are copied block by block (``block`` time steps) to time-major
    scratch buffers, so that each step works on a contiguous ``(N,)`` vector
    (transposing whole ``(N, T)`` arrays is slower on large ``N``).
    """
    N, T = x.shape
    dtype = np.result_type(x, c)
    if x.T.flags.c_contiguous and c.T.flags.c_contiguous:
        # time-major memory (a transposed (T, N) input): step along rows in place
        xt, ct = x.T, c.T
        yt = np.empty((T, N), dtype=dtype)
        tmp = np.empty(N, dtype=dtype)
        acc = np.zeros(N, dtype=dtype)
        for t in range(T - 1, -1, -1):
            np.multiply(ct[t], acc, out=tmp)
            np.add(xt[t], tmp, out=yt[t])
            acc = yt[t]
        return yt.T
    y = np.empty((N, T), dtype=dtype)
    xb = np.empty((block, N), dtype=dtype)
    cb = np.empty((block, N), dtype=dtype)
    yb = np.empty((block, N), dtype=dtype)
    tmp = np.empty(N, dtype=dtype)
    acc = np.zeros(N, dtype=dtype)
    for t1 in range(T, 0, -block):
        t0 = max(0, t1 - block)
        w = t1 - t0
        xb[:w] = x[:, t0:t1].T
        cb[:w] = c[:, t0:t1].T
        for k in range(w - 1, -1, -1):
            np.multiply(cb[k], acc, out=tmp)
            np.add(xb[k], tmp, out=yb[k])
            acc = yb[k]
        acc = acc.copy()
        y[:, t0:t1] = yb[:w].T
    return y


def _scan(x, c):
    """(R0) by a Hillis-Steele scan over affine maps, ``ceil(log2 T)`` levels.

    Position t holds the map ``z -> X_t + C_t z``; composing it with the map
    ``s`` steps later gives ``(X_t + C_t X_{t+s}, C_t C_{t+s})``. After the level
    with ``2 s >= T`` every ``X_t`` is ``y_t``; it stops early once every
    ``C_t`` is 0 (every window already reaches an episode boundary).
    derivations/returns.md#the-linear-recurrence-and-its-scan
    """
    # time-major memory (Fortran order): every slice X[:, s:] is one contiguous block,
    # which is about twice as fast as N row pieces (and avoids cache-set aliasing of
    # rows whose length is a power of two)
    X = np.array(x, dtype=np.result_type(x, c), order="F", copy=True)
    C = np.array(c, dtype=X.dtype, order="F", copy=True)
    C2 = np.empty_like(C)
    tmp = np.empty_like(X)
    T = X.shape[1]
    s = 1
    while s < T:
        np.multiply(C[:, :-s], X[:, s:], out=tmp[:, :-s])
        np.add(X[:, :-s], tmp[:, :-s], out=X[:, :-s])
        if 2 * s >= T:
            break
        np.multiply(C[:, :-s], C[:, s:], out=C2[:, :-s])
        C2[:, -s:] = C[:, -s:]
        C, C2 = C2, C
        s *= 2
        if not C[:, :-s].any():
            break
    return X if x.T.flags.c_contiguous else np.ascontiguousarray(X)

def _chunked(x, c, block=_BLOCK):
    """(R0) by a two-level blocked solve (derivations/returns.md#the-linear-recurrence-and-its-scan).

    The time axis is cut into blocks of ``B`` steps. (i) Within every block of
    every row at once, a backward pass of ``B`` vectorised steps (on strided
    views, no transposed copies) gives the local solution ``u_t`` (with ``y``
    = 0 after the block) and the products ``p_t = c_t c_{t+1} ... c_{end of
    block}``; (ii) the values at block starts obey the same recurrence one
    level up, ``z_b = u_{start b} + p_{start b} z_{b+1}``, solved by the scan;
    (iii) ``y_t = u_t + p_t z_{b(t)+1}``. Each ``y_t`` is a sum of at most
    ``B + log2(T/B)`` rounded terms.
    """
    N, T = x.shape
    dtype = np.result_type(x, c)
    nb = -(-T // block)
    Tp = nb * block
    if Tp != T:
        xp = np.zeros((N, Tp), dtype)
        xp[:, :T] = x
        cp = np.zeros((N, Tp), dtype)
        cp[:, :T] = c
        x, c = xp, cp
    X = x.reshape(N, nb, block)
    C = c.reshape(N, nb, block)
    y = np.empty((N, Tp), dtype)
    U = y.reshape(N, nb, block)
    # p_t = c_t c_{t+1} ... c_{end of block}: one reversed cumulative product
    Pr = np.multiply.accumulate(C[:, :, ::-1], axis=2)[:, :, ::-1]
    acc = np.zeros((N, nb), dtype)
    tmp = np.empty((N, nb), dtype)
    for k in range(block - 1, -1, -1):
        np.multiply(C[:, :, k], acc, out=tmp)
        np.add(X[:, :, k], tmp, out=U[:, :, k])
        acc = U[:, :, k]
    z = np.zeros((N, nb), dtype)
    if nb > 1:
        z[:, :-1] = _scan(U[:, 1:, 0], Pr[:, 1:, 0])
    Pr *= z[:, :, None]                          # carry z_{b+1} into block b
    U += Pr
    return y[:, :T] if Tp != T else y


def _chunked_terms(terms, cont, scale, mask, y, block=_BLOCK):
    """(R0) for ``x = sum of terms`` and ``c = scale * cont`` by blocks, into ``y: (N, T)``.

    The three stages of ``_chunked``, in a block-time-major scratch ``(B, N, nb)``
    (entry ``[k, i, b]`` is step ``k`` of block ``b`` of row ``i``), so that each
    of the ``B`` backward steps is one contiguous vector over every block of
    every row: (i) local solutions ``u`` and, in place of ``c``, the block
    products ``p_t = c_t ... c_{end of block}`` (three ufunc calls per step);
    (ii) the block starts by the scan one level up; (iii) ``y = u + p z``,
    written straight into ``y``'s own layout. The ``T mod B`` leading columns
    are then finished by the plain loop. Each ``y_t`` is a sum of at most
    ``B + log2(T/B)`` rounded terms. derivations/returns.md#the-linear-recurrence-and-its-scan
    """
    N, T = cont.shape
    dtype = y.dtype
    r0 = T % block
    nb = T // block

    def blocks(a):                               # (N, T) -> view (B, N, nb) of columns r0:
        return a[:, r0:].reshape(N, nb, block).transpose(2, 0, 1)

    masked = not mask.all()
    if nb:
        # x is formed in (N, T) memory and transposed by one copy: NumPy's strided
        # copy is much faster than ufuncs over strided views (measured)
        x = np.empty((N, T - r0), dtype)
        _terms_into(x, terms, (slice(None), slice(r0, None)))
        if masked:
            x *= mask[:, r0:]
        X = np.ascontiguousarray(x.reshape(N, nb, block).transpose(2, 0, 1))
        C = np.empty((block, N, nb), dtype)
        np.multiply(blocks(cont), scale, out=C)
        tmp = np.empty((N, nb), dtype)
        for k in range(block - 2, -1, -1):
            np.multiply(C[k], X[k + 1], out=tmp)
            X[k] += tmp                          # u_k = x_k + c_k u_{k+1}
            C[k] *= C[k + 1]                     # p_k = c_k p_{k+1}
        carry = np.zeros((N, nb), dtype)         # z_{b+1}: y at the start of the next block
        if nb > 1:
            carry[:, :-1] = _scan(X[0, :, 1:], C[0, :, 1:])
        C *= carry
        X += C                                   # y = u + p z_{b+1}
        np.copyto(blocks(y), X)
    if r0:                                       # the leading T mod B columns
        x = np.empty((N, r0), dtype)
        _terms_into(x, terms, (slice(None), slice(0, r0)))
        if masked:
            x *= mask[:, :r0]
        acc = y[:, r0] if nb else np.zeros(N, dtype)
        for t in range(r0 - 1, -1, -1):
            acc = x[:, t] + (scale * cont[:, t]) * acc
            y[:, t] = acc
    return y


def _terms_into(out, terms, sl):
    """``out = sum_k A_k[sl] * (s_k * B_k[sl])`` over ``terms = [(A, B or None, s)]``.

    Written to use as few full passes as possible (the operands are large and
    the work is memory-bound): ``A - A'`` is one subtraction, a boolean weight
    one multiplication.
    """
    k = 0
    if len(terms) >= 2 and terms[0][1] is None and terms[0][2] == 1.0 \
            and terms[1][1] is None and terms[1][2] == -1.0:
        np.subtract(terms[0][0][sl], terms[1][0][sl], out=out)
        k = 2
    elif terms and terms[0][1] is None:
        np.multiply(terms[0][0][sl], terms[0][2], out=out)
        k = 1
    else:
        out[...] = 0.0
    w = None
    for A, B, scale in terms[k:]:
        if w is None:
            w = np.empty_like(out)
        if B is None:
            np.multiply(A[sl], scale, out=w)
        else:
            np.multiply(A[sl], B[sl], out=w)
            if scale != 1.0:
                w *= scale
        out += w


def _fused_loop(terms, cont, scale, mask, out, add_after=None, out2=None, block=None):
    """(R0) with ``x = sum of terms`` and ``c = scale * cont``, one pass over time.

    Blocks of ``block`` time steps: the block's ``x`` and ``c`` are formed in a
    time-major scratch that stays in cache, the recurrence runs backwards over
    it (two ufunc calls per step on contiguous ``(N,)`` vectors), and the block
    is written to ``out`` (and ``add_after`` added into ``out2`` while the
    block's inputs are still in cache). Every input is read once and every
    output written once, which is what matters on large buffers (memory
    traffic, not arithmetic). All arrays are the time-major views ``(T, N)``.
    Returns the sum of ``out``, taken block by block while in cache (for
    ``_check_finite``: a second pass over a large output would come from memory).
    """
    T, N = cont.shape
    dtype = out.dtype
    if block is None:   # about 128 KiB per block array: the block's working set stays in L2
        block = int(np.clip((1 << 14) // max(N, 1), 4, _LOOP_BLOCK))
    direct = out.flags.c_contiguous             # time-major output: solve in place
    xb = np.empty((block, N), dtype)
    cb = np.empty((block, N), dtype)
    yb = None if direct else np.empty((block, N), dtype)
    x_rows, c_rows = list(xb), list(cb)         # row views made once, not once per step
    y_rows = None if direct else list(yb)
    tmp = np.empty(N, dtype)
    acc = np.zeros(N, dtype)
    total = dtype.type(0)
    masked = not mask.all()
    for t1 in range(T, 0, -block):
        t0 = max(0, t1 - block)
        w = t1 - t0
        sl = slice(t0, t1)
        x, cc = xb[:w], cb[:w]
        y = out[sl] if direct else yb[:w]
        _terms_into(x, terms, sl)
        if masked:
            x *= mask[sl]
        np.multiply(cont[sl], scale, out=cc)
        ys = list(y) if direct else y_rows
        for k in range(w - 1, -1, -1):
            np.multiply(c_rows[k], acc, out=tmp)
            acc = ys[k]
            np.add(x_rows[k], tmp, out=acc)
        acc = acc.copy()
        total += np.add.reduce(y, axis=None)
        if not direct:
            out[sl] = y
        if add_after is not None:
            if out2.flags.c_contiguous:
                np.add(y, add_after[sl], out=out2[sl])
                if masked:
                    out2[sl] *= mask[sl]
            else:
                y = y + add_after[sl]
                if masked:
                    y *= mask[sl]
                out2[sl] = y
    return total


def _solve_terms(terms, cont, scale, mask, method, add_after=None):
    """Solve (R0) for ``x = sum of terms`` (0 on padding) and ``c = scale * cont``.

    ``terms = [(A, B or None, s)]`` with ``A: (N, T)`` float, ``B: (N, T)`` bool
    (or None), ``s`` a scalar: ``x = sum_k A_k * s_k * B_k``. Returns ``y`` and,
    with ``add_after``, also ``(y + add_after) * mask``; both ``(N, T)`` in the
    memory order of the inputs (time-major memory stays time-major); last, the
    sum of ``y`` when the solver computed it on the way (else None).
    """
    N, T = cont.shape
    dtype = _dtype(*[A for A, _, _ in terms])
    time_major_memory = terms[0][0].T.flags.c_contiguous and not terms[0][0].flags.c_contiguous
    order = "F" if time_major_memory else "C"
    if T == 0:
        y = np.zeros((N, T), dtype)
        return (y, None) if add_after is None else (y, y.copy(), None)
    how = _method(method, N, time_major_memory)
    if how == "loop":
        y = np.empty((N, T), dtype, order=order)
        y2 = None if add_after is None else np.empty((N, T), dtype, order=order)
        tv = [(A.T, None if B is None else B.T, s) for A, B, s in terms]
        total = _fused_loop(tv, cont.T, scale, mask.T, y.T,
                            None if add_after is None else add_after.T,
                            None if y2 is None else y2.T)
        return (y, total) if add_after is None else (y, y2, total)
    if how == "chunked":
        y = _chunked_terms(terms, cont, scale, mask, np.empty((N, T), dtype, order=order))
    else:
        x = np.empty((N, T), dtype)
        _terms_into(x, terms, (slice(None), slice(None)))
        if not mask.all():
            x *= mask
        y = _scan(x, np.multiply(cont, scale, dtype=dtype))
        if order == "F":
            y = np.asfortranarray(y)
    if add_after is None:
        return y, None
    y2 = y + add_after
    if not mask.all():
        y2 *= mask
    return y, y2, None


def _solve(x, c, method):
    """Solve (R0) by the method chosen for this shape: ``(N, T)``."""
    if x.shape[1] == 0:
        return np.zeros(x.shape, dtype=np.result_type(x, c))
    how = _method(method, x.shape[0], x.T.flags.c_contiguous and not x.flags.c_contiguous)
    if how == "chunked":
        return _chunked(x, c)
    return _scan(x, c) if how == "scan" else _loop(x, c)


def _dtype(*arrays):
    return np.result_type(np.float64, *arrays)


def linear_recurrence(x, c, *, method="auto", time_major=False):
    """Solve ``y_t = x_t + c_t y_{t+1}`` backwards along each row, ``y_T = 0`` (R0): ``(N, T)``.

    ``x: (N, T)`` float64 or complex128, ``c: (N, T)`` real or complex
    coefficients (``c[:, T-1]`` is multiplied by ``y_T = 0``). ``method``:
    ``"loop"`` (a plain backward loop over ``T``; error ``O(T eps)`` in the
    worst case), ``"scan"`` (Hillis-Steele scan, ``ceil(log2 T)`` vectorised
    levels, ``3 N T log2 T`` flops; each ``y_t`` is summed as a balanced
    tree, error ``O(log2 T eps)``), ``"chunked"`` (blocks of 16 steps solved
    locally, block starts by the scan; error ``O((16 + log2 T) eps)``),
    ``"auto"`` (chunked for ``N <= 256`` rows, or ``N <= 32`` when the arrays are
    time-major in memory; loop otherwise).
    ``time_major=True``: every array argument and the result are ``(T, N)``
    instead (a rollout buffer as PyTorch code stores it; no copy is made).
    derivations/returns.md#the-linear-recurrence-and-its-scan
    """
    x, c = _batch_major(time_major, x, c)
    x = as_float_array("x", x, ndim=2, allow_complex=True)
    c = _like("c", c, x.shape)
    out = _solve(x, c, method)
    return out.T if time_major else out


# -------------------------------------------------------------------- the returns
def episode_returns(rewards, gamma, *, mask=None):
    """Whole-episode discounted return ``R(tau) = sum_t gamma^t r_t`` per row (R1): ``(N,)``.

    ``rewards: (N, T)``, one episode per row starting at ``t = 0``, valid steps
    marked by ``mask: (N, T)`` (rewards on padding are ignored).
    derivations/returns.md#discounted-returns
    """
    rewards = _rewards(rewards)
    gamma = check_gamma(gamma)
    m = _bool("mask", mask, rewards.shape, True)
    disc = gamma ** np.arange(rewards.shape[1])
    return np.where(m, rewards, 0.0) @ disc


def reward_to_go(rewards, gamma, *, terminated=None, truncated=None, next_values=None,
                 mask=None, method="auto", time_major=False):
    """Discounted reward-to-go with episode boundaries (R2): ``(N, T)``, 0 on padding.

        G_t = r_t + gamma (1 - done_t) G_{t+1} + gamma b_t V(s_{t+1})

    where ``done = terminated | truncated`` (or padding next) and ``b_t = 1``
    on truncated and cut steps when ``next_values`` are given (bootstrap), else
    ``b_t = 0`` (the tail beyond the data counts as 0). Within an episode this
    is ``G_t = sum_{k=t}^{end} gamma^(k-t) r_k [+ gamma^(end+1-t) V(s_{end+1})]``.
    ``rewards, next_values: (N, T)``; flags and ``mask: (N, T)`` bool; with no
    flags each row is one episode (the estimators' use).
    ``time_major=True``: every array argument and the result are ``(T, N)``
    instead (a rollout buffer as PyTorch code stores it; no copy is made).
    derivations/returns.md#reward-to-go
    """
    rewards, terminated, truncated, next_values, mask = _batch_major(
        time_major, rewards, terminated, truncated, next_values, mask)
    r = _rewards(rewards, finite=False)
    gamma = check_gamma(gamma)
    term, trunc, mask, cont, cut = _flags(r.shape, terminated, truncated, mask, r)
    terms = [(r, None, 1.0)]
    nv = None
    if next_values is not None:
        nv = _like("next_values", next_values, r.shape, finite=False)
        terms.append((nv, trunc | cut, gamma))
    with np.errstate(over="ignore", invalid="ignore"):   # non-finite: _check_finite
        out, total = _solve_terms(terms, cont, gamma, mask, method)
    _check_finite(out, total, rewards=r, next_values=nv)
    return out.T if time_major else out


def td_residuals(rewards, values, next_values, gamma, *, terminated=None, mask=None,
                 time_major=False):
    """TD residuals (R3): ``(N, T)``.

        delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)

    ``rewards, values, next_values: (N, T)`` (``values[:, t] = V(s_t)``,
    ``next_values[:, t] = V(s_{t+1})``); ``terminated, mask: (N, T)`` bool.
    Truncation does not change ``delta_t``: the state reached is not terminal.
    0 on padding.
    ``time_major=True``: every array argument and the result are ``(T, N)``
    instead (a rollout buffer as PyTorch code stores it; no copy is made).
    derivations/returns.md#td-residuals
    """
    rewards, values, next_values, terminated, mask = _batch_major(
        time_major, rewards, values, next_values, terminated, mask)
    r = _rewards(rewards)
    v = _like("values", values, r.shape)
    nv = _like("next_values", next_values, r.shape)
    gamma = check_gamma(gamma)
    term, _, mask, _, _ = _flags(r.shape, terminated, None, mask, r)
    out = _delta(r, v, nv, gamma, term, mask)
    return out.T if time_major else out


def lambda_returns(rewards, next_values, gamma, lam, *, terminated=None, truncated=None,
                   mask=None, method="auto", time_major=False):
    """Lambda-returns by their recursive definition (R4): ``(N, T)``, 0 on padding.

        G_t = r_t + gamma [ (1 - lam) V(s_{t+1}) + lam G_{t+1} ]   episode continues
        G_t = r_t + gamma V(s_{t+1})                              truncated or cut
        G_t = r_t                                                 terminated

    ``lam = 1`` gives the bootstrapped reward-to-go (R2), ``lam = 0`` the
    one-step target ``r_t + gamma (1 - terminated_t) V(s_{t+1})``. ``rewards,
    next_values: (N, T)``; flags and mask ``(N, T)`` bool.
    ``time_major=True``: every array argument and the result are ``(T, N)``
    instead (a rollout buffer as PyTorch code stores it; no copy is made).
    derivations/returns.md#lambda-returns
    """
    rewards, next_values, terminated, truncated, mask = _batch_major(
        time_major, rewards, next_values, terminated, truncated, mask)
    r = _rewards(rewards, finite=False)
    nv = _like("next_values", next_values, r.shape, finite=False)
    gamma = check_gamma(gamma)
    lam = check_gamma(lam, name="lam")
    term, trunc, mask, cont, cut = _flags(r.shape, terminated, truncated, mask, r)
    # weight of V(s_{t+1}): gamma (1 - lam) inside an episode, gamma at its end, 0 if terminal
    terms = [(r, None, 1.0), (nv, ~term, gamma), (nv, cont, -gamma * lam)]
    with np.errstate(over="ignore", invalid="ignore"):   # non-finite: _check_finite
        out, total = _solve_terms(terms, cont, gamma * lam, mask, method)
    _check_finite(out, total, rewards=r, next_values=nv)
    return out.T if time_major else out


class GAE(NamedTuple):
    """``(advantages, returns)`` of ``gae``, both ``(N, T)``; ``returns = advantages + values``.

    derivations/returns.md#generalized-advantage-estimation
    """

    advantages: np.ndarray
    returns: np.ndarray


def gae(rewards, values, next_values, gamma, lam, *, terminated=None, truncated=None,
        mask=None, method="auto", time_major=False):
    """Generalized advantage estimation GAE(gamma, lam) (R5); returns ``GAE(advantages, returns)``.

        delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)          (R3)
        A_t     = delta_t + gamma lam (1 - done_t) A_{t+1},  done = terminated | truncated

    and ``A_t = delta_t`` on the last valid step of a row that is not done (the
    row was cut by the buffer end: ``delta`` already bootstraps from
    ``next_values``). ``returns = A + V`` (the lambda-return (R4) when
    ``next_values[:, t] == values[:, t+1]`` inside episodes). ``rewards,
    values, next_values: (N, T)``; flags and ``mask: (N, T)`` bool; both
    outputs are 0 on padding. Schulman et al. (2016), eqs. (11)-(16).
    ``time_major=True``: every array argument and the result are ``(T, N)``
    instead (a rollout buffer as PyTorch code stores it; no copy is made).
    derivations/returns.md#generalized-advantage-estimation
    """
    rewards, values, next_values, terminated, truncated, mask = _batch_major(
        time_major, rewards, values, next_values, terminated, truncated, mask)
    r = _rewards(rewards, finite=False)
    v = _like("values", values, r.shape, finite=False)
    nv = _like("next_values", next_values, r.shape, finite=False)
    gamma = check_gamma(gamma)
    lam = check_gamma(lam, name="lam")
    term, trunc, mask, cont, cut = _flags(r.shape, terminated, truncated, mask, r)
    terms = [(r, None, 1.0), (v, None, -1.0), (nv, ~term, gamma)]   # delta (R3)
    with np.errstate(over="ignore", invalid="ignore"):   # non-finite: _check_finite
        adv, ret, total = _solve_terms(terms, cont, gamma * lam, mask, method, add_after=v)
    _check_finite(adv, total, rewards=r, values=v, next_values=nv)   # v also reaches adv
    if time_major:
        adv, ret = adv.T, ret.T
    return GAE(advantages=adv, returns=ret)
