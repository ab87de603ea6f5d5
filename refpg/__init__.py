"""refpg: a numerically rigorous reference implementation of policy-gradient methods.

Layers, each importing only those below it (README.md#architecture):
models (mdp, lq) -> evaluation -> policies -> sampling and returns ->
estimators and exact moments -> natural gradient, bounds, trust region ->
verifiers -> command line and report.
"""
from .mdp import FiniteMDP, random_mdp
from .evaluation import (Evaluation, FiniteHorizonEvaluation, evaluate,
                         evaluate_finite_horizon)
from .policies import Policy, SoftmaxPolicy, TabularSoftmaxPolicy
from .policy_gradient import (eta, exact_finite_horizon_gradient, exact_policy_gradient,
                              finite_horizon_objective)
from .testing import check_gradient, central_difference, complex_step

__version__ = "0.1.0"
