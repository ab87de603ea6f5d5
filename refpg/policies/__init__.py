"""Policies with hand-written gradients (SCOPE P1-P4). derivations/policies.md"""
from .base import Policy, SoftmaxPolicy
from .linear_softmax import LinearSoftmaxPolicy
from .mlp import MLPSoftmaxPolicy
from .tabular import TabularSoftmaxPolicy

__all__ = ["Policy", "SoftmaxPolicy", "TabularSoftmaxPolicy", "LinearSoftmaxPolicy",
           "MLPSoftmaxPolicy"]

try:  # written concurrently (SCOPE P3); exported once refpg/policies/gaussian.py exists
    from .gaussian import LinearGaussianPolicy  # noqa: F401 (exported via __all__ below)
except ModuleNotFoundError as _exc:  # only a missing file is tolerated, never a broken one
    if _exc.name != f"{__name__}.gaussian":
        raise
else:
    __all__.append("LinearGaussianPolicy")
