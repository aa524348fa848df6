"""The recommender contract: registry, Settings, generated flags, and behaviour pinned on the sample."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, dataclass, fields
from pathlib import Path

import pytest

from analyzer.errors import InputError
from analyzer.paths import sample_snapshot_dir
from analyzer.snapshot import load_snapshot
from recommenders.api import recommend
from recommenders.contract import REGISTRY, Context, Recommender, Result, register, registered, setting
from recommenders.record import Skip, Target
from tests.support.cli_helpers import assert_clean_error, run_cli

PINNED = Path(__file__).parent / "data" / "recommend_sample.json"
KEY = ("namespace", "workload_kind", "workload", "container", "kind", "resource")


@pytest.fixture(scope="module")
def sample():
    return load_snapshot(sample_snapshot_dir())


def test_registry_holds_the_builtin_recommenders_with_typed_documented_settings():
    names = [cls.name for cls in registered()]
    assert names[:3] == ["rightsize", "gpu", "spot"]
    for cls in registered():
        assert cls.Settings.__dataclass_params__.frozen, cls.Settings
        for f in fields(cls.Settings):
            assert f.metadata.get("help") and f.metadata.get("unit"), f"{cls.Settings.__name__}.{f.name}"
        with pytest.raises(FrozenInstanceError):
            setattr(cls.Settings(), fields(cls.Settings)[0].name, None)


def test_register_refuses_a_settings_class_that_is_not_frozen():
    @dataclass
    class Loose:
        x: int = 1

    class Bad(Recommender):
        name = "bad"
        Settings = Loose

    with pytest.raises(TypeError, match="frozen"):
        register(Bad)

    @dataclass(frozen=True)
    class Undocumented:
        x: int = 1

    Bad.Settings = Undocumented
    with pytest.raises(TypeError, match="help and unit"):
        register(Bad)
    assert "bad" not in REGISTRY


def test_unknown_kind_is_bad_input(sample):
    with pytest.raises(InputError, match="unknown recommendation kind"):
        recommend(sample, kinds=("rightsize", "nope"))


def test_a_registered_recommender_runs_with_the_others(sample):
    """Adding a recommender is a class and a decorator: api.recommend runs it with the shared context."""

    @dataclass(frozen=True)
    class EchoSettings:
        note: str = setting("hello", "What to say.", "text")

    seen = {}

    class Echo(Recommender):
        name = "echo-test"
        Settings = EchoSettings

        def run(self, snapshot, ctx):
            seen["ctx"] = ctx
            t = Target("ns", "Deployment", "w", "c")
            return Result(skips=[Skip(t, "echo", "cpu", self.settings.note)], notes=[f"echo: {self.settings.note}"])

    register(Echo)
    try:
        out = recommend(sample, {"echo-test": EchoSettings(note="hi")}, kinds=("echo-test",))
    finally:
        REGISTRY.pop("echo-test")
    assert out.notes == ["echo: hi"] and out.skipped[0].reason == "hi" and out.recommendations == []
    ctx = seen["ctx"]
    assert isinstance(ctx, Context) and ctx.window == (sample.manifest.start, sample.manifest.end)
    assert ctx.series is ctx.series  # built once, shared


def _records(payload) -> list[dict]:
    """The records, whether printed as a list or wrapped in an envelope by a later version."""
    if isinstance(payload, dict):
        payload = payload.get("items") or payload.get("recommendations") or payload.get("records")
    return [r for r in payload if not str(r.get("kind", "")).startswith("skip:")]


def _same(pinned, got, path="") -> list[str]:
    """Every pinned field has the same value in ``got`` (floats to 1e-9 relative); extra fields are fine."""
    if isinstance(pinned, dict):
        if not isinstance(got, dict):
            return [f"{path}: {got!r} is not an object"]
        return [d for k, v in pinned.items() for d in (_same(v, got[k], f"{path}.{k}") if k in got
                                                         else [f"{path}.{k} missing"])]
    if isinstance(pinned, list):
        if not isinstance(got, list) or len(got) != len(pinned):
            return [f"{path}: {got!r} != {pinned!r}"]
        return [d for i, (a, b) in enumerate(zip(pinned, got, strict=True)) for d in _same(a, b, f"{path}[{i}]")]
    if isinstance(pinned, float) and isinstance(got, (int, float)):
        return [] if got == pytest.approx(pinned, rel=1e-9, abs=1e-12) else [f"{path}: {got!r} != {pinned!r}"]
    return [] if pinned == got else [f"{path}: {got!r} != {pinned!r}"]


def test_recommend_json_on_the_bundled_sample_matches_the_pinned_records(tmp_path):
    """`kubetune recommend --format json` on the sample gives the records captured before the
    contract refactoring (tests/data/recommend_sample.json, from main at 130a6ca, after #21), re-captured
    after #14's new right-sizing defaults (guaranteed memory at peak x 1.15 + 64Mi, CPU risk 0.06).
    Re-capture only when a change is meant to alter recommendations:
    `kubetune recommend --format json --out tests/data/recommend_sample.json`."""
    out = tmp_path / "recs.json"
    r = run_cli("recommend", "--format", "json", "--out", out)
    assert r.code == 0, r.err
    pinned = json.loads(PINNED.read_text())
    got = _records(json.loads(out.read_text()))
    assert len(got) == len(pinned)
    by_key = {tuple(g[k] for k in KEY): g for g in got}
    assert len(by_key) == len(got)
    problems = [d for p in pinned for d in _same(p, by_key.get(tuple(p[k] for k in KEY), {}), "/".join(
        str(p[k]) for k in KEY))]
    assert not problems, problems[:10]


def test_custom_pricing_reaches_the_spot_saving(sample, tmp_path):
    """--pricing's spot_discount is what spot savings use (it used to reload the bundled book)."""
    from analyzer.cost import load_pricing
    from recommenders.spot import recommend_spot

    prices = tmp_path / "prices.yaml"
    prices.write_text("provider: aws\nspot_discount: {percent: 5, source: test file, date: 2026-12-01}\n")
    out = tmp_path / "spot.json"
    r = run_cli("recommend", "--kind", "spot", "--pricing", prices, "--format", "json", "--out", out)
    assert r.code == 0, r.err
    total = sum(x["monthly_saving_usd"] for x in _records(json.loads(out.read_text())))
    assert all(x["evidence"]["observed"]["spot_discount_cpu"] == pytest.approx(0.05)
               for x in _records(json.loads(out.read_text())))
    ctx = Context.build(sample, pricing_file=prices)
    expected = recommend_spot(sample, ctx.rates, pricing=ctx.pricing).monthly_saving_usd
    bundled = recommend_spot(sample, pricing=load_pricing()).monthly_saving_usd
    assert total == pytest.approx(expected, abs=0.05)
    assert total < bundled / 5  # 5% off instead of the bundled discount (~65%)
    assert total == pytest.approx(26.07, abs=0.05)  # the hand check on the sample


def test_generated_flags_reach_every_knob_and_validate(tmp_path):
    r = run_cli("recommend", "--help")
    assert r.code == 0
    text = " ".join(r.out.split())
    for flag in ("--risk", "--risk-mode", "--max-risk", "--memory-risk", "--memory-margin", "--cpu-limit-ratio",
                 "--keep-memory-limit", "--min-change", "--min-history", "--allow-hpa", "--use-forecast",
                 "--spot-placement", "--gpu-margin", "--gpu-fb-risk", "--gpu-busy-risk", "--gpu-sharing",
                 "--gpu-max-gap",
                 "--memory-floor", "--half-life"):
        assert flag in text, flag
    assert text.count("--min-history ") == 1  # shared by rightsize and gpu: one flag
    bad = run_cli("recommend", "--gpu-margin", "9", "--kind", "gpu")
    assert_clean_error(bad, 2, "GPU margin must be between 0 and 5")
    bad = run_cli("recommend", "--min-history", "soon")
    assert_clean_error(bad, 2, "--min-history")


def test_settings_flags_build_the_same_settings_the_library_uses():
    from kubetune.settings_flags import build_settings, settings_flags
    from recommenders.gpu_settings import GpuSettings
    from recommenders.policy import RightsizePolicy
    from recommenders.spot_settings import SpotSettings

    recs = registered()
    flags = settings_flags(recs)
    values = {f.param: f.default for f in flags}
    by_flag = {f.flag: f for f in flags}
    values[by_flag["--min-history"].param] = "3d"
    values[by_flag["--allow-hpa"].param] = True
    values[by_flag["--memory-floor"].param] = "128Mi"
    values[by_flag["--risk"].param] = 0.2  # above the default --max-risk: the cap follows
    built = build_settings(recs, flags, values)
    assert built["rightsize"] == RightsizePolicy(min_history_hours=72.0, hpa="allow", memory_floor=128 * 2**20,
                                                 risk=0.2, max_risk=0.2)
    assert built["gpu"] == GpuSettings(min_history_hours=72.0)
    assert built["spot"] == SpotSettings()


def test_records_do_not_depend_on_the_order_of_usage_rows():
    """The same snapshot with its usage rows shuffled gives the same records in the same order and the
    same cluster notes (group-by orders vary; PR diffs and reports must not)."""
    import dataclasses

    from analyzer.simulator import simulate

    snap = simulate(workloads=40, days=4, step_seconds=900, seed=11)
    assert snap.gpus.height  # the GPU calibration (pairs of containers) is covered too
    shuffled = dataclasses.replace(snap, usage=snap.usage.sample(fraction=1.0, shuffle=True, seed=1))
    a, b = recommend(snap), recommend(shuffled)
    assert [r.row() for r in a.recommendations] == [r.row() for r in b.recommendations]
    assert [s.row() for s in a.skipped] == [s.row() for s in b.skipped]
    assert a.cluster_notes == b.cluster_notes
    assert len(a.recommendations) > 20
