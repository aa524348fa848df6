"""MIG profiles and GPU families as data, so the GPU recommender never guesses a slice.

Source: docs/domain-reference.md section 5 (NVIDIA/mig-parted ``deployments/systemd/config-default.yaml``
and the NVIDIA MIG user guide, "Supported MIG Profiles"): a MIG-capable GPU has 7 compute and 8
memory slices; the counts below are the most instances of one profile that fit on one GPU. The
H100 NVL and H200 rows follow the same 1g/1g-2x/2g/3g/4g/7g layout between the end points the
reference gives (1g.12gb ... 7g.94gb, 1g.18gb ... 7g.141gb). ``+me`` variants are left out (x1 only).

Profile names round memory up (an A100-80GB ``1g.10gb`` offers 9.5 GiB), so fitting uses the memory
``nvidia-smi mig -lgip`` reports where it is known (``MEASURED_GIB``: A100-80GB and H100-80GB, read in
published -lgip listings) and ``USABLE_FRACTION`` of the nominal size elsewhere: a proposal must hold
the peak framebuffer on real hardware. (The 0.9 rule alone put an A100-80GB 3g.40gb at 36 GiB where
the hardware offers 39.25 GiB: issue 21 found that this alone kept most of the GenTD26 pods whole.)
A family missing here (A30, GH200, ...) is unknown on purpose: the recommender skips it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl
from analyzer.units import GIB

COMPUTE_SLICES = 7
MEMORY_SLICES = 8
USABLE_FRACTION = 0.9  # of the nominal "<n>gb" in the profile name, in GiB


@dataclass(frozen=True)
class MigProfile:
    """One MIG profile of one GPU family."""

    family: str
    name: str  # e.g. "1g.10gb"
    compute_slices: int  # g of 7
    memory_gb: int  # nominal, as in the name
    memory_slices: int  # of 8
    max_per_gpu: int

    @property
    def resource(self) -> str:
        """Extended resource name with MIG strategy ``mixed`` (k8s-device-plugin README)."""
        return f"nvidia.com/mig-{self.name}"

    @property
    def usable_bytes(self) -> int:
        measured = MEASURED_GIB.get(self.family, {}).get(self.name)
        return int(measured * GIB) if measured else int(self.memory_gb * GIB * USABLE_FRACTION)

    @property
    def compute_fraction(self) -> float:
        return self.compute_slices / COMPUTE_SLICES


def _family(family: str, rows: list[tuple[str, int, int, int, int]]) -> tuple[MigProfile, ...]:
    return tuple(MigProfile(family, *r) for r in rows)


_80GB = [("1g.10gb", 1, 10, 1, 7), ("1g.20gb", 1, 20, 2, 4), ("2g.20gb", 2, 20, 2, 3),
         ("3g.40gb", 3, 40, 4, 2), ("4g.40gb", 4, 40, 4, 1), ("7g.80gb", 7, 80, 8, 1)]

# GPU instance memory as ``nvidia-smi mig -lgip`` lists it (GiB), where a listing was read.
MEASURED_GIB: dict[str, dict[str, float]] = {
    "A100-80GB": {"1g.10gb": 9.5, "1g.20gb": 19.5, "2g.20gb": 19.5, "3g.40gb": 39.25, "4g.40gb": 39.25, "7g.80gb": 79.0},
    "H100-80GB": {"1g.10gb": 9.75, "1g.20gb": 19.62, "2g.20gb": 19.62, "3g.40gb": 39.5, "4g.40gb": 39.5,
                  "7g.80gb": 79.25},
}

MIG_PROFILES: dict[str, tuple[MigProfile, ...]] = {
    "A100-40GB": _family("A100-40GB", [
        ("1g.5gb", 1, 5, 1, 7), ("1g.10gb", 1, 10, 2, 4), ("2g.10gb", 2, 10, 2, 3),
        ("3g.20gb", 3, 20, 4, 2), ("4g.20gb", 4, 20, 4, 1), ("7g.40gb", 7, 40, 8, 1)]),
    "A100-80GB": _family("A100-80GB", _80GB),
    "H100-80GB": _family("H100-80GB", _80GB),
    "H100-NVL": _family("H100-NVL", [
        ("1g.12gb", 1, 12, 1, 7), ("1g.24gb", 1, 24, 2, 4), ("2g.24gb", 2, 24, 2, 3),
        ("3g.47gb", 3, 47, 4, 2), ("4g.47gb", 4, 47, 4, 1), ("7g.94gb", 7, 94, 8, 1)]),
    "H200-141GB": _family("H200-141GB", [
        ("1g.18gb", 1, 18, 1, 7), ("1g.35gb", 1, 35, 2, 4), ("2g.35gb", 2, 35, 2, 3),
        ("3g.71gb", 3, 71, 4, 2), ("4g.71gb", 4, 71, 4, 1), ("7g.141gb", 7, 141, 8, 1)]),
}

# Known families without MIG: they can share a GPU only by time-slicing or MPS.
NO_MIG_FAMILIES = ("A10G", "A10", "T4", "L4", "L40S", "L40", "V100")
FAMILIES = (*MIG_PROFILES, *NO_MIG_FAMILIES)


def normalise_gpu_model(product: str | None) -> str | None:
    """GFD ``nvidia.com/gpu.product`` or DCGM ``modelName`` -> a family in ``FAMILIES``, else None.

    Accepts "NVIDIA-A100-SXM4-40GB", "A100-SXM4-80GB", "NVIDIA A100 80GB PCIe",
    "NVIDIA-H100-80GB-HBM3", "Tesla-T4", single-strategy "...-MIG-1g.5gb" and "...-SHARED" names.
    """
    if not product:
        return None
    p = re.sub(r"[\s_]+", "-", product.strip().upper())
    p = re.sub(r"-MIG-.*$", "", p).removesuffix("-SHARED")
    p = re.sub(r"^(NVIDIA|TESLA)-", "", p)
    tokens = set(p.split("-"))
    head = p.split("-")[0]
    if head == "A100":
        return "A100-80GB" if "80GB" in tokens else "A100-40GB" if "40GB" in tokens else None
    if head == "H100":
        if "NVL" in tokens or "94GB" in tokens:
            return "H100-NVL"
        if "80GB" in tokens or (tokens & {"PCIE", "SXM5"} and not tokens & {"96GB", "64GB"}):
            return "H100-80GB"
        return None
    if head == "H200":
        return "H200-141GB" if not tokens & {"96GB"} else None
    if head in NO_MIG_FAMILIES:
        return head
    return None


def supports_mig(family: str | None) -> bool:
    """Whether kubetune can propose a MIG profile for the family (it is in the table)."""
    return family in MIG_PROFILES


def smallest_profile(family: str | None, memory_bytes: float, compute_fraction: float) -> MigProfile | None:
    """Smallest profile (fewest compute slices, then least memory) whose usable framebuffer holds
    ``memory_bytes`` and whose g/7 holds ``compute_fraction``; the caller adds its margin first.
    None when the family has no MIG table or nothing fits (more than the whole GPU)."""
    fits = [p for p in MIG_PROFILES.get(family or "", ())
            if p.usable_bytes >= memory_bytes and p.compute_fraction >= compute_fraction - 1e-12]
    return min(fits, key=lambda p: (p.compute_slices, p.memory_gb), default=None)


def profiles_frame() -> pl.DataFrame:
    """The table as a frame, for vectorised joins (same rule as ``smallest_profile``)."""
    rows = [{"family": p.family, "profile": p.name, "compute_slices": p.compute_slices, "memory_gb": p.memory_gb,
             "memory_slices": p.memory_slices, "max_per_gpu": p.max_per_gpu, "usable_bytes": p.usable_bytes}
            for ps in MIG_PROFILES.values() for p in ps]
    return pl.DataFrame(rows, schema={"family": pl.String, "profile": pl.String, "compute_slices": pl.Int64,
                                      "memory_gb": pl.Int64, "memory_slices": pl.Int64, "max_per_gpu": pl.Int64,
                                      "usable_bytes": pl.Int64})


def profile(family: str | None, name: str) -> MigProfile | None:
    """Look a profile up by family and name ("1g.10gb"); None if unknown."""
    return next((p for p in MIG_PROFILES.get(family or "", ()) if p.name == name), None)
