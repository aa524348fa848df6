"""Pricing catalog, user pricing files (overrides, discounts, errors with file:line), node price resolution."""

from __future__ import annotations

import polars as pl
import pytest

from analyzer.cost import analyze_cost, load_catalog, load_pricing
from analyzer.cost.pricing import resolve_node_prices
from analyzer.errors import InputError
from tests.test_cost_fixture import GIB, container, make_snapshot, write_pricing

OD_CPU, OD_RAM, OD_GPU = 0.031611, 0.004237, 0.95  # OpenCost default.json, the bundled fallback


def _nodes(*rows: dict) -> pl.DataFrame:
    base = {"node": "n", "instance_type": None, "provider": None, "capacity_type": "on-demand", "cpu_capacity": None,
            "memory_capacity": None, "gpu_count": None, "hourly_price": None, "price_source": None, "labels": None}
    df = pl.DataFrame([{**base, **r} for r in rows], schema_overrides={"labels": pl.List(pl.Struct(
        {"key": pl.String, "value": pl.String})), "hourly_price": pl.Float64, "cpu_capacity": pl.Float64,
        "memory_capacity": pl.Int64, "gpu_count": pl.Int64, "price_source": pl.String, "provider": pl.String,
        "instance_type": pl.String})
    return df.with_columns(pl.col("capacity_type").cast(pl.String), pl.lit(None, pl.Float64).alias("cpu_allocatable"),
                           pl.lit(None, pl.Int64).alias("memory_allocatable"))


def _price(book, **node) -> dict:
    out, warnings = resolve_node_prices(_nodes({"node": "n", **node}), book)
    row = out.row(0, named=True)
    row["warnings"] = warnings
    return row


def test_catalog_rows_carry_source_and_date():
    book = load_catalog()
    p = book.prices
    assert p.height > 100
    assert p.filter(pl.col("source").is_null() | (pl.col("source") == "") | pl.col("date").is_null()).height == 0
    assert set(p.get_column("provider").unique().to_list()) == {"aws", "gcp", "azure"}
    # Every priced type has specs, and every spec names where it came from.
    missing = p.join(book.types, on="instance_type", how="anti")
    assert missing.height == 0, missing
    assert book.types.filter(pl.col("vcpu").is_null() | pl.col("memory_gib").is_null()
                             | pl.col("spec_source").is_null()).height == 0
    # AWS spot rows come from the spot advisor and are marked derived.
    aws_spot = p.filter((pl.col("provider") == "aws") & (pl.col("capacity") == "spot"))
    assert aws_spot.height >= 7 and aws_spot.get_column("derived").null_count() == 0
    # Figures from the reference table (docs/domain-reference.md section 7).
    def price(t, cap="on-demand"):
        return p.filter((pl.col("instance_type") == t) & (pl.col("capacity") == cap)).get_column("price").item()
    assert price("m5.xlarge") == 0.192 and price("p4d.24xlarge") == 21.957642 and price("p5.48xlarge") == 55.04
    assert price("n2-standard-8") == 0.388472 and price("n2-standard-8", "spot") == 0.18424
    assert price("a2-highgpu-1g", "spot") == 1.92802
    assert price("Standard_D4s_v5") == 0.192 and price("Standard_NC24ads_A100_v4") == 3.673
    assert price("m5.xlarge", "spot") == pytest.approx(0.192 * (1 - 0.66))
    gpu_types = book.types.filter(pl.col("gpus") > 0)
    assert gpu_types.filter(pl.col("gpu_model").is_null()).height == 0
    assert book.fallback["on-demand"].cpu_core_hour == OD_CPU and book.fallback["spot"].gpu_hour == 0.308


def test_catalog_price_and_split():
    row = _price(load_pricing(), instance_type="m5.xlarge", provider="aws")
    assert row["price_kind"] == "catalog" and row["hourly_price"] == pytest.approx(0.192)
    assert row["cpu_cores"] == 4 and row["memory_gib"] == 16  # specs from the catalog
    # OpenCost ratio split: ram = 0.192 / (4 x CPU/RAM + 16), cpu = ram x CPU/RAM.
    ram = 0.192 / (4 * OD_CPU / OD_RAM + 16)
    assert row["memory_rate"] == pytest.approx(ram) and row["cpu_rate"] == pytest.approx(ram * OD_CPU / OD_RAM)
    assert row["cpu_rate"] * 4 + row["memory_rate"] * 16 == pytest.approx(0.192)


