"""Usage samples for every series at once: NumPy over (series x steps), one formula per group.

A series is one container and resource (and GPU device). Series are grouped by resource and
behaviour and generated in chunks of a few million samples, all series of a chunk in one flat
vector (``sid`` says which series a sample belongs to, ``step`` when), so the cost is a few
dozen vector operations per chunk and never a Python loop over time. Pods that start or end
inside the window simply have shorter series: a sample exists only while the container runs.

Shapes (``load`` is the business-hours factor in [0.15, 1], local time, quieter weekends):
CPU ``level * (1 - amp + amp * load) * noise`` with rare spikes, capped at the CPU limit.
Memory ``steady`` (follows load a little), ``ramp`` (batch: grows over the run), ``growth``
(StatefulSets: a few % of the start level per day), ``leak`` (grows with traffic until the
demand passes the limit: that sample is the limit, an OOM kill, then it starts again from the
base) and ``spiky`` (steady, plus spikes past the limit at given times). Without an OOM a
working set stays below its limit. GPU busy ``train`` (0.8-0.98 with dips), ``infer`` (low,
following load, bursts), ``none`` (0); framebuffer in whole MiB as DCGM reports it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from analyzer.units import MIB

CHUNK_ROWS = 4_000_000
RESOURCE_CODES = {"cpu": 0, "memory": 1, "gpu": 2, "gpu_memory": 3}
MEM_FORMULAS = ("steady", "ramp", "growth", "leak", "spiky")
GPU_FORMULAS = ("train", "infer", "none")
PAGE = 4096


@dataclass
class Clock:
    """Sample times: ``steps`` samples ``step_seconds`` apart from ``start_epoch`` (seconds)."""

    start_epoch: float
    step_seconds: int
    steps: int
    utc_offset_hours: float

    def local_hours(self, step: np.ndarray) -> np.ndarray:
        """Hours since 1970-01-01 00:00 local time."""
        return (self.start_epoch + step.astype(np.float64) * self.step_seconds) / 3600.0 + self.utc_offset_hours


@dataclass
class Params:
    """Per-container behaviour as arrays indexed by container number (see spec.Behaviour)."""

    phase: np.ndarray
    weekend: np.ndarray
    cpu_level: np.ndarray
    cpu_amp: np.ndarray
    cpu_sigma: np.ndarray
    spike_p: np.ndarray
    cpu_limit: np.ndarray  # inf when unset
    mem_level: np.ndarray
    mem_amp: np.ndarray
    mem_rate: np.ndarray
    mem_phase: np.ndarray
    mem_limit: np.ndarray  # inf when unset
    gpu_level: np.ndarray
    gpu_amp: np.ndarray
    gpu_burst_p: np.ndarray
    gpu_mem: np.ndarray
    start: np.ndarray  # pod start, seconds from window start
    end: np.ndarray  # pod end, inf when running at the end
    oom_container: np.ndarray  # spiky OOM times: container number ...
    oom_step: np.ndarray  # ... and the step of the sample that sees it


@dataclass
class Series:
    """One row per series; ``formula`` indexes MEM_FORMULAS / GPU_FORMULAS (0 for CPU)."""

    container: np.ndarray
    resource: np.ndarray
    formula: np.ndarray
    t0: np.ndarray  # first step (inclusive)
    t1: np.ndarray  # last step (exclusive)
    device_memory: np.ndarray  # framebuffer of the series' GPU device, 0 otherwise


class Generator:
    """Yields (series index, step, value) chunks and collects OOM kills (container, step)."""

    def __init__(self, series: Series, params: Params, clock: Clock, rng: np.random.Generator,
                 chunk_rows: int = CHUNK_ROWS):
        self.series, self.p, self.clock, self.rng, self.chunk_rows = series, params, clock, rng, chunk_rows
        # The load curve is tabulated once per (shifted) step: a workload's phase is a whole
        # number of steps, so a sample's load is two table look-ups instead of exp/mod/floor.
        self._shift = np.round(params.phase * 3600.0 / clock.step_seconds).astype(np.int32)
        lo = min(0, int(self._shift.min(initial=0)))
        hi = clock.steps + max(0, int(self._shift.max(initial=0)))
        lh = clock.local_hours(np.arange(lo, hi))
        hour = np.mod(lh, 24.0)
        dow = np.mod(np.floor(lh / 24.0) + 3, 7)  # 1970-01-01 was a Thursday; Monday = 0
        self._bump = (0.85 * np.exp(-0.5 * ((hour - 13.5) / 3.2) ** 2)).astype(np.float32)
        self._weekend_day = (dow >= 5).astype(np.float32)
        self._shift -= lo
        self.oom_container: list[np.ndarray] = []
        self.oom_step: list[np.ndarray] = []

    def _load(self, c: np.ndarray, step: np.ndarray) -> np.ndarray:
        """Business-hours load in [0.15, 1]: a bump around 13:30 local, weekends scaled down."""
        k = step + self._shift[c]
        return 0.15 + self._bump[k] * (1.0 + (self.p.weekend[c] - 1.0).astype(np.float32) * self._weekend_day[k])

    def chunks(self):
        s = self.series
        keep = np.flatnonzero(s.t1 > s.t0)
        order = keep[np.lexsort((keep, s.formula[keep], s.resource[keep]))]
        lengths = (s.t1 - s.t0)[order].astype(np.int64)
        i = 0
        while i < len(order):
            res, form = s.resource[order[i]], s.formula[order[i]]
            j, rows = i, 0
            while j < len(order) and s.resource[order[j]] == res and s.formula[order[j]] == form:
                if rows and rows + lengths[j] > self.chunk_rows:
                    break
                rows += lengths[j]
                j += 1
            ids = order[i:j]
            yield self._chunk(ids, int(res), int(form))
            i = j

    def _chunk(self, ids: np.ndarray, res: int, form: int):
        s, rng = self.series, self.rng
        t0, t1 = s.t0[ids].astype(np.int64), s.t1[ids].astype(np.int64)
        lengths = t1 - t0
        total = int(lengths.sum())
        starts = np.cumsum(lengths) - lengths
        sid = np.repeat(np.arange(len(ids), dtype=np.int32), lengths)
        step = np.arange(total, dtype=np.int32) + (t0 - starts).astype(np.int32)[sid]
        c = s.container[ids].astype(np.int32)[sid]
        fast = rng.standard_normal(total, dtype=np.float32)
        slow = self._slow(t0, t1, sid, step)
        if res == 0:
            value = self._cpu(c, step, fast, slow)
        elif res == 1:
            value = self._memory(MEM_FORMULAS[form], ids, c, sid, step, starts, fast, slow)
        elif res == 2:
            value = self._gpu(GPU_FORMULAS[form], c, step, fast, slow)
        else:
            value = self._gpu_memory(GPU_FORMULAS[form], ids, c, sid, step, fast)
        return ids[sid], step, value

    def _slow(self, t0, t1, sid, step) -> np.ndarray:
        """Hourly random levels per series, linearly interpolated: noise that persists for hours."""
        per_hour = 3600.0 / self.clock.step_seconds
        h_first = np.floor(t0 / per_hour).astype(np.int64)
        width = np.floor((t1 - 1) / per_hour).astype(np.int64) - h_first + 2
        offset = np.cumsum(width) - width
        table = self.rng.standard_normal(int(width.sum()), dtype=np.float32)
        hours = step / per_hour
        h0 = hours.astype(np.int32)
        f = (hours - h0).astype(np.float32)
        flat = (offset - h_first)[sid] + h0
        return table[flat] * (1 - f) + table[flat + 1] * f

    def _cpu(self, c, step, fast, slow) -> np.ndarray:
        p = self.p
        amp, sigma = p.cpu_amp[c], p.cpu_sigma[c]
        shape = 1.0 - amp + amp * self._load(c, step)
        value = p.cpu_level[c] * shape * np.exp(sigma * (0.8 * fast + 0.6 * slow) - 0.5 * sigma * sigma)
        spikes = np.flatnonzero(self.rng.random(len(c), dtype=np.float32) < p.spike_p[c])
        value[spikes] *= self.rng.uniform(1.5, 3.0, len(spikes))
        return np.minimum(value, p.cpu_limit[c])

    def _memory(self, formula, ids, c, sid, step, starts, fast, slow) -> np.ndarray:
        p, clock = self.p, self.clock
        level, limit = p.mem_level[c], p.mem_limit[c]
        oom = None
        if formula == "ramp":
            now = step.astype(np.float64) * clock.step_seconds
            run = np.where(np.isfinite(p.end[c]), p.end[c] - p.start[c], 6 * 3600.0)
            progress = np.clip((now - p.start[c]) / np.maximum(run, 1.0), 0.0, 1.0)
            value = level * (0.35 + 0.65 * np.minimum(1.0, progress / 0.6)) * np.exp(0.03 * fast)
        elif formula == "leak":
            value, oom = self._leak(c, sid, step, starts, level, limit, fast)
        else:
            amp = p.mem_amp[c]
            shape = 1.0 - amp + amp * self._load(c, step)
            value = level * shape * np.exp(0.015 * fast + 0.03 * slow)
            if formula == "growth":
                value *= 1.0 + p.mem_rate[c] * (step.astype(np.float64) * clock.step_seconds / 86400.0)
            elif formula == "spiky":
                near = np.flatnonzero(self.rng.random(len(c), dtype=np.float32) < 0.003)  # close calls
                top = np.where(np.isfinite(limit[near]), limit[near], value[near] * 1.5)
                value[near] = np.maximum(value[near], top * self.rng.uniform(0.85, 0.97, len(near)))
                oom = self._scheduled_ooms(ids, c, step, starts)
        value = np.floor(np.minimum(value, limit * 0.995) / PAGE) * PAGE
        value = np.maximum(value, MIB)
        if oom is not None and len(oom):
            value[oom] = limit[oom]  # the kernel kills at the limit: the last working set is the limit
            self.oom_container.append(c[oom])
            self.oom_step.append(step[oom])
        return value

    def _leak(self, c, sid, step, starts, level, limit, fast):
        """Sawtooth: growth accumulates with traffic; crossing the limit is an OOM and a restart."""
        p, clock = self.p, self.clock
        span = np.maximum(limit - level, MIB)
        per_step = span / (p.mem_rate[c] * 86400.0 / clock.step_seconds)
        inc = per_step * (0.4 + self._load(c, step)) / 0.75
        cum = np.cumsum(inc)
        first = starts[sid]
        grown = cum - (cum[first] - inc[first]) + p.mem_phase[c] * span
        cycle = np.floor(grown / span)
        value = level + (grown - cycle * span) * np.exp(0.01 * fast)
        new_cycle = np.empty(len(c), dtype=bool)
        new_cycle[0] = False
        new_cycle[1:] = cycle[1:] > cycle[:-1]
        new_cycle[first] = False  # a series' first sample has no previous one
        return value, np.flatnonzero(new_cycle)

    def _scheduled_ooms(self, ids, c, step, starts) -> np.ndarray:
        """Rows of this chunk at which a spiky container's scheduled OOM falls."""
        p = self.p
        local = np.full(len(p.mem_level), -1, dtype=np.int64)
        local[self.series.container[ids]] = np.arange(len(ids))
        sel = local[p.oom_container]
        ok = sel >= 0
        sel, at = sel[ok], p.oom_step[ok]
        t0, t1 = self.series.t0[ids][sel], self.series.t1[ids][sel]
        inside = (at >= t0) & (at < t1)
        return np.sort(starts[sel[inside]] + (at[inside] - t0[inside]))

    def _gpu(self, formula, c, step, fast, slow) -> np.ndarray:
        p, rng = self.p, self.rng
        if formula == "none":
            return np.zeros(len(c))
        if formula == "train":
            value = p.gpu_level[c] + 0.025 * fast + 0.02 * slow
            dips = np.flatnonzero(rng.random(len(c), dtype=np.float32) < 0.015)  # eval / checkpoint
            value[dips] *= rng.uniform(0.2, 0.5, len(dips))
            return np.clip(value, 0.0, 0.98)
        amp = p.gpu_amp[c]
        shape = 1.0 - amp + amp * self._load(c, step)
        value = p.gpu_level[c] * shape * np.exp(0.35 * fast - 0.06)
        bursts = np.flatnonzero(rng.random(len(c), dtype=np.float32) < p.gpu_burst_p[c])
        value[bursts] = rng.uniform(0.4, 0.95, len(bursts))
        return np.clip(value, 0.0, 1.0)

    def _gpu_memory(self, formula, ids, c, sid, step, fast) -> np.ndarray:
        p = self.p
        if formula == "none":
            return np.zeros(len(c))
        cap = self.series.device_memory[ids][sid]
        if formula == "train":
            value = p.gpu_mem[c] * (1.0 + 0.01 * fast)
        else:
            load = self._load(c, step)
            value = p.gpu_mem[c] * (1.0 + 0.08 * load) * np.exp(0.01 * fast)
        return np.floor(np.minimum(value, cap) / MIB) * MIB
