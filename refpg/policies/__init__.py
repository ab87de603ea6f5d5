"""Policies with hand-written gradients (SCOPE P1-P4). derivations/policies.md"""
from .base import Policy, SoftmaxPolicy
from .tabular import TabularSoftmaxPolicy

__all__ = ["Policy", "SoftmaxPolicy", "TabularSoftmaxPolicy"]
