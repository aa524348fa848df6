"""A synthetic Kubernetes cluster as a Snapshot: ground truth for tests, demos and benchmarks.

``simulate()`` builds a deterministic cluster from a seed: a documented mix of workload
archetypes (``archetypes.ARCHETYPES``), pods packed onto real instance types
(``catalog.PROVIDERS``) and vectorised usage samples (``signals``).
"""

from analyzer.simulator.archetypes import ARCHETYPE_ANNOTATION, ARCHETYPES, archetype_counts
from analyzer.simulator.generate import DEFAULT_START, simulate

__all__ = ["ARCHETYPES", "ARCHETYPE_ANNOTATION", "DEFAULT_START", "archetype_counts", "simulate"]
