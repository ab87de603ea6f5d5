"""Validation at the public boundary: one function per failure mode.

Every public refpg routine checks its inputs here and raises ``ValueError``
(or ``TypeError``) naming the argument, the rule and the observed value.
Nothing is repaired silently, nothing is ``assert``-ed, no global state is
touched. See derivations/conventions.md#validation.

Complex inputs: exact routines accept ``complex128`` so that complex-step
derivatives work; the checks below then apply to the real part (the
imaginary part of a complex-step perturbation is ~1e-20 and carries no
meaning for ranges or sums).
"""
from __future__ import annotations

import numbers

import numpy as np

#: Tolerance on ``|sum - 1|`` for probability vectors (float64 rounding of a
#: sum of a few thousand terms is far below this; user tables rounded to
#: ~1e-10 are accepted).
PROB_SUM_TOL = 1e-8


def _dtype_for(x, allow_complex):
    if allow_complex and np.iscomplexobj(x):
        return np.complex128
    return np.float64


def as_float_array(name, x, *, ndim=None, shape=None, allow_complex=False,
                   finite=True):
    """Return ``x`` as a float64 (or complex128) array after checking it.

    Raises ``TypeError`` when ``x`` is not numeric, ``ValueError`` when the
    rank, shape or finiteness is wrong. ``shape`` may contain ``None`` for
    free dimensions.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - numpy raises rarely here
        raise TypeError(f"{name} must be array-like; got {type(x).__name__}") from exc
    if arr.dtype == object or arr.dtype.kind not in "biufc":
        raise TypeError(f"{name} must be numeric; got dtype {arr.dtype}")
    if arr.dtype.kind == "c" and not allow_complex:
        raise TypeError(f"{name} must be real; got complex dtype {arr.dtype}")
    arr = arr.astype(_dtype_for(arr, allow_complex), copy=False)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(
                want is not None and want != got for want, got in zip(shape, arr.shape)):
            want = tuple("*" if w is None else w for w in shape)
            raise ValueError(f"{name} must have shape {want}; got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        raise ValueError(f"{name} must be finite (no NaN or inf); first bad entry at "
                         f"index {tuple(int(i) for i in bad[0])}")
    return arr


def as_index_array(name, x, *, upper, shape=None):
    """Integer array with entries in ``[0, upper)``."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        if arr.size == 0:
            arr = arr.astype(np.int64)
        else:  # no silent dtype change: 1.0 is not an index
            raise TypeError(f"{name} must be integer indices; got dtype {arr.dtype}")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; got {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= upper):   # before the cast: uint64 wraps
        bad = arr[(arr < 0) | (arr >= upper)].ravel()[0]
        raise ValueError(f"{name} must lie in [0, {upper}); found {int(bad)}")
    return arr.astype(np.int64, copy=False)


def as_bool_array(name, x, shape, shape_text):
    """Boolean array of shape ``shape`` (0/1 integers accepted); ``shape_text`` names
    the shape in the error, e.g. ``"(N, T)"``."""
    arr = np.asarray(x)
    if arr.dtype != bool:
        if arr.dtype.kind in "iu" and np.all((arr == 0) | (arr == 1)):
            arr = arr.astype(bool)
        else:
            raise ValueError(f"{name} must be boolean {shape_text} (or 0/1 integers); "
                             f"got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {shape_text} = {tuple(shape)}; "
                         f"got {arr.shape}")
    return arr


