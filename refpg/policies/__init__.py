"""Policies with hand-written gradients (SCOPE P1-P4). derivations/policies.md"""
from .base import Policy, SoftmaxPolicy
from .gaussian import LinearGaussianPolicy
from .linear_softmax import LinearSoftmaxPolicy
from .mlp import MLPSoftmaxPolicy
from .tabular import TabularSoftmaxPolicy

__all__ = ["Policy", "SoftmaxPolicy", "TabularSoftmaxPolicy", "LinearSoftmaxPolicy",
           "MLPSoftmaxPolicy", "LinearGaussianPolicy"]