def test_spot_prices():
    book = load_pricing()
    quoted = _price(book, instance_type="n2-standard-8", capacity_type="spot")
    assert quoted["hourly_price"] == pytest.approx(0.18424) and quoted["price_kind"] == "catalog"
    advisor = _price(book, instance_type="m5.xlarge", capacity_type="spot")
    assert advisor["price_kind"] == "derived" and advisor["hourly_price"] == pytest.approx(0.06528)
    assert "derived" in advisor["price_source"]
    # No spot row for m6i.xlarge: on-demand x (1 - AWS median advisor savings 65%).
    median = _price(book, instance_type="m6i.xlarge", capacity_type="spot")
    assert median["price_kind"] == "derived" and median["hourly_price"] == pytest.approx(0.192 * 0.35)
    # Azure has no spot source: derived from OpenCost's spot/on-demand CPU ratio.
    az = _price(book, instance_type="Standard_D4s_v5", capacity_type="spot")
    assert az["hourly_price"] == pytest.approx(0.192 * (1 - 0.789))
    # capacity_type unknown, but a spot label: priced as spot.
    labelled = _price(book, instance_type="m5.xlarge", capacity_type="unknown",
                      labels=[{"key": "karpenter.sh/capacity-type", "value": "spot"}])
    assert labelled["price_capacity"] == "spot"


def test_snapshot_price_wins_unless_disabled(tmp_path):
    book = load_pricing()
    row = _price(book, instance_type="m5.xlarge", hourly_price=0.5, price_source="opencost")
    assert row["price_kind"] == "snapshot" and row["hourly_price"] == 0.5
    off = load_pricing(write_pricing(tmp_path, "use_snapshot_prices: false\n"))
    assert _price(off, instance_type="m5.xlarge", hourly_price=0.5)["hourly_price"] == pytest.approx(0.192)


def test_unknown_type_falls_back_with_warning():
    row = _price(load_pricing(), instance_type="x9.weird", cpu_capacity=2.0, memory_capacity=8 * GIB)
    assert row["price_kind"] == "fallback"
    assert row["hourly_price"] == pytest.approx(2 * OD_CPU + 8 * OD_RAM)
    assert row["cpu_rate"] == pytest.approx(OD_CPU)
    assert any("x9.weird" in w and "fallback" in w for w in row["warnings"])
    spot = _price(load_pricing(), instance_type="x9.weird", capacity_type="spot", cpu_capacity=2.0,
                  memory_capacity=8 * GIB, gpu_count=1)
    assert spot["hourly_price"] == pytest.approx(2 * 0.006655 + 8 * 0.000892 + 0.308)


def test_unknown_type_warning_through_analyze(tmp_path):
    nodes = [{"node": "a", "instance_type": "mystery.big", "capacity_type": "on-demand", "cpu_capacity": 4.0,
              "memory_capacity": 8 * GIB},
             {"node": "b", "instance_type": "mystery.small", "capacity_type": "on-demand", "cpu_capacity": 2.0,
              "memory_capacity": 4 * GIB},
             {"node": "c", "instance_type": "m5.large", "capacity_type": "on-demand"}]
    snap = make_snapshot(nodes, [container("ns", "w", "p", "c", "a", cpu=1.0, mem_gib=1)], [], steps=1)
    r = analyze_cost(snap)
    warning = next(w for w in r.warnings if "fallback" in w)
    assert "mystery.big" in warning and "mystery.small" in warning and "m5.large" not in warning
    assert set(r.prices.get_column("kind").to_list()) == {"fallback", "catalog"}
    # One hour: a 4 x OD_CPU + 8 x OD_RAM, b 2 x OD_CPU + 4 x OD_RAM, c 0.096.
    assert r.total_cost == pytest.approx(6 * OD_CPU + 12 * OD_RAM + 0.096)


