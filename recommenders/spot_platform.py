"""Which spot label a cluster uses (Karpenter, EKS, GKE, AKS, self-managed), and what an interruption risks.

The label table itself is ``analyzer.kube.SPOT_PLATFORMS``; this module picks the platform a
snapshot's nodes show and carries the providers' published interruption terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from analyzer.kube import SpotPlatform as Platform
from analyzer.kube import SPOT_PLATFORMS


# docs/domain-reference.md section 6 (the table lives in analyzer.kube); order = preference.
PLATFORMS: dict[str, Platform] = SPOT_PLATFORMS


DEFAULT_PLATFORM = {"aws": "karpenter", "gcp": "gke", "azure": "aks"}


# (risk, words): the risk figure is a monthly interruption probability per node, the only published
# one being AWS's Spot Instance Advisor global rate "<10%" (domain-reference section 6).
INTERRUPTION: dict[str, tuple[float, str]] = {
    "aws": (0.10, ("AWS Spot: 2-minute interruption notice; the Spot Instance Advisor's global interruption "
                  "frequency is <10% a month (by instance type from <5% to >20%): spread over several types")),
    "gcp": (0.10, ("GKE Spot VMs: 30-second notice and no published interruption rate (risk figure assumed "
                  "like AWS's global <10% a month)")),
    "azure": (0.10, ("Azure Spot: eviction with about 30 s notice when Azure needs the capacity or the price "
                    "cap is hit; no published rate (risk figure assumed like AWS's global <10% a month)")),
}


UNKNOWN_INTERRUPTION = (0.10, ("spot capacity can be reclaimed at short notice; no published rate for this "
                              "platform (risk figure assumed like AWS's global <10% a month)"))


@dataclass(frozen=True)
class Detected:
    """The spot label the cluster uses, where it came from, and how many spot nodes there are."""

    platform: Platform
    provider: str
    value: str
    taints: tuple[tuple[str, str | None, str], ...]
    spot_nodes: int
    how: str


def detect_platform(nodes: pl.DataFrame) -> Detected:
    """Which spot label the cluster actually uses: the one its spot nodes carry, else a label every
    node carries (Karpenter, EKS), else the provider's default (``nodes.provider``)."""
    providers = (nodes.select(pl.col("provider").cast(pl.String)).drop_nulls()
                 .filter(~pl.col("provider").is_in(["unknown", "on-prem", ""]))["provider"]) if nodes.height else None
    provider = str(providers.mode().sort()[0]) if providers is not None and providers.len() else "unknown"
    if nodes.is_empty():
        p = PLATFORMS["karpenter"]
        return Detected(p, provider, p.value, p.taints, 0,
                        "the snapshot has no nodes: assumed Karpenter's label; use your platform's if it differs")
    labels = (nodes.select(pl.col("node").cast(pl.String), pl.col("capacity_type").cast(pl.String),
                           pl.col("gpu_count").fill_null(0), "labels", "taints")
              .explode("labels").drop_nulls("labels").unnest("labels"))
    spot = labels.filter(pl.col("capacity_type") == "spot")
    n_spot = int(nodes.filter(pl.col("capacity_type").cast(pl.String) == "spot").height)
    best: tuple[int, str] | None = None
    for name, p in PLATFORMS.items():
        count = spot.filter((pl.col("key") == p.key) & (pl.col("value").str.to_lowercase() == p.value.lower())).height
        if count and (best is None or count > best[0]):
            best = (count, name)
    if best is not None:
        p = PLATFORMS[best[1]]
        hits = spot.filter((pl.col("key") == p.key) & (pl.col("value").str.to_lowercase() == p.value.lower()))
        value = str(hits["value"].mode().sort()[0])
        taints = _observed_taints(nodes, set(hits["node"].to_list()))
        taints = tuple(dict.fromkeys(p.taints + taints))
        prov = provider if provider != "unknown" else p.provider
        return Detected(p, prov, value, taints, n_spot,
                        f"{best[0]} spot node(s) carry {p.key}={value} ({p.name})")
    keys = set(labels["key"].unique().to_list())
    for name in ("karpenter", "eks"):  # these label every node, spot or not
        p = PLATFORMS[name]
        if p.key in keys:
            prov = provider if provider != "unknown" else p.provider
            return Detected(p, prov, p.value, p.taints, n_spot,
                            f"no spot nodes yet; the nodes carry {p.key} ({p.name})")
    if provider == "aws" and "eks.amazonaws.com/nodegroup" in keys:
        p = PLATFORMS["eks"]
    else:
        p = PLATFORMS[DEFAULT_PLATFORM.get(provider, "karpenter")]
    start = (f"{n_spot} spot node(s) but none carries a known spot label" if n_spot else "no spot nodes")
    how = (f"{start}; {p.name}'s label is the default for provider {provider}" if provider in DEFAULT_PLATFORM
           else f"{start} and no known provider: assumed Karpenter's label; use your platform's if it differs")
    return Detected(p, provider, p.value, p.taints, n_spot, how)


def _observed_taints(nodes: pl.DataFrame, spot_nodes: set[str]) -> tuple[tuple[str, str | None, str], ...]:
    """Scheduling taints every non-GPU spot node carries (GPU taints belong to the GPU pools)."""
    rows = nodes.filter(pl.col("node").cast(pl.String).is_in(list(spot_nodes)) & (pl.col("gpu_count").fill_null(0) == 0))
    common: set[tuple[str, str | None, str]] | None = None
    for taints in rows["taints"].to_list():
        found = {(t["key"], t.get("value"), t["effect"]) for t in taints or []
                 if t.get("key") and t.get("effect") in ("NoSchedule", "NoExecute")}
        common = found if common is None else common & found
    return tuple(sorted(common or (), key=lambda t: (t[0], t[1] or "", t[2])))
