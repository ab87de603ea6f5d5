"""The backward linear recurrence behind every return, and its solvers (SCOPE G8).

    y_t = x_t + c_t y_{t+1},   y_T = 0,   along each row of ``(N, T)`` arrays      (R0)

Reward-to-go, lambda-returns and GAE (``refpg.returns``) are all (R0) with a
boolean ``c`` (0 where an episode ends) times a constant. Solvers: a plain loop
over time (``_loop``), a Hillis-Steele scan over affine maps (``_scan``), a
two-level chunked solve (``_chunked``), and their fused forms that build ``x``
and ``c`` from the returns' terms on the way (``_chunked_terms`` for few rows,
``_fused_loop`` for many); ``method="auto"`` picks by the number of rows and the
memory layout. ``linear_recurrence`` is the public entry for any ``c``.
derivations/returns.md#the-linear-recurrence-and-its-scan
"""
from __future__ import annotations

import warnings

import numpy as np

from .validation import as_float_array

__all__ = ["linear_recurrence"]

_METHODS = ("auto", "chunked", "scan", "loop")
#: ``method="auto"`` uses the chunked solver for at most this many rows and the
#: fused loop above, for batch-major and for time-major memory (measured crossovers
#: on 2 cores: the loop's steps are contiguous only in time-major memory).
_CHUNKED_MAX_ROWS = 256
_CHUNKED_MAX_ROWS_TIME_MAJOR = 32
#: time steps per block of the chunked solver and of the fused loop.
_BLOCK = 16
_LOOP_BLOCK = 32


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
    x, c = x.astype(dtype, copy=False), c.astype(dtype, copy=False)   # complex x, real c
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
    if len(terms) == 2 and terms[0][1] is None and terms[0][2] == 1.0 \
            and terms[1][1] is not None:
        # A + s (A' B'): the weighted product straight into out, then A added (the same
        # rounded operations as adding it to a copy of A: IEEE addition commutes)
        A, (A2, B2, scale) = terms[0][0], terms[1]
        np.multiply(A2[sl], B2[sl], out=out)
        if scale != 1.0:
            out *= scale
        out += A[sl]
        return
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
    Returns the sums of ``out`` and of ``out2`` (None without ``add_after``), taken
    block by block while in cache (for ``refpg.returns._check_finite``: a second pass
    over a large output would come from memory).
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
    total2 = None if add_after is None else dtype.type(0)
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
                y2 = out2[sl]
                np.add(y, add_after[sl], out=y2)
                if masked:
                    y2 *= mask[sl]
            else:
                y2 = y + add_after[sl]
                if masked:
                    y2 *= mask[sl]
                out2[sl] = y2
            total2 += np.add.reduce(y2, axis=None)
    return total, total2


def _solve_terms(terms, cont, scale, mask, method, add_after=None):
    """Solve (R0) for ``x = sum of terms`` (0 on padding) and ``c = scale * cont``.

    ``terms = [(A, B or None, s)]`` with ``A: (N, T)`` float, ``B: (N, T)`` bool
    (or None), ``s`` a scalar: ``x = sum_k A_k * s_k * B_k``. Returns ``(y, total)``
    or, with ``add_after``, ``(y, y2, total, total2)`` with ``y2 = (y + add_after) *
    mask``; ``y, y2: (N, T)`` in the memory order of the inputs (time-major memory
    stays time-major); ``total``, ``total2`` the sums of ``y``, ``y2`` when the solver
    computed them on the way (else None).
    """
    N, T = cont.shape
    dtype = _dtype(*[A for A, _, _ in terms])
    time_major_memory = terms[0][0].T.flags.c_contiguous and not terms[0][0].flags.c_contiguous
    order = "F" if time_major_memory else "C"
    how = _method(method, N, time_major_memory)
    if T == 0:
        y = np.zeros((N, T), dtype)
        return (y, None) if add_after is None else (y, y.copy(), None, None)
    if how == "loop":
        y = np.empty((N, T), dtype, order=order)
        y2 = None if add_after is None else np.empty((N, T), dtype, order=order)
        tv = [(A.T, None if B is None else B.T, s) for A, B, s in terms]
        total, total2 = _fused_loop(tv, cont.T, scale, mask.T, y.T,
                                    None if add_after is None else add_after.T,
                                    None if y2 is None else y2.T)
        return (y, total) if add_after is None else (y, y2, total, total2)
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
    return y, y2, None, None


def _solve(x, c, method):
    """Solve (R0) by the method chosen for this shape: ``(N, T)``."""
    how = _method(method, x.shape[0], x.T.flags.c_contiguous and not x.flags.c_contiguous)
    if x.shape[1] == 0:
        return np.zeros(x.shape, dtype=np.result_type(x, c))
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
    c = as_float_array("c", c, allow_complex=True)
    if c.shape != x.shape:
        raise ValueError(f"c must have the shape of x (N, T) = {x.shape}; got {c.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = _solve(x, c, method)
        if not np.all(np.isfinite(out)):
            # finite inputs (checked above): the scan's and the blocks' products of c can
            # overflow (|c| > 1) where the loop's sums do not, and inf * 0 is NaN
            if _method(method, x.shape[0]) != "loop" and method != "auto":
                raise ValueError(f"method={method!r} overflowed: products of c exceed the "
                                 f"float64 range (|c| > 1); use method='loop'")
            out = _loop(x, c)
            if not np.all(np.isfinite(out)):
                warnings.warn("the result overflowed (finite inputs, non-finite result)",
                              RuntimeWarning, stacklevel=2)
    return out.T if time_major else out
