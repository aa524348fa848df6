"""How many physical GPUs a set of GPU containers needs: MIG slices with their placement rules,
time-sliced replicas, and shared GPUs packed by memory and busy.

MIG placement (NVIDIA MIG user guide, ``nvidia-smi mig -lgipp`` on A100/H100/H200: 8 memory slices,
7 compute slices): a GPU instance occupies a run of memory slices that must start at one of its
profile's allowed offsets, and the compute slices of all instances on a GPU add up to at most 7.

=========================  ==============  ===================
profile shape              memory slices   allowed starts
=========================  ==============  ===================
1g (smallest)              1               0, 1, 2, 3, 4, 5, 6
1g with 2 memory slices    2               0, 2, 4, 6
2g                         2               0, 2, 4
3g                         4               0, 4
4g                         4               0
7g                         8               0
=========================  ==============  ===================

So 4g + 3g fit one GPU, 3g + 3g too, but 4g + 4g, or 3g + 2g + 2g + 1g (8 compute), do not.
Packing is first-fit decreasing, each instance at its highest free allowed offset (the low offsets
are the only ones the big profiles may use): good, not optimal, and the same rule for every side
of a comparison.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from recommenders.mig import COMPUTE_SLICES, MEMORY_SLICES, profile

STARTS: dict[tuple[int, int], tuple[int, ...]] = {
    (1, 1): (0, 1, 2, 3, 4, 5, 6), (1, 2): (0, 2, 4, 6), (2, 2): (0, 2, 4), (3, 4): (0, 4), (4, 4): (0,), (7, 8): (0,),
}


def _starts(g: int, mem: int) -> tuple[int, ...]:
    if (g, mem) in STARTS:
        return STARTS[(g, mem)]
    return tuple(range(0, MEMORY_SLICES - mem + 1, mem))  # unknown shape: aligned runs (conservative)


def pack_mig(items: Iterable[tuple[int, int]]) -> list[list[tuple[int, int, int]]]:
    """First-fit decreasing of MIG instances (compute slices, memory slices) onto GPUs with the
    placement rules above; returns the GPUs, each a list of (compute, memory, start)."""
    gpus: list[list[tuple[int, int, int]]] = []
    for g, mem in sorted(items, key=lambda i: (-i[1], -i[0])):
        for gpu in gpus:
            start = _place(gpu, g, mem)
            if start is not None:
                gpu.append((g, mem, start))
                break
        else:
            gpus.append([(g, mem, _starts(g, mem)[-1])])
    return gpus


def _place(gpu: list[tuple[int, int, int]], g: int, mem: int) -> int | None:
    if sum(i[0] for i in gpu) + g > COMPUTE_SLICES:
        return None
    used = {s for _, m, start in gpu for s in range(start, start + m)}
    return next((st for st in reversed(_starts(g, mem)) if not used & set(range(st, st + mem))), None)


def pack_shared(items: Sequence[tuple[float, float]], memory: float, compute: float = 1.0) -> list[list[int]]:
    """First-fit decreasing of pods (framebuffer bytes, busy fraction) onto whole GPUs shared by
    time-slicing/MPS: on each GPU the framebuffers add up to at most ``memory`` and the busy
    fractions to at most ``compute``. Returns the GPUs as lists of item indices."""
    gpus: list[list[int]] = []
    load: list[list[float]] = []
    for i in sorted(range(len(items)), key=lambda i: (-items[i][0], -items[i][1])):
        fb, busy = items[i]
        for gpu, lo in zip(gpus, load, strict=True):
            if lo[0] + fb <= memory and lo[1] + busy <= compute + 1e-12:
                gpu.append(i)
                lo[0] += fb
                lo[1] += busy
                break
        else:
            gpus.append([i])
            load.append([fb, busy])
    return gpus


# --- the recommender's fleet note ----------------------------------------------------------------

def packing_note(rows: Iterable[dict[str, Any]], gpus_in_cluster: int) -> dict[str, Any]:
    """GPUs the GPU containers need now and after the proposals (rows of the GPU recommender's
    decision frame), per GPU model; the difference is what the cluster could release."""
    now: dict[str, list] = {"whole": [0], "mig": [], "ts": []}
    after: dict[str, list] = {"whole": [0], "mig": [], "ts": []}
    profiles: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    requested = 0.0
    for r in rows:
        n = int(r["replicas"] or 0)
        k = int(r["devices"] or 0)
        requested += float(r["current_units"] or 0.0) * n
        cur = _items(r, k, r["current_profile"] if r["on_mig"] else None, r["node_replicas"] if r["shared"] else None)
        _add(now, cur, n)
        act = r.get("action", "keep")
        if act == "remove":
            new: tuple = ("whole", 0)
        elif act == "optimize":
            new = ("whole", int(r["proposed_count"]))
        elif act == "share-mig":
            new = _items(r, 1, r["profile"], None)
            profiles[f"mig-{r['profile']}"] += n
        elif act == "share-ts":
            new = _items(r, 1, None, int(r["ts_replicas"]))
            profiles[f"{r.get('ts_mode') or 'time-slicing'} x{r['ts_replicas']}"] += n
        else:
            new = cur
        if act in ("remove", "optimize", "share-mig", "share-ts"):
            kinds["gpu-share" if act.startswith("share") else f"gpu-{act}"] += 1
        _add(after, new, n)
    needed_now, needed_after = _count(now), _count(after)
    return {
        "gpus_requested_now": round(requested, 3),
        "gpus_needed_now": needed_now,
        "gpus_needed_after": needed_after,
        "gpus_released": needed_now - needed_after,
        "gpus_in_cluster": gpus_in_cluster,
        "proposals": dict(kinds),
        "profiles": dict(profiles),
        "method": ("MIG instances first-fit decreasing per GPU model with the MIG placement rules (memory-slice "
                   "offsets, 7 compute slices), time-sliced pods ceil(pods / replicas) per model, whole GPUs as "
                   "requested; node boundaries are ignored, so the release is an upper estimate."),
    }


def _items(r: dict[str, Any], k: int, mig_profile: str | None, ts_replicas: int | None) -> tuple:
    model = r["family"] or r["model"] or "unknown"
    if mig_profile:
        p = profile(r["family"], mig_profile)
        if p is not None:
            return ("mig", model, p.compute_slices, p.memory_slices, k)
        g = int(mig_profile.split("g")[0]) if mig_profile[:1].isdigit() else COMPUTE_SLICES
        return ("mig", model, g, min(MEMORY_SLICES, g + 1), k)  # unknown layout: a conservative guess for packing only
    if ts_replicas and ts_replicas > 1:
        return ("ts", model, int(ts_replicas), k)
    return ("whole", k)


def _add(acc: dict[str, list], item: tuple, n: int) -> None:
    if item[0] == "whole":
        acc["whole"].append(item[1] * n)
    elif item[0] == "mig":
        acc["mig"] += [item[1:4]] * (item[4] * n)
    else:
        acc["ts"] += [item[1:3]] * (item[3] * n)


def _count(acc: dict[str, list]) -> int:
    total = sum(acc["whole"])
    for model in {m for m, *_ in acc["mig"]}:
        total += len(pack_mig((g, mem) for m, g, mem in acc["mig"] if m == model))
    for key, count in Counter(acc["ts"]).items():
        total += math.ceil(count / key[1])
    return int(total)
