"""Collection and analysis: the Snapshot contract, collectors, simulator and cost model."""

from analyzer.snapshot import Manifest, Snapshot, load_snapshot

__all__ = ["Manifest", "Snapshot", "load_snapshot"]