def test_user_file_custom_type_discount_and_onprem_rates(tmp_path):
    path = write_pricing(tmp_path, """\
discount_percent: 10
discounts: {gcp: 20}
fallback:
  on-demand: {cpu_core_hour: 0.02, memory_gib_hour: 0.003}
types:
  - {type: onprem-gpu, vcpu: 64, memory_gib: 512, gpus: 4, gpu_model: L40S}
prices:
  - {type: onprem-gpu, price: 6.0, source: "finance sheet", date: 2026-09-01}
  - {type: m5.xlarge, price: 0.15}
""")
    book = load_pricing(path)
    custom = _price(book, instance_type="onprem-gpu")
    assert custom["price_kind"] == "user" and custom["hourly_price"] == 6.0  # user prices are not discounted
    assert custom["gpus"] == 4 and custom["cpu_cores"] == 64 and custom["price_source"] == "finance sheet"
    # The user's fallback CPU:RAM ratio (0.02/0.003) splits the price; the GPU rate keeps the bundled 0.95.
    ram = 6.0 / (4 * 0.95 / 0.003 + 64 * 0.02 / 0.003 + 512)
    assert custom["memory_rate"] == pytest.approx(ram)
    over = _price(book, instance_type="m5.xlarge")
    assert over["hourly_price"] == 0.15 and str(path) in over["price_source"]
    assert _price(book, instance_type="m5.large")["hourly_price"] == pytest.approx(0.096 * 0.9)
    assert _price(book, instance_type="n2-standard-8", provider="gcp")["hourly_price"] == pytest.approx(0.388472 * 0.8)
    assert _price(book, instance_type="m5.large", hourly_price=1.0)["hourly_price"] == 1.0  # snapshot: as reported
    fb = _price(book, instance_type="rack-7", cpu_capacity=10.0, memory_capacity=10 * GIB)
    assert fb["hourly_price"] == pytest.approx(10 * 0.02 + 10 * 0.003)  # user on-prem rates, not discounted


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("prices:\n  - {type: a, price: 1.0}\n  - {type: b, price: -0.5}\n", 3, "negative"),
        ("prices:\n  - type: a\n    price: abc\n", 3, "number"),
        ("prices:\n  - {type: a, price: '0.1'}\n", 2, "number"),
        ("fallback:\n  on-demand:\n    cpu_core_hour: -1\n", 3, "negative"),
        ("fallback:\n  spot: {gpu_hour: .inf}\n", 2, "finite"),
        ("discount_percent: 120\n", 1, "below 100"),
        ("discounts:\n  aws: many\n", 2, "number"),
        ("prices:\n  - {type: a, price: 1, capacity: preemptible}\n", 2, "capacity"),
        ("prices:\n  - {type: a, prize: 1}\n", 2, "unknown key 'prize'"),
        ("spot_price: 3\n", 1, "unknown key 'spot_price'"),
        ("prices:\n  - {type: a, price: 1\n", 3, "YAML"),
        ("types:\n  - {type: a, vcpu: 4, gpus: 1.5}\n", 2, "whole number"),
    ],
)
def test_bad_pricing_file_names_file_and_line(tmp_path, text, line, words):
    path = write_pricing(tmp_path, text, name="mine.yaml")
    with pytest.raises(InputError) as err:
        load_pricing(path)
    message = str(err.value)
    assert f"{path}:{line}" in message, message
    assert words in message


def test_missing_pricing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_pricing(tmp_path / "nope.yaml")


def test_prices_used_table(tmp_path):
    nodes = [{"node": f"n{i}", "instance_type": "m5.xlarge", "capacity_type": "on-demand"} for i in range(3)]
    nodes.append({"node": "s", "instance_type": "g5.xlarge", "capacity_type": "spot"})
    snap = make_snapshot(nodes, [container("ns", "w", "p", "c", "n0", cpu=1.0, mem_gib=1)], [], steps=1)
    used = analyze_cost(snap).prices
    m5 = used.filter(pl.col("instance_type") == "m5.xlarge").row(0, named=True)
    assert m5["nodes"] == 3 and m5["kind"] == "catalog" and m5["date"] == "2026-02-09" and "karpenter" in m5["source"]
    g5 = used.filter(pl.col("instance_type") == "g5.xlarge").row(0, named=True)
    assert g5["capacity"] == "spot" and g5["kind"] == "derived" and g5["hourly_price"] == pytest.approx(0.41246)
