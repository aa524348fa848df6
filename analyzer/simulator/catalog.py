"""Instance types, node pools and node labels the simulator places pods on, per provider.

Types, specs and label keys follow docs/domain-reference.md sections 5-7 (AWS by default:
m5/c5/r5, g5.xlarge with one A10G, p4d.24xlarge with eight A100-SXM4-40GB). Allocatable is
capacity minus the kubelet reservation the provider documents, so packing sees the same
headroom a real scheduler does. Prices are deliberately absent: the cost model resolves them
from its pricing catalog, as it would for a real cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.kube import SPOT_PLATFORMS
from analyzer.units import GIB, MIB


@dataclass(frozen=True)
class GpuModel:
    """One GPU model: GFD product label, DCGM ``modelName``, framebuffer, MIG layouts."""

    product: str  # nvidia.com/gpu.product as GPU Feature Discovery writes it
    model_name: str  # DCGM modelName
    memory_mib: int
    mig_profiles: dict[str, int] = field(default_factory=dict)  # profile -> instances per GPU


A10G = GpuModel("NVIDIA-A10G", "NVIDIA A10G", 22_888)  # 22,888 MiB: domain-reference section 7
A100_40 = GpuModel("NVIDIA-A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB", 40 * 1024,
                   {"1g.5gb": 7, "1g.10gb": 4, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1, "7g.40gb": 1})
A100_80 = GpuModel("NVIDIA-A100-80GB-PCIe", "NVIDIA A100 80GB PCIe", 80 * 1024,
                   {"1g.10gb": 7, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1})
H100_80 = GpuModel("NVIDIA-H100-80GB-HBM3", "NVIDIA H100 80GB HBM3", 80 * 1024,
                   {"1g.10gb": 7, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1})
L4 = GpuModel("NVIDIA-L4", "NVIDIA L4", 24 * 1024)
T4 = GpuModel("Tesla-T4", "Tesla T4", 16 * 1024)


def mig_memory(profile: str) -> int:
    """Framebuffer of a MIG instance from its profile name (``1g.5gb`` -> 5 GiB, nominal)."""
    return int(profile.split(".")[1].removesuffix("gb")) * GIB


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: int
    memory_gib: float
    gpus: int = 0
    gpu: GpuModel | None = None
    max_pods: int = 110


@dataclass(frozen=True)
class Pool:
    """A node pool: which types it launches (weights), capacity type, GPU setup, taints."""

    role: str  # general, spot, memory, gpu-inference, gpu-training, gpu-mig
    name: str  # the provider's pool name (AKS pool names are short alphanumerics)
    types: tuple[tuple[str, float], ...]
    capacity_type: str = "on-demand"
    mig_config: str | None = None  # e.g. all-1g.5gb; the node then runs MIG strategy "mixed"


@dataclass(frozen=True)
class Provider:
    name: str
    region: str
    zones: tuple[str, ...]
    utc_offset_hours: float  # the users' local time (business hours) for the region, no DST
    pool_label: str  # node label naming the pool
    spot_labels: dict[str, str]  # labels a spot node carries (domain-reference section 6)
    capacity_label: str | None  # label carrying on-demand/spot for every node, if any
    spot_taint: tuple[str, str | None, str] | None  # (key, value, effect) on spot nodes
    gpu_taint: tuple[str, str | None, str]
    types: dict[str, InstanceType]
    pools: dict[str, Pool]
    memory_reservation: str  # "eks" or "gke": which kubelet memory reservation rule applies

    def spot_selector(self) -> tuple[str, str]:
        """nodeSelector term that pins a pod to spot nodes."""
        key, value = next(iter(self.spot_labels.items()))
        return key, value

    def toleration_for(self, taint: tuple[str, str | None, str]) -> dict:
        key, value, effect = taint
        if value is None:
            return {"key": key, "operator": "Exists", "value": None, "effect": effect}
        return {"key": key, "operator": "Equal", "value": value, "effect": effect}


def _spot_label(platform: str) -> dict[str, str]:
    """The label a platform puts on its spot nodes (the table is analyzer.kube.SPOT_PLATFORMS)."""
    p = SPOT_PLATFORMS[platform]
    return {p.key: p.value}


def _types(*types: InstanceType) -> dict[str, InstanceType]:
    return {t.name: t for t in types}


PROVIDERS: dict[str, Provider] = {
    "aws": Provider(
        name="aws", region="us-east-1", zones=("us-east-1a", "us-east-1b", "us-east-1c"), utc_offset_hours=-5,
        pool_label="karpenter.sh/nodepool", spot_labels=_spot_label("karpenter"),
        capacity_label="karpenter.sh/capacity-type", spot_taint=None, gpu_taint=("nvidia.com/gpu", None, "NoSchedule"),
        # max pods: the VPC CNI ENI limits (eni-max-pods.txt); p4d.24xlarge 737.
        types=_types(
            InstanceType("m5.xlarge", 4, 16, max_pods=58),
            InstanceType("m5.2xlarge", 8, 32, max_pods=58),
            InstanceType("c5.2xlarge", 8, 16, max_pods=58),
            InstanceType("r5.2xlarge", 8, 64, max_pods=58),
            InstanceType("g5.xlarge", 4, 16, 1, A10G, max_pods=58),
            InstanceType("p4d.24xlarge", 96, 1152, 8, A100_40, max_pods=737),
        ),
        pools={
            "general": Pool("general", "general", (("m5.2xlarge", 0.6), ("m5.xlarge", 0.4))),
            "spot": Pool("spot", "spot", (("c5.2xlarge", 0.4), ("m5.2xlarge", 0.4), ("m5.xlarge", 0.2)), "spot"),
            "memory": Pool("memory", "memory-optimized", (("r5.2xlarge", 1.0),)),
            "gpu-inference": Pool("gpu-inference", "gpu-inference", (("g5.xlarge", 1.0),)),
            "gpu-training": Pool("gpu-training", "gpu-training", (("p4d.24xlarge", 1.0),)),
            "gpu-mig": Pool("gpu-mig", "gpu-mig", (("p4d.24xlarge", 1.0),), mig_config="all-1g.5gb"),
        },
        memory_reservation="eks",
    ),
    "gcp": Provider(
        name="gcp", region="us-central1", zones=("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"),
        utc_offset_hours=-6, pool_label="cloud.google.com/gke-nodepool",
        spot_labels=_spot_label("gke"), capacity_label=None, spot_taint=None,
        gpu_taint=("nvidia.com/gpu", "present", "NoSchedule"),
        types=_types(
            InstanceType("n2-standard-4", 4, 16),
            InstanceType("n2-standard-8", 8, 32),
            InstanceType("e2-standard-8", 8, 32),
            InstanceType("n2-highmem-8", 8, 64),
            InstanceType("g2-standard-4", 4, 16, 1, L4),
            InstanceType("a3-highgpu-8g", 208, 1872, 8, H100_80),
            InstanceType("a2-highgpu-1g", 12, 85, 1, A100_40),
        ),
        pools={
            "general": Pool("general", "general", (("n2-standard-8", 0.6), ("n2-standard-4", 0.4))),
            "spot": Pool("spot", "spot", (("e2-standard-8", 0.6), ("n2-standard-8", 0.4)), "spot"),
            "memory": Pool("memory", "highmem", (("n2-highmem-8", 1.0),)),
            "gpu-inference": Pool("gpu-inference", "gpu-l4", (("g2-standard-4", 1.0),)),
            "gpu-training": Pool("gpu-training", "gpu-h100", (("a3-highgpu-8g", 1.0),)),
            "gpu-mig": Pool("gpu-mig", "gpu-a100-mig", (("a2-highgpu-1g", 1.0),), mig_config="all-1g.5gb"),
        },
        memory_reservation="gke",
    ),
    "azure": Provider(
        name="azure", region="eastus", zones=("eastus-1", "eastus-2", "eastus-3"), utc_offset_hours=-5,
        pool_label="kubernetes.azure.com/agentpool", spot_labels=_spot_label("aks"),
        capacity_label=None, spot_taint=SPOT_PLATFORMS["aks"].taints[0],
        gpu_taint=("sku", "gpu", "NoSchedule"),
        types=_types(
            InstanceType("Standard_D4s_v5", 4, 16),
            InstanceType("Standard_D8s_v5", 8, 32),
            InstanceType("Standard_F8s_v2", 8, 16),
            InstanceType("Standard_E8s_v5", 8, 64),
            InstanceType("Standard_NC4as_T4_v3", 4, 28, 1, T4),
            InstanceType("Standard_NC96ads_A100_v4", 96, 880, 4, A100_80),
            InstanceType("Standard_NC24ads_A100_v4", 24, 220, 1, A100_80),
        ),
        pools={
            "general": Pool("general", "general", (("Standard_D8s_v5", 0.6), ("Standard_D4s_v5", 0.4))),
            "spot": Pool("spot", "spot", (("Standard_F8s_v2", 0.4), ("Standard_D8s_v5", 0.6)), "spot"),
            "memory": Pool("memory", "memory", (("Standard_E8s_v5", 1.0),)),
            "gpu-inference": Pool("gpu-inference", "gpuinfer", (("Standard_NC4as_T4_v3", 1.0),)),
            "gpu-training": Pool("gpu-training", "gputrain", (("Standard_NC96ads_A100_v4", 1.0),)),
            "gpu-mig": Pool("gpu-mig", "gpumig", (("Standard_NC24ads_A100_v4", 1.0),), mig_config="all-1g.10gb"),
        },
        memory_reservation="gke",
    ),
}


def reserved_cpu(vcpu: int) -> float:
    """kube-reserved CPU (EKS, GKE and AKS share it): 6% of core 1, 1% of core 2, 0.5% of
    cores 3-4, 0.25% above 4."""
    tiers = ((1, 0.06), (1, 0.01), (2, 0.005), (float("inf"), 0.0025))
    left, total = float(vcpu), 0.0
    for size, rate in tiers:
        take = min(left, size)
        total += take * rate
        left -= take
        if left <= 0:
            break
    return round(total, 3)


def reserved_memory(itype: InstanceType, rule: str) -> int:
    """kube-reserved memory plus the 100 MiB hard-eviction threshold, in bytes.

    EKS: 255 MiB + 11 MiB per pod the node may run. GKE (and AKS before 1.29): 25% of the
    first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, 2% above 128 GiB.
    """
    eviction = 100 * MIB
    if rule == "eks":
        return (255 + 11 * itype.max_pods) * MIB + eviction
    left, total = itype.memory_gib * GIB, 0.0
    for size, rate in ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (float("inf"), 0.02)):
        take = min(left, size * GIB)
        total += take * rate
        left -= take
        if left <= 0:
            break
    return int(total) + eviction


def allocatable(provider: Provider, itype: InstanceType) -> tuple[float, int]:
    """(cpu cores, memory bytes) allocatable on a node of this type."""
    cpu = round(itype.vcpu - reserved_cpu(itype.vcpu), 3)
    mem = int(itype.memory_gib * GIB) - reserved_memory(itype, provider.memory_reservation)
    return cpu, mem


def mig_slices(pool: Pool, itype: InstanceType) -> tuple[str | None, int]:
    """(MIG profile, instances on the node) for a MIG pool; (None, 0) otherwise."""
    if not pool.mig_config or itype.gpu is None:
        return None, 0
    profile = pool.mig_config.removeprefix("all-")
    return profile, itype.gpus * itype.gpu.mig_profiles[profile]


def mig_resource(provider: Provider) -> str:
    """The extended resource name a pod asks for on the provider's MIG pool (mixed strategy)."""
    return "nvidia.com/mig-" + provider.pools["gpu-mig"].mig_config.removeprefix("all-")


