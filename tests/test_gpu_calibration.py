"""GPU recommender, issue 21: bad input (gaps, one-hour pods, busy above 100%, framebuffer above the
device) cleaned or skipped with the reason, engine preallocation flagged, calibrated margins, MIG
placement rules, time-slicing pools, GPU facts through `kubetune import`, and the GPU settings."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from analyzer import yamlio
from analyzer.errors import InputError
from analyzer.snapshot import Manifest, Snapshot
from analyzer.units import GIB
from kubetune.cli import main
from recommenders.gpu import KEY, _per_pod, _samples, recommend_gpu
from recommenders.gpu_calibration import calibrate
from recommenders.gpu_packing import pack_mig, pack_shared
from recommenders.gpu_settings import GpuSettings

START = datetime(2026, 11, 2, tzinfo=UTC)
STEP = 600
A100 = "NVIDIA-A100-SXM4-80GB"


def _snap(pods: dict[str, dict], hours: float = 48.0, model: str = A100) -> Snapshot:
    """One bare Pod per entry: ``busy(i)`` and ``fb(i)`` give sample i (None = no sample), ``start_h``
    when it appears, ``hours`` how long it lives."""
    usage, containers, gpus, wls = [], [], [], []
    for name, spec in pods.items():
        busy, fb = spec.get("busy", lambda i: 0.1), spec.get("fb", lambda i: 10 * GIB)
        t0 = START + timedelta(hours=spec.get("start_h", 0.0))
        dev = f"GPU-{name}"
        wls.append({"namespace": "ml", "workload_kind": "Pod", "workload": name, "replicas": 1})
        containers.append({"namespace": "ml", "workload_kind": "Pod", "workload": name, "pod": name, "container": "srv",
                           "container_type": "app", "node": "n1", "gpu_resource": "nvidia.com/gpu", "gpu_request": 1,
                           "gpu_limit": 1})
        gpus.append({"node": "n1", "device": dev, "model": model, "memory_total": 80 * GIB, "namespace": "ml",
                     "pod": name, "container": "srv"})
        for i in range(int(spec.get("hours", hours) * 3600 / STEP)):
            key = (t0 + timedelta(seconds=STEP * i), "ml", "Pod", name, name, "srv")
            for res, fn in (("gpu", busy), ("gpu_memory", fb)):
                v = fn(i)
                if v is not None:
                    usage.append((*key, res, float(v), dev))
    frame = pl.DataFrame(usage, orient="row", schema=["timestamp", "namespace", "workload_kind", "workload", "pod",
                                                      "container", "resource", "value", "device"])
    nodes = pl.DataFrame([{"node": "n1", "capacity_type": "on-demand", "gpu_count": len(pods), "gpu_model": model,
                           "gpu_memory": 80 * GIB, "mig_strategy": "none", "gpu_sharing": "none"}])
    manifest = Manifest(cluster="t", start=START, end=frame["timestamp"].max(), step_seconds=STEP, source="tests")
    return Snapshot.build(manifest, usage=frame, containers=pl.DataFrame(containers), workloads=pl.DataFrame(wls),
                          nodes=nodes, gpus=pl.DataFrame(gpus))


def _by_name(rs):
    return {r.target.workload: r for r in rs.recommendations}, {s.target.workload: s.reason for s in rs.skipped}


def _steady(i: int) -> float:
    return 10 * GIB + (i % 7) * 0.1 * GIB


# --- bad input ---------------------------------------------------------------------------------

def test_gaps_one_hour_pods_and_glitches_are_skipped_with_the_reason():
    snap = _snap({
        "ok": {"fb": _steady},
        "gappy": {"fb": lambda i: None if 100 <= i < 130 else _steady(i),  # a 5 h hole
                  "busy": lambda i: None if 100 <= i < 130 else 0.1},
        "blip": {"hours": 1.0, "start_h": 20.0},
        "hot": {"busy": lambda i: 3.5 if i % 10 == 0 else 0.1},  # 10% of samples above 100%
        "huge": {"fb": lambda i: 120 * GIB if i % 10 == 0 else _steady(i)},  # above the 80 GiB device
    })
    recs, skips = _by_name(recommend_gpu(snap, min_history_hours=12))
    assert set(recs) == {"ok"} and set(skips) == {"gappy", "blip", "hot", "huge"}
    assert "5.2 h gap" in skips["gappy"] and "peak can hide" in skips["gappy"]
    assert "only 1.0 h of GPU history" in skips["blip"]
    assert "29 with busy above 100%" in skips["hot"] and "10.1% of its GPU samples are impossible" in skips["hot"]
    assert "framebuffer above the device" in skips["huge"]


def test_thin_coverage_is_skipped():
    snap = _snap({"thin": {"busy": lambda i: 0.1 if i % 3 == 0 else None}, "ok": {}})
    _, skips = _by_name(recommend_gpu(snap, min_history_hours=12, max_gap_hours=2))
    assert "of its history window has GPU samples" in skips["thin"] and "33%" in skips["thin"]


def test_rare_glitches_are_dropped_not_used():
    snap = _snap({"rare": {"busy": lambda i: 7.0 if i == 50 else 0.1, "fb": lambda i: 500 * GIB if i == 60 else _steady(i)},
                  "clean": {"fb": _steady}})
    recs, skips = _by_name(recommend_gpu(snap, min_history_hours=12))
    assert not skips and set(recs) == {"rare", "clean"}
    obs = recs["rare"].evidence.observed
    assert obs["busy_peak"] <= 1.0 and obs["framebuffer_peak_bytes"] < 11 * GIB
    assert recs["rare"].resource == recs["clean"].resource  # sized as if the glitches were not there
    assert any("1 sample(s) with busy above 100%, 1 with framebuffer above" in n for n in recs["rare"].evidence.notes)


def test_erratic_framebuffer_is_not_sized():
    snap = _snap({"grows": {"fb": lambda i: 10 * GIB if i < 230 else 20 * GIB}, "ok": {"fb": _steady}})
    recs, skips = _by_name(recommend_gpu(snap, min_history_hours=12))
    assert "too erratic" in skips["grows"] and "grew by 100%" in skips["grows"] and "ok" in recs


# --- preallocation -----------------------------------------------------------------------------

def test_preallocated_framebuffer_is_flagged():
    snap = _snap({"vllm": {"fb": lambda i: 72 * GIB}, "vllm-small": {"fb": lambda i: 24 * GIB, "busy": lambda i: 0.2},
                  "pytorch": {"fb": lambda i: 10 * GIB + (i % 50) * 0.2 * GIB}})
    recs, skips = _by_name(recommend_gpu(snap, min_history_hours=12))
    assert "preallocated" in skips["vllm"] and "gpu_memory_utilization" in skips["vllm"] and "90%" in skips["vllm"]
    small = recs["vllm-small"]
    assert small.evidence.observed["preallocated_share"] == pytest.approx(0.3)
    assert any("preallocates" in n and "MIG slice" in n for n in small.evidence.notes)
    assert "preallocated_share" not in recs["pytorch"].evidence.observed
    ts = _by_name(recommend_gpu(snap, min_history_hours=12, sharing="time-slicing"))[0]["vllm-small"]
    note = next(n for n in ts.evidence.notes if "preallocates" in n)
    assert "gpu_memory_utilization=0.47" in note and ts.resource == "nvidia.com/gpu.shared"


# --- calibration -------------------------------------------------------------------------------

def _growth_pods(growths: list[float]) -> Snapshot:
    return _snap({f"p{k}": {"fb": (lambda g: lambda i: 10 * GIB * (1 + g) if i >= 230 else 10 * GIB)(g)}
                  for k, g in enumerate(growths)})


def test_framebuffer_margin_is_the_out_of_sample_growth_quantile():
    growths = [0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.12, 0.15, 0.3]
    snap = _growth_pods(growths)
    per_pod = _per_pod(_samples(snap))
    for risk in (0.0, 0.1, 0.3):
        cal, note = calibrate(per_pod, KEY, GpuSettings(fb_risk=risk, min_fb_margin=0.0), STEP / 3600)
        expected = float(np.quantile(growths, 1 - risk, method="higher"))
        assert note["fb_margin_pooled"] == pytest.approx(expected, abs=1e-9)
        assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(sorted(cal["fb_growth"]), growths, strict=True))
    # a pod that outgrew the pooled margin in its own history keeps its own growth as its margin
    cal, _ = calibrate(per_pod, KEY, GpuSettings(fb_risk=0.3, min_fb_margin=0.0), STEP / 3600)
    row = cal.filter(pl.col("fb_growth") == cal["fb_growth"].max()).row(0, named=True)
    assert row["fb_margin"] == pytest.approx(0.3)


def test_calibrated_margin_sets_the_slice():
    # the held part of every pod grows 12%: a 36 GiB peak then needs more than a 3g.40gb (39.25 GiB)
    snap = _growth_pods([0.12] * 6)
    rs = recommend_gpu(snap, min_history_hours=12, fb_risk=0.0)
    assert not rs.recommendations or all(
        r.evidence.observed["proposed_memory_bytes"] >= r.evidence.observed["framebuffer_peak_bytes"] * 1.12
        for r in rs.recommendations)
    assert all(r.evidence.margin >= 0.12 - 1e-9 for r in rs.recommendations)


def test_busy_level_is_calibrated_within_the_risk():
    rng = np.random.default_rng(4)
    bursts = rng.random(400)
    snap = _snap({f"b{k}": {"busy": (lambda k: lambda i: 0.6 if bursts[(i + k * 37) % 400] < 0.08 else 0.05)(k)}
                  for k in range(6)})
    cal, _ = calibrate(_per_pod(_samples(snap)), KEY, GpuSettings(busy_risk=0.05), STEP / 3600)
    assert (cal["busy_cal_risk"] <= 0.05 + 1e-9).all()
    assert (cal["busy_need"] == 0.6).all()  # 8% of samples burst: below the burst level the risk is too high
    cal, _ = calibrate(_per_pod(_samples(snap)), KEY, GpuSettings(busy_risk=0.2), STEP / 3600)
    assert (cal["busy_need"] == 0.05).all()


# --- packing -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("items", "gpus"), [
    ([(4, 4), (3, 4)], 1), ([(4, 4), (4, 4)], 2), ([(3, 4), (2, 2), (2, 2)], 1), ([(3, 4), (3, 4), (1, 1)], 2),
    ([(2, 2)] * 3 + [(1, 1)], 1), ([(1, 1)] * 7, 1), ([(1, 1)] * 8, 2), ([(1, 2)] * 4, 1), ([(1, 2)] * 5, 2),
    ([(7, 8), (1, 1)], 2), ([(3, 4), (2, 2), (2, 2), (1, 1)], 2),
])
def test_mig_placement_rules(items, gpus):
    packed = pack_mig(items)
    assert len(packed) == gpus
    for gpu in packed:
        assert sum(g for g, _, _ in gpu) <= 7
        slots = [s for _, m, start in gpu for s in range(start, start + m)]
        assert len(slots) == len(set(slots)) and max(slots) < 8


def test_shared_packing_respects_memory_and_compute():
    gpus = pack_shared([(40.0, 0.2), (39.0, 0.2), (30.0, 0.9), (10.0, 0.05)], memory=79.0, compute=1.0)
    assert sorted(map(sorted, gpus)) == [[0, 1], [2, 3]]


def test_time_slicing_pools_pods_whose_peaks_do_not_meet():
    # two pods peak at 46 GiB, but never at once: together they stay at 56 GiB of 80
    snap = _snap({"day": {"fb": lambda i: 46 * GIB if (i // 24) % 2 == 0 else 10 * GIB},
                  "night": {"fb": lambda i: 46 * GIB if (i // 24) % 2 == 1 else 10 * GIB},
                  "twin": {"fb": lambda i: 46 * GIB if (i // 24) % 2 == 0 else 10 * GIB}})
    mig, _ = _by_name(recommend_gpu(snap, min_history_hours=12, margin=0.05))
    assert not mig  # 46 GiB x 1.05 is more than half of the GPU
    recs, _ = _by_name(recommend_gpu(snap, min_history_hours=12, margin=0.05, sharing="time-slicing"))
    assert len(recs) == 2 and "night" in recs  # "twin" peaks with "day": together 92 GiB, only one of them joins
    assert all("pool" in r.evidence.reason and r.resource == "nvidia.com/gpu.shared" for r in recs.values())
    (cm,) = recs["night"].extra_manifests
    assert yamlio.load(cm["data"]["any"])["sharing"]["timeSlicing"]["resources"][0]["replicas"] == 2


def test_mps_config_and_mig_only_mode():
    snap = _snap({"a": {}, "b": {}}, model="NVIDIA-A10G")
    recs, _ = _by_name(recommend_gpu(snap, min_history_hours=12, sharing="mps"))
    (cm,) = recs["a"].extra_manifests
    assert cm["metadata"]["name"].startswith("mps-config-") and "mps" in yamlio.load(cm["data"]["any"])["sharing"]
    _, skips = _by_name(recommend_gpu(snap, min_history_hours=12, sharing="mig"))
    assert "has no MIG" in skips["a"]


# --- settings, CLI, import ---------------------------------------------------------------------

def test_gpu_settings_validate_and_document():
    with pytest.raises(InputError, match="GPU sharing must be one of"):
        GpuSettings(sharing="rdma")
    with pytest.raises(InputError, match="framebuffer risk"):
        GpuSettings(fb_risk=0.7)
    from dataclasses import fields

    for f in fields(GpuSettings):
        assert f.metadata["help"] and f.metadata["unit"], f.name
    assert "min_history_hours" in {f.name for f in fields(GpuSettings)}


def _gpu_usage_csv(path, memory_col="80Gi", with_model=True):
    rows = []
    for i in range(int(30 * 3600 / STEP)):
        t = (START + timedelta(seconds=STEP * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for res, v in (("gpu", 0.1), ("gpu_memory", 10 * GIB), ("cpu", 0.5)):
            dev = "GPU-abc" if res != "cpu" else ""
            row = {"timestamp": t, "namespace": "ml", "workload_kind": "Deployment", "workload": "llm", "pod": "llm-0",
                   "container": "srv", "resource": res, "value": v, "device": dev}
            if with_model:
                row |= {"gpu_model": A100 if dev else "", "gpu_memory_total": memory_col if dev else ""}
            rows.append(row)
    pl.DataFrame(rows).write_csv(path)
    return path


def test_import_gpu_columns_and_gpus_file(tmp_path):
    from analyzer.collectors.files import import_files

    snap = import_files(_gpu_usage_csv(tmp_path / "u.csv"))
    g = snap.gpus.row(0, named=True)
    assert (g["model"], g["memory_total"], g["device"]) == (A100, 80 * GIB, "GPU-abc")
    c = snap.containers.row(0, named=True)
    assert (c["gpu_resource"], c["gpu_limit"]) == ("nvidia.com/gpu", 1)
    rec = recommend_gpu(snap, min_history_hours=12).recommendations[0]
    assert rec.resource.startswith("nvidia.com/mig-") and rec.evidence.observed["device_memory_bytes"] == 80 * GIB
    # the same facts from a --gpus file, through the CLI
    usage = _gpu_usage_csv(tmp_path / "plain.csv", with_model=False)
    (tmp_path / "gpus.csv").write_text(f"device,gpu_model,gpu_memory_total\nGPU-abc,{A100},{80 * GIB}\n")
    assert main(["import", str(usage), "--gpus", str(tmp_path / "gpus.csv"), "--out", str(tmp_path / "snap")]) == 0
    assert main(["recommend", str(tmp_path / "snap"), "--kind", "gpu", "--min-history", "12h", "--format", "json",
                 "--out", str(tmp_path / "r.json"), "--gpu-sharing", "time-slicing"]) == 0
    out = yamlio.load((tmp_path / "r.json").read_text())["items"]  # the versioned envelope
    assert out[0]["resource"] == "nvidia.com/gpu.shared"


def test_import_gpu_columns_bad_input(tmp_path, capsys):
    usage = _gpu_usage_csv(tmp_path / "u.csv", memory_col="lots")
    assert main(["import", str(usage), "--out", str(tmp_path / "s")]) == 2
    assert "gpu_memory_total" in capsys.readouterr().err and not (tmp_path / "s").exists()
    plain = _gpu_usage_csv(tmp_path / "p.csv", with_model=False)
    (tmp_path / "dup.csv").write_text(f"device,gpu_model\nGPU-abc,{A100}\nGPU-abc,{A100}\n")
    assert main(["import", str(plain), "--gpus", str(tmp_path / "dup.csv"), "--out", str(tmp_path / "s")]) == 2
    assert "same device twice" in capsys.readouterr().err
    (tmp_path / "nomodel.csv").write_text("device,colour\nGPU-abc,green\n")
    assert main(["import", str(plain), "--gpus", str(tmp_path / "nomodel.csv"), "--out", str(tmp_path / "s")]) == 2
    assert "gpu_model or gpu_memory_total" in capsys.readouterr().err
    assert main(["recommend", str(tmp_path), "--gpu-sharing", "rdma"]) == 2
