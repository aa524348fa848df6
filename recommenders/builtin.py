"""The built-in recommenders registered with the contract: rightsize, gpu, spot (in this order).

Each adapter hands its settings and the shared context to the module that does the work
(``rightsizing``, ``gpu``, ``spot``); right-sizing is imported when run, since it loads the
forecaster (scikit-learn), which ``kubetune --help`` should not pay for.
"""

from __future__ import annotations

from analyzer.snapshot import Snapshot
from recommenders.contract import Context, Recommender, Result, register
from recommenders.gpu import recommend_gpu
from recommenders.gpu_settings import GpuSettings
from recommenders.policy import RightsizePolicy
from recommenders.spot import recommend_spot
from recommenders.spot_settings import SpotSettings


@register
class Rightsize(Recommender):
    """CPU and memory requests and limits (kinds ``rightsize``, ``raise-memory``)."""

    name, Settings, help_panel = "rightsize", RightsizePolicy, "Right-sizing"

    def run(self, snapshot: Snapshot, ctx: Context) -> Result:
        from recommenders.rightsizing import recommend_rightsizing

        return Result.of(recommend_rightsizing(snapshot, self.settings, ctx.rates, series=lambda: ctx.series))


@register
class Gpu(Recommender):
    """Remove, reduce or share GPUs (kinds ``gpu-remove``, ``gpu-optimize``, ``gpu-share``)."""

    name, Settings, flag_prefix, help_panel = "gpu", GpuSettings, "gpu-", "GPU"

    def run(self, snapshot: Snapshot, ctx: Context) -> Result:
        return Result.of(recommend_gpu(snapshot, ctx.rates, self.settings))


@register
class Spot(Recommender):
    """Move spot-ready workloads to spot capacity (kind ``spot``), priced with the run's price book."""

    name, Settings, flag_prefix, help_panel = "spot", SpotSettings, "spot-", "Spot"

    def run(self, snapshot: Snapshot, ctx: Context) -> Result:
        placement = self.settings.placement
        return Result.of(recommend_spot(snapshot, ctx.rates, pricing=ctx.pricing, placement=placement))
