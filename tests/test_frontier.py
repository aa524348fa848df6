"""benchmarks/frontier.py: its replay metrics, checked by hand on tiny arrays (issue 14)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


def _frontier():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "frontier.py"
    spec = importlib.util.spec_from_file_location("frontier_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_metrics_count_episodes_shortfall_and_allocation_by_hand():
    f = _frontier()
    gib = 2**30
    cpu = np.array([[1.0, 3.0, np.nan, 1.0]])
    mem = np.array([[1.0, 3.0, 3.0, 1.0, 3.0]]) * gib
    m = f.metrics([2.0], [2.0 * gib], [2.5 * gib], cpu, mem)
    h = 300 / 3600
    assert m["cpu_core_h"] == pytest.approx((2 + 3 + 2) * h)  # max(request, use), NaN skipped
    assert m["cpu_shortfall"] == pytest.approx(1 / 5)  # (3 - 2) over 1 + 3 + 1
    assert m["cpu_share_above"] == pytest.approx(1 / 3)
    assert m["memory_gib_h"] == pytest.approx((2 + 3 + 3 + 2 + 3) * h)
    assert m["memory_above_request"] == pytest.approx(3 / 11)
    assert m["memory_above_request_below_limit"] == pytest.approx(1.5 / 11)
    assert m["oom_episodes"] == 2 and m["oom_cases"] == 1  # runs [3, 3] and [3]
    assert m["cost_usd"] == pytest.approx(m["cpu_core_h"] * 0.0316 + m["memory_gib_h"] * 0.00424)


def test_flat_rules_krr_matches_its_definition():
    f = _frontier()
    rng = np.random.default_rng(1)
    cpu = rng.uniform(0, 1, (3, 500))
    mem = rng.uniform(1, 2, (3, 500)) * 2**30
    r = f.flat_rules(cpu, mem)
    krr = r["krr-simple"]
    assert np.allclose(krr["cpu"], np.maximum(np.percentile(cpu, 95, axis=1), 0.01))
    assert (krr["mem_req"] >= mem.max(axis=1) * 1.15).all() and (krr["mem_req"] == krr["mem_lim"]).all()
    b = r["flat request p99 x1.05"]
    assert (b["mem_req"] <= b["mem_lim"]).all() and (b["mem_lim"] >= mem.max(axis=1)).all()