GKE_ACCELERATORS = {"NVIDIA-L4": "nvidia-l4", "NVIDIA-A100-SXM4-40GB": "nvidia-tesla-a100",
                    "NVIDIA-H100-80GB-HBM3": "nvidia-h100-80gb"}


def node_labels(provider: Provider, pool: Pool, itype: InstanceType, name: str, zone: str) -> dict[str, str]:
    """Labels a node of this pool carries: well-known, provider and GPU Feature Discovery ones."""
    labels = {
        "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux", "kubernetes.io/hostname": name,
        "node.kubernetes.io/instance-type": itype.name, "topology.kubernetes.io/region": provider.region,
        "topology.kubernetes.io/zone": zone, provider.pool_label: pool.name,
    }
    if provider.capacity_label:
        labels[provider.capacity_label] = pool.capacity_type
    if pool.capacity_type == "spot":
        labels.update(provider.spot_labels)
    if provider.name == "gcp":
        labels["cloud.google.com/machine-family"] = itype.name.split("-")[0]
        if itype.gpu:
            labels["cloud.google.com/gke-accelerator"] = GKE_ACCELERATORS.get(itype.gpu.product, "nvidia")
    elif provider.name == "azure":
        labels["kubernetes.azure.com/mode"] = "user"
        if itype.gpu:
            labels["kubernetes.azure.com/accelerator"] = "nvidia"
    if itype.gpu:
        labels.update({
            "nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": itype.gpu.product,
            "nvidia.com/gpu.count": str(itype.gpus), "nvidia.com/gpu.memory": str(itype.gpu.memory_mib),
            "nvidia.com/gpu.sharing-strategy": "none",
        })
        if pool.mig_config:
            labels["nvidia.com/mig.config"] = pool.mig_config
            labels["nvidia.com/mig.strategy"] = "mixed"
    return labels


def node_taints(provider: Provider, pool: Pool, itype: InstanceType) -> list[dict]:
    taints = []
    if itype.gpus:
        taints.append(provider.gpu_taint)
    if pool.capacity_type == "spot" and provider.spot_taint:
        taints.append(provider.spot_taint)
    return [{"key": k, "value": v, "effect": e} for k, v, e in taints]
