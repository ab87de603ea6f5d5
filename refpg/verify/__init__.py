"""Verify other implementations (SCOPE V1-V4). derivations/verify.md"""
from .core import Case, Outcome, VerifyReport, run_cases, safe_call, shrink_case

__all__ = ["Case", "Outcome", "VerifyReport", "run_cases", "safe_call", "shrink_case"]
