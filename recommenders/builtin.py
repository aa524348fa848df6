"""The built-in recommenders registered with the contract: rightsize, gpu, spot (in this order).

Each adapter is a few lines: it hands its settings and the shared context to the module that
does the work (``rightsizing``, ``gpu``, ``spot``).
"""

from __future__ import annotations

from analyzer.snapshot import Snapshot
from recommenders.contract import Context, Recommender, Result, register
from recommenders.gpu_settings import GpuSettings
from recommenders.policy import RightsizePolicy
from recommenders.record import RecommendationSet
from recommenders.spot_settings import SpotSettings


def _result(out: RecommendationSet) -> Result:
    return Result(records=out.recommendations, skips=out.skipped, notes=out.notes, cluster_notes=out.cluster_notes)


@register
class Rightsize(Recommender):
    """CPU and memory requests and limits (kinds ``rightsize``, ``raise-memory``)."""

    name = "rightsize"
    Settings = RightsizePolicy
    help_panel = "Right-sizing"

    def run(self, snapshot: Snapshot, ctx: Context) -> Result:
        from recommenders.rightsizing import recommend_rightsizing

        return _result(recommend_rightsizing(snapshot, self.settings, ctx.rates, series=lambda: ctx.series))


@register
class Gpu(Recommender):
    """Remove, reduce or share GPUs (kinds ``gpu-remove``, ``gpu-optimize``, ``gpu-share``)."""

    name = "gpu"
    Settings = GpuSettings
    flag_prefix = "gpu-"
    help_panel = "GPU"

    def run(self, snapshot: Snapshot, ctx: Context) -> Result:
        from recommenders.gpu import recommend_gpu

        return _result(recommend_gpu(snapshot, ctx.rates, self.settings))


@register
class Spot(Recommender):
    """Move spot-ready workloads to spot capacity (kind ``spot``)."""

    name = "spot"
    Settings = SpotSettings
    flag_prefix = "spot-"
    help_panel = "Spot"

    def run(self, snapshot: Snapshot, ctx: Context) -> Result:
        from recommenders.spot import recommend_spot

        return _result(recommend_spot(snapshot, ctx.rates, pricing=ctx.pricing, placement=self.settings.placement))