def as_index_or_vector(name, x, lead, upper, lead_text):
    """States or actions of a sample: integer indices of shape ``lead`` in ``[0, upper)``
    (``upper`` None: unchecked) or float vectors of shape ``lead + (k,)``."""
    arr = np.asarray(x)
    nd = len(lead)
    if arr.shape[:nd] != tuple(lead) or arr.ndim not in (nd, nd + 1):
        raise ValueError(f"{name} must have shape {lead_text} = {tuple(lead)} or "
                         f"{lead_text.rstrip(',)')}, k); got {arr.shape}")
    if arr.ndim == nd and (arr.dtype.kind in "iub" or arr.size == 0):
        if arr.size and arr.min() < 0:          # checked before the cast (uint64 would wrap)
            raise ValueError(f"{name} must be non-negative indices; found {int(arr.min())}")
        if upper is not None and arr.size and arr.max() >= upper:
            raise ValueError(f"{name} must lie in [0, {upper}); found {int(arr.max())}")
        return arr.astype(np.int64)
    if arr.ndim == nd:        # no silent cast: 7.0 or 0.5 is not a state or action index
        raise ValueError(f"{name} of shape {lead_text} must be integer indices; got dtype "
                         f"{arr.dtype} (float vectors have shape {lead_text.rstrip(',)')}, k))")
    return as_float_array(name, arr)


def check_probabilities(name, p, *, axis=-1, tol=PROB_SUM_TOL):
    """Check non-negative entries summing to one along ``axis``.

    ``p`` may be complex (complex step); the rules apply to its real part.
    """
    re = np.real(p)
    if np.any(re < 0):
        idx = tuple(int(i) for i in np.argwhere(re < 0)[0])
        raise ValueError(f"{name} must be non-negative; found {re[idx]:.3e} at index {idx}")
    sums = re.sum(axis=axis)
    dev = np.abs(sums - 1.0)
    if dev.size and np.max(dev) > tol:
        idx = np.unravel_index(int(np.argmax(dev)), dev.shape)
        where = "" if dev.ndim == 0 else f" at index {tuple(int(i) for i in idx)}"
        raise ValueError(f"{name} must sum to 1 along axis {axis}; max |sum - 1| = "
                         f"{float(np.max(dev)):.2e}{where}, tol = {tol:.0e}")
    return p


def check_gamma(gamma, *, allow_one=True, name="gamma"):
    """Discount in ``[0, 1]`` (``[0, 1)`` when ``allow_one`` is False)."""
    if isinstance(gamma, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{name} must be a real number; got {gamma!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        try:
            gamma = float(np.asarray(gamma).item())
        except Exception as exc:
            raise TypeError(f"{name} must be a real number; got {gamma!r}") from exc
    gamma = float(gamma)
    upper_ok = gamma <= 1.0 if allow_one else gamma < 1.0
    if not (gamma >= 0.0 and upper_ok):
        rng = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must lie in {rng}; got {gamma!r}")
    return gamma


def check_positive_int(name, n, *, minimum=1):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {n!r}")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {n}")
    return int(n)


def check_positive_float(name, x, *, strict=True):
    if isinstance(x, (str, bytes, bool, np.bool_)):      # no silent "0.01" or True -> 1.0
        raise TypeError(f"{name} must be a real number; got {x!r}")
    try:
        x = float(x)
    except Exception as exc:
        raise TypeError(f"{name} must be a real number; got {x!r}") from exc
    ok = x > 0 if strict else x >= 0
    if not (ok and np.isfinite(x)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} 0 and finite; got {x!r}")
    return x


def check_rng(rng, name="rng"):
    """Only an explicit ``np.random.Generator`` is accepted (no global state)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator "
                        f"(np.random.default_rng(seed)); got {type(rng).__name__}")
    return rng


def check_theta(theta, n_params, *, name="theta", allow_complex=True):
    """A flat parameter vector of length ``n_params`` (float64 or complex128)."""
    arr = as_float_array(name, theta, allow_complex=allow_complex)
    if arr.ndim != 1 or arr.shape[0] != n_params:
        raise ValueError(f"{name} must be a flat vector of length {n_params}; got shape {arr.shape}")
    return arr


def check_same_shape(**arrays):
    """All keyword arrays must share one shape; the message names each one."""
    items = list(arrays.items())
    first_name, first = items[0]
    for name, arr in items[1:]:
        if np.shape(arr) != np.shape(first):
            raise ValueError(f"{first_name} {np.shape(first)} and {name} {np.shape(arr)} "
                             f"must have the same shape")
