"""Shared test configuration.

Hypothesis profiles: ``ci`` (default) is derandomised (the same examples on
every run, so property tests cannot flake) with a modest example count to
keep the suite within minutes on 2 cores; ``dev`` explores more and at random.
Select with ``HYPOTHESIS_PROFILE=dev``.
"""
import os

# Small dense solves dominate the suite; OpenBLAS threads only contend on 2 cores
# (measured: a 504-state solve 180 ms with 2 threads under load, 15 ms with 1).
# Must be set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "dev", max_examples=200, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
