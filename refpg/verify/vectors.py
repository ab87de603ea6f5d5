"""V3: golden vectors, language-agnostic JSON test cases for every verified quantity.

One JSON file per quantity, shipped in ``refpg/vectors/<quantity>.json``:

    {
      "schema": "refpg-golden-vectors/1",
      "quantity": "gae",
      "refpg_version": "0.1.0",
      "description": "...",
      "layout": "batch-major: arrays (N, T) ...",
      "vectors": [
        {"name": "...", "description": "...", "refpg_function": "refpg.returns.gae",
         "conventions": {...}, "inputs": {...}, "expected": {...},
         "tolerance": {"rtol": 1e-12, "atol": 1e-12}}
      ]
    }

Arrays are nested lists (row-major), booleans ``true``/``false``, floats in
shortest round-trip form (Python's ``repr``), so a reader in any language
gets the exact float64 values. A user passes ``inputs`` to their code and
compares with ``expected`` within ``tolerance``
(``|got - expected| <= atol + rtol |expected|``).

Vectors are generated deterministically (fixed seeds, no timing, no
platform-dependent routines), so the same refpg version regenerates them
bit-identically: ``tests/test_vectors.py`` checks the shipped files are
current. The library returns JSON text; ``refpg vectors --out DIR`` (the
command line) and ``scripts/make_golden_vectors.py`` write the files.
derivations/verify.md#golden-vectors
"""
from __future__ import annotations

import importlib
import json
from importlib import resources

import numpy as np

__all__ = ["SCHEMA", "GENERATORS", "vector", "generate", "to_json", "load", "quantities"]

SCHEMA = "refpg-golden-vectors/1"

#: quantity -> "module:function" returning ``(description, layout, [vector, ...])``.
GENERATORS = {}


def register(quantity, target):
    """Register the generator ``"module:function"`` for ``quantity``."""
    GENERATORS[quantity] = target


def _plain(x):
    if isinstance(x, np.ndarray):
        if x.dtype.kind == "c":
            raise TypeError("golden vectors hold real numbers only")
        return _plain(x.tolist())
    if isinstance(x, (np.floating,)):
        return _plain(float(x))
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        raise ValueError("golden vectors must be finite (JSON has no NaN/inf)")
    return x


def vector(name, description, refpg_function, inputs, expected, *, rtol, atol,
           conventions=None):
    """One golden vector as a plain dict (arrays converted to nested lists).

    derivations/verify.md#golden-vectors
    """
    return {"name": name, "description": description, "refpg_function": refpg_function,
            "conventions": _plain(conventions or {}), "inputs": _plain(inputs),
            "expected": _plain(expected), "tolerance": {"rtol": float(rtol), "atol": float(atol)}}


def _ensure_registered():
    if not GENERATORS:
        # importing the verifier modules registers their generators
        importlib.import_module("refpg.verify.registry")


def quantities():
    """Names of the quantities that have golden vectors. derivations/verify.md#golden-vectors"""
    _ensure_registered()
    return sorted(GENERATORS)


def generate(quantity):
    """The golden-vector document for ``quantity`` as a dict (deterministic).

    derivations/verify.md#golden-vectors
    """
    from .. import __version__
    _ensure_registered()
    if quantity not in GENERATORS:
        raise ValueError(f"no golden vectors for quantity {quantity!r}; choose from {quantities()}")
    module, func = GENERATORS[quantity].split(":")
    description, layout, vectors = getattr(importlib.import_module(module), func)()
    names = [v["name"] for v in vectors]
    if len(set(names)) != len(names):
        raise RuntimeError(f"duplicate golden-vector names for {quantity}")
    return {"schema": SCHEMA, "quantity": quantity, "refpg_version": __version__,
            "description": description, "layout": layout, "vectors": vectors}


def to_json(document):
    """Canonical JSON text (sorted keys, 1-space indent, trailing newline).

    derivations/verify.md#golden-vectors
    """
    return json.dumps(document, sort_keys=True, indent=1, allow_nan=False) + "\n"


def load(quantity):
    """The shipped golden vectors of ``quantity`` (parsed JSON).

    derivations/verify.md#golden-vectors
    """
    try:
        text = resources.files("refpg").joinpath("vectors", f"{quantity}.json").read_text()
    except FileNotFoundError as exc:
        raise ValueError(f"no shipped golden vectors for {quantity!r}") from exc
    return json.loads(text)
