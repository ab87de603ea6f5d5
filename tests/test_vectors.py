"""Golden vectors (V3): shipped with the package, current, bit-identically regenerable,
and each one agrees with the refpg function that made it (an independent recomputation
through the matching verifier's reference would be circular; instead the vectors are
checked against the verifiers: refpg's own reference implementation must pass them)."""
import json

import numpy as np
import pytest

from refpg.verify import vectors

QUANTITIES = vectors.quantities()


def test_there_are_golden_vectors_for_every_verified_data_quantity():
    for q in ("returns", "gae", "lambda_returns", "importance_weights", "kl", "entropy",
              "estimator", "surrogate", "fisher_vector_product", "conjugate_gradient",
              "trpo_step"):
        assert q in QUANTITIES


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_shipped_vectors_are_current_and_regenerate_bit_identically(quantity):
    text1 = vectors.to_json(vectors.generate(quantity))
    text2 = vectors.to_json(vectors.generate(quantity))
    assert text1 == text2, "generation is not deterministic"
    shipped = vectors.load(quantity)
    assert vectors.to_json(shipped) == text1, (
        f"refpg/vectors/{quantity}.json is stale: run python scripts/make_golden_vectors.py")


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_schema(quantity):
    doc = vectors.load(quantity)
    assert doc["schema"] == vectors.SCHEMA and doc["quantity"] == quantity
    assert doc["description"] and doc["layout"] and doc["vectors"]
    for v in doc["vectors"]:
        assert set(v) == {"name", "description", "refpg_function", "conventions", "inputs",
                          "expected", "tolerance"}
        assert v["refpg_function"].startswith("refpg.")
        assert set(v["tolerance"]) == {"rtol", "atol"}
        # language-agnostic: plain JSON, finite numbers only
        json.dumps(v, allow_nan=False)


def test_vectors_reject_non_finite_and_complex():
    with pytest.raises(ValueError):
        vectors.vector("x", "d", "refpg.f", {"a": float("nan")}, {"b": 1.0}, rtol=0, atol=0)
    with pytest.raises(TypeError):
        vectors.vector("x", "d", "refpg.f", {"a": np.array([1j])}, {"b": 1.0}, rtol=0, atol=0)
