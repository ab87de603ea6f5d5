"""The quantities refpg can verify, for the command line and the golden vectors.

``VERIFIERS`` maps a quantity name to the ``"module:function"`` of its verifier;
every verifier takes the user's callable first and keyword options after it,
which the command line exposes as ``--option value``. ``GOLDEN`` maps the
quantities that have golden vectors to their generators.
derivations/verify.md#the-command-line
"""
from __future__ import annotations

import importlib

from . import vectors

__all__ = ["VERIFIERS", "GOLDEN", "verifier"]

VERIFIERS = {
    "returns": "refpg.verify.returns:verify_returns",
    "gae": "refpg.verify.returns:verify_gae",
    "lambda_returns": "refpg.verify.returns:verify_lambda_returns",
    "importance_weights": "refpg.verify.weights:verify_importance_weights",
    "kl": "refpg.verify.distributions:verify_kl",
    "entropy": "refpg.verify.distributions:verify_entropy",
    "estimator": "refpg.verify.estimators:verify_estimator",
    "estimator_mean": "refpg.verify.stats:verify_estimator_mean",
    "surrogate": "refpg.verify.trpo:verify_surrogate",
    "surrogate_gradient": "refpg.verify.trpo:verify_surrogate_gradient",
    "fisher_vector_product": "refpg.verify.trpo:verify_fvp",
    "gaussian_fisher_vector_product": "refpg.verify.trpo:verify_gaussian_fvp",
    "conjugate_gradient": "refpg.verify.cg:verify_cg",
    "trpo_step": "refpg.verify.trpo_step:verify_trpo_step",
    "gradient": "refpg.verify.gradient:verify_gradient_cli",
}

GOLDEN = {
    "returns": "refpg.verify.returns:golden_returns",
    "gae": "refpg.verify.returns:golden_gae",
    "lambda_returns": "refpg.verify.returns:golden_lambda_returns",
    "importance_weights": "refpg.verify.weights:golden_importance_weights",
    "kl": "refpg.verify.distributions:golden_kl",
    "entropy": "refpg.verify.distributions:golden_entropy",
    "estimator": "refpg.verify.estimators:golden_estimator_vectors",
    "surrogate": "refpg.verify.trpo:golden_surrogate",
    "fisher_vector_product": "refpg.verify.trpo:golden_fvp",
    "gaussian_fisher_vector_product": "refpg.verify.trpo:golden_gaussian_fvp",
    "conjugate_gradient": "refpg.verify.cg:golden_cg",
    "trpo_step": "refpg.verify.trpo_step:golden_trpo_step",
}

for _quantity, _target in GOLDEN.items():
    vectors.register(_quantity, _target)


def verifier(quantity):
    """The verifier function of ``quantity`` (imported on demand).

    derivations/verify.md#the-command-line
    """
    if quantity not in VERIFIERS:
        raise ValueError(f"unknown quantity {quantity!r}; choose from {sorted(VERIFIERS)}")
    module, func = VERIFIERS[quantity].split(":")
    return getattr(importlib.import_module(module), func)
