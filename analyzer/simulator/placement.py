"""Pods onto nodes: first-fit decreasing on requests within allocatable, opening nodes as needed.

A placement unit is a set of pods that never run at the same time (a replica before and after
a rollout, every run of one CronJob), so packing units keeps every node within allocatable at
every instant. Each pool packs its own units; DaemonSet requests are reserved on every node
first, as the scheduler would see them. GPU units also need free devices (or MIG slices),
which they are given in order; the ``gpus`` frame comes from the same assignment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analyzer.simulator.catalog import InstanceType, Pool, Provider, allocatable, mig_memory, mig_slices
from analyzer.simulator.names import Namer
from analyzer.simulator.spec import Pod, Workload
from analyzer.units import MIB


@dataclass
class Device:
    """One GPU or MIG instance as DCGM reports it."""

    device: str  # UUID, or UUID/GPU_I_ID for a MIG instance
    gpu_index: int
    model: str
    mig_profile: str | None
    memory_total: int
    pod: Pod | None = None  # the pod assigned to it at the end of the window (or last)


@dataclass
class Node:
    name: str
    pool: Pool
    itype: InstanceType
    zone: str
    cpu_alloc: float
    mem_alloc: int
    free_cpu: float
    free_mem: int
    free_pods: int
    devices: list[Device] = field(default_factory=list)
    free_devices: list[int] = field(default_factory=list)
    workloads: set[int] = field(default_factory=set)


@dataclass
class _Unit:
    workload: int
    pods: list[Pod]
    cpu: float
    mem: int
    gpu: int


def _reserve(daemons: list[Workload], gpu_node: bool) -> tuple[float, int, int]:
    """DaemonSet requests a node of this kind must hold before anything else."""
    cpu, mem, pods = 0.0, 0, 0
    for d in daemons:
        if d.daemon_gpu_only and not gpu_node:
            continue
        probe = Pod("", "DaemonSet", d.name, 0.0, None, d.daemon_template or [], -1)
        c, m, _ = probe.requests()
        cpu, mem, pods = cpu + c, mem + m, pods + 1
    return cpu, mem, pods


class Packer:
    """First-fit decreasing over the pools of one provider."""

    def __init__(self, provider: Provider, rng: np.random.Generator, namer: Namer, cluster: str,
                 daemons: list[Workload]):
        self.provider, self.rng, self.namer, self.cluster = provider, rng, namer, cluster
        self.daemons = daemons
        self.nodes: list[Node] = []

    def _new_node(self, pool: Pool, unit: _Unit) -> Node:
        names = [t for t, _ in pool.types]
        weights = np.array([w for _, w in pool.types], dtype=float)
        first = names[int(self.rng.choice(len(names), p=weights / weights.sum()))]
        # The drawn type if the unit fits on it, else the roomiest type of the pool.
        by_size = [first] + sorted((n for n in names if n != first),
                                   key=lambda n: -self.provider.types[n].vcpu * self.provider.types[n].memory_gib)
        for tname in by_size:
            node = self._make(pool, self.provider.types[tname])
            if self._fits(node, unit):
                self.nodes.append(node)
                return node
        raise ValueError(f"a pod of {unit.cpu} cores, {unit.mem} bytes, {unit.gpu} GPUs fits no node type "
                         f"of pool {pool.name}")

    def _make(self, pool: Pool, itype: InstanceType) -> Node:
        cpu, mem = allocatable(self.provider, itype)
        gpu_node = itype.gpus > 0
        r_cpu, r_mem, r_pods = _reserve(self.daemons, gpu_node)
        name = self.namer.node(self.provider.name, self.cluster, pool.name)
        zone = self.provider.zones[int(self.rng.integers(0, len(self.provider.zones)))]
        node = Node(name, pool, itype, zone, cpu, mem, cpu - r_cpu, mem - r_mem, itype.max_pods - r_pods)
        if gpu_node:
            profile, slices = mig_slices(pool, itype)
            for g in range(itype.gpus):
                uuid = self.namer.gpu_uuid()
                if profile:
                    per_gpu = slices // itype.gpus
                    for k in range(per_gpu):
                        # GPU instance ids of a GPU fully split into 1g profiles start after the 7g..2g ids.
                        node.devices.append(Device(f"{uuid}/{7 + k}", g, itype.gpu.model_name, profile,
                                                   mig_memory(profile)))
                else:
                    node.devices.append(Device(uuid, g, itype.gpu.model_name, None, itype.gpu.memory_mib * MIB))
            node.free_devices = list(range(len(node.devices)))
        return node

    @staticmethod
    def _fits(node: Node, unit: _Unit) -> bool:
        return (unit.cpu <= node.free_cpu + 1e-9 and unit.mem <= node.free_mem and node.free_pods >= 1
                and unit.gpu <= len(node.free_devices))

    def _take(self, node: Node, unit: _Unit) -> None:
        node.free_cpu -= unit.cpu
        node.free_mem -= unit.mem
        node.free_pods -= 1
        node.workloads.add(unit.workload)
        devices = [node.devices[i] for i in node.free_devices[: unit.gpu]]
        node.free_devices = node.free_devices[unit.gpu:]
        last = max(unit.pods, key=lambda p: (p.end is None, p.end or 0.0, p.start))
        for d in devices:
            d.pod = last
        for pod in unit.pods:
            pod.node = node.name
            pod.devices = [d.device for d in devices]

    def place(self, workloads: list[Workload]) -> list[Node]:
        units: dict[int, _Unit] = {}
        for wi, w in enumerate(workloads):
            for pod in w.pods:
                cpu, mem, gpu = pod.requests()
                u = units.get(pod.unit)
                if u is None:
                    units[pod.unit] = _Unit(wi, [pod], cpu, mem, gpu)
                else:
                    u.pods.append(pod)
                    u.cpu, u.mem, u.gpu = max(u.cpu, cpu), max(u.mem, mem), max(u.gpu, gpu)
        for role, pool in self.provider.pools.items():
            mine = [(k, u) for k, u in units.items() if workloads[u.workload].pool == role]
            big = max((self.provider.types[t] for t, _ in pool.types), key=lambda t: t.vcpu)
            ref_cpu, ref_mem = allocatable(self.provider, big)
            # Decreasing size; the unit id breaks ties so the order is fixed.
            mine.sort(key=lambda ku: (-ku[1].gpu, -(ku[1].cpu / ref_cpu + ku[1].mem / ref_mem), ku[0]))
            pool_nodes: list[Node] = []
            for _, unit in mine:
                spread = workloads[unit.workload].spread
                node = None
                if spread:
                    node = next((n for n in pool_nodes if unit.workload not in n.workloads and self._fits(n, unit)),
                                None)
                if node is None:
                    node = next((n for n in pool_nodes if self._fits(n, unit)), None)
                if node is None:
                    node = self._new_node(pool, unit)
                    pool_nodes.append(node)
                self._take(node, unit)
        return self.nodes
