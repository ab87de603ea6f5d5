"""refpg: a numerically rigorous reference implementation of policy-gradient methods.

Layers, each importing only those below it (README.md#architecture):
models (mdp, classic, gym_tabular, lq) -> evaluation, planning -> policies ->
exact gradients and checks -> sampling and returns -> estimators and exact
moments -> natural gradient, bounds, trust region -> verifiers -> command line
and report.

The most used names are re-exported here; every module can also be imported
on its own (``from refpg.returns import gae``). ``refpg.strategies`` needs the
``test`` extra (hypothesis) and is therefore not imported here; gymnasium is
imported lazily by ``refpg.gym_tabular`` and ``refpg.collect``.
"""
# models
from .mdp import FiniteMDP, random_mdp
from .classic import gridworld, random_walk, short_corridor, two_state_chain
from .gym_tabular import from_gymnasium
from .lq import LQSystem, lq_eta, lq_fisher, lq_gradient, lq_natural_gradient, random_lq_system
# exact evaluation and planning
from .evaluation import (Evaluation, FiniteHorizonEvaluation, ReturnMoments, evaluate,
                         evaluate_finite_horizon, return_moments)
from .planning import backward_induction, policy_iteration, value_iteration
# policies
from .policies import (LinearGaussianPolicy, LinearSoftmaxPolicy, MLPSoftmaxPolicy, Policy,
                       SoftmaxPolicy, TabularSoftmaxPolicy)
# exact gradients and gradient checks
from .policy_gradient import (eta, exact_finite_horizon_gradient, exact_policy_gradient,
                              finite_horizon_objective)
from .testing import central_difference, check_gradient, complex_step
# sampling and returns
from .batch import Batch
from .sampling import sample_batch, sample_from_table, sample_transitions
from .transitions import Transitions
from .collect import collect
from .returns import gae, lambda_returns, reward_to_go, td_residuals
# estimators and exact moments
from .estimators import (optimal_baseline, pseudo_loss, pseudo_loss_gradient, reinforce,
                         reinforce_reward_to_go)
from .off_policy import off_policy_estimate
from .moments import dp_moments, enumerate_trajectories, exact_bias_and_covariance, exact_moments
# natural gradient, identities, bounds, trust region
from .natural import (exact_fisher, exact_fisher_vector_product, kl_max, kl_mean,
                      natural_gradient, tabular_npg_update)
from .identities import local_approximation, performance_difference
from .bounds import penalised_update, policy_improvement_bounds
from .cpi import conservative_policy_iteration, mixture_policy
from .importance import effective_sample_size, importance_sampling_estimate
from .cg import CGResult, conjugate_gradient
from .linesearch import AcceptanceRule, LineSearchResult, backtracking_line_search
from .surrogate import single_path_surrogate, vine_surrogate
from .trpo import TRPOConfig, TRPOStep, trpo_step, trpo_step_exact, trpo_step_sampled
from .algorithms import natural_policy_gradient, policy_gradient_ascent, trpo_exact, trpo_sampled

__version__ = "0.1.0"

__all__ = sorted(name for name, obj in list(globals().items())
                 if not name.startswith("_") and not isinstance(obj, type(__import__("sys"))))
