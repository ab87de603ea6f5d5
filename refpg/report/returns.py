"""Report section 'returns' (filled in by its issue). See refpg.report."""
from __future__ import annotations

from . import Check, compare  # noqa: F401

__all__ = ["checks"]


def checks():
    """Rows of this section: list of refpg.report.Check."""
    return []
