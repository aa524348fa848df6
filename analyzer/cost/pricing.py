"""Prices: the bundled catalog, a user's ``--pricing FILE.yaml``, and the price of each node.

A cost report is only as credible as its prices, so every price carries where it came from
(source and date) and how it was obtained (quoted, derived, fallback), and the report shows the
table of prices it used. Resolution order for one node:

1. ``nodes.hourly_price`` in the snapshot (e.g. OpenCost ``node_total_hourly_cost``): what the
   cluster itself reports wins (``use_snapshot_prices: false`` in a user file turns this off);
2. a price row for the node's instance type and capacity (spot price for spot nodes) from the
   user file, then from the bundled catalog;
3. for a spot node whose type has only an on-demand price: on-demand x (1 - the provider's
   ``spot_discount``), marked *derived*;
4. fallback per-core / per-GiB / per-GPU rates (OpenCost's defaults unless overridden) times the
   node's capacity, with a warning that lists the unknown types.

Catalog files (``data/pricing/*.yaml``) and user files share one format::

    provider: aws                 # default for the rows below
    region: us-east-1
    sources: {my-src: "long citation"}          # rows may name a key or write the text
    discount_percent: 12          # user files: negotiated discount on *bundled* prices
    discounts: {aws: 15}          # per provider, overrides discount_percent
    use_snapshot_prices: true
    spot_discount: {percent: 65, source: ..., date: ..., derived: "why"}
    fallback:
      on-demand: {cpu_core_hour: 0.03, memory_gib_hour: 0.004, gpu_hour: 0.95}
      spot: {cpu_core_hour: 0.007, memory_gib_hour: 0.0009, gpu_hour: 0.31}
    types:
      - {type: my-box, vcpu: 32, memory_gib: 128, gpus: 2, gpu_model: L40S, gpu_memory_gib: 48}
    prices:
      - {type: my-box, capacity: on-demand, price: 1.9, source: "finance sheet", date: 2026-09-01}

A price row may also carry the spec keys (``vcpu``, ``memory_gib``, ...) to define a custom
type in one line. A negative or non-numeric price, rate or percent is an ``InputError`` naming
the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from analyzer.cost.pricing_file import CAPACITIES, RESOURCE_RATE_KEYS, Rates, SpotDiscount, parse_pricing_file
from analyzer.errors import InputError
from analyzer.kube import SPOT_LABELS
from analyzer.paths import pricing_dir
from analyzer.units import GIB


@dataclass
class PriceBook:
    """Everything needed to price a node: specs, price rows, fallback rates, discounts."""

    types: pl.DataFrame
    prices: pl.DataFrame
    fallback: dict[str, Rates]
    spot_discounts: dict[str, SpotDiscount] = field(default_factory=dict)
    discounts: dict[str, float] = field(default_factory=dict)  # provider (or "*") -> fraction off
    use_snapshot_prices: bool = True
    files: list[Path] = field(default_factory=list)

    def discount_for(self, provider: str | None) -> float:
        if provider is not None and provider in self.discounts:
            return self.discounts[provider]
        return self.discounts.get("*", 0.0)


# --------------------------------------------------------------------------------------------
# Loading


def load_pricing(user_file: str | Path | None = None, catalog_dir: str | Path | None = None) -> PriceBook:
    """The bundled catalog, with a user's pricing file (if any) laid over it."""
    book = load_catalog(catalog_dir)
    if user_file is not None:
        book = apply_user_file(book, Path(user_file))
    return book


_CATALOGS: dict[tuple, PriceBook] = {}


def load_catalog(directory: str | Path | None = None) -> PriceBook:
    """Read every ``*.yaml`` in the catalog directory (``data/pricing/`` by default).

    Parsed once per process while the files are unchanged (the round-trip YAML parser, kept for
    line numbers in errors, takes about a second; rates, spot and cost each ask for the catalog)."""
    root = Path(directory) if directory is not None else pricing_dir()
    files = sorted(root.glob("*.yaml")) if root.is_dir() else []
    if not files:
        raise InputError(f"no pricing catalog found in {root} (expected data/pricing/*.yaml).")
    key = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    if key not in _CATALOGS:
        _CATALOGS.clear()
        _CATALOGS[key] = _read_catalog(root, files)
    book = _CATALOGS[key]
    return replace(book, fallback=dict(book.fallback), spot_discounts=dict(book.spot_discounts),
                   discounts=dict(book.discounts), files=list(book.files))


def _read_catalog(root: Path, files: list[Path]) -> PriceBook:
    parsed = [parse_pricing_file(f, origin="catalog") for f in files]
    fallback: dict[str, Rates] = {}
    spot: dict[str, SpotDiscount] = {}
    for p in parsed:
        fallback.update(p.fallback)
        spot.update(p.spot_discounts)
    missing = [c for c in CAPACITIES if c not in fallback]
    if missing:
        raise InputError(f"the pricing catalog in {root} has no fallback rates for {', '.join(missing)}.")
    return PriceBook(
        types=_dedupe(pl.concat([p.types for p in parsed], how="vertical"), ["instance_type"]),
        prices=_dedupe(pl.concat([p.prices for p in parsed], how="vertical"), ["instance_type", "capacity"]),
        fallback=fallback,
        spot_discounts=spot,
        files=files,
    )


def apply_user_file(book: PriceBook, path: Path) -> PriceBook:
    """Lay a user's pricing file over the book: its rows win over the catalog's."""
    if not path.is_file():
        raise InputError(f"pricing file {path} does not exist.")
    user = parse_pricing_file(path, origin="user")
    fallback = dict(book.fallback)
    for cap, rates in user.fallback_partial.items():
        base = fallback[cap]
        merged = {k: rates.get(k, getattr(base, k)) for k in RESOURCE_RATE_KEYS}
        fallback[cap] = Rates(**merged, source=rates.get("source", base.source), date=rates.get("date", base.date),
                              origin="user")
    return PriceBook(
        types=_dedupe(pl.concat([user.types, book.types], how="vertical"), ["instance_type"]),
        prices=_dedupe(pl.concat([user.prices, book.prices], how="vertical"), ["instance_type", "capacity"]),
        fallback=fallback,
        spot_discounts={**book.spot_discounts, **user.spot_discounts},
        discounts={**book.discounts, **user.discounts},
        use_snapshot_prices=book.use_snapshot_prices if user.use_snapshot_prices is None else user.use_snapshot_prices,
        files=[*book.files, path],
    )


def _dedupe(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """First row per key wins (user rows are concatenated first)."""
    return df.unique(subset=keys, keep="first", maintain_order=True)


# --------------------------------------------------------------------------------------------
# Resolving node prices

NODE_PRICE_SCHEMA = {
    "node": pl.String, "provider": pl.String, "instance_type": pl.String, "capacity_type": pl.String,
    "price_capacity": pl.String, "cpu_cores": pl.Float64, "memory_gib": pl.Float64, "gpus": pl.Float64,
    "hourly_price": pl.Float64, "price_kind": pl.String, "price_source": pl.String, "price_date": pl.String,
    "discount": pl.Float64, "cpu_rate": pl.Float64, "memory_rate": pl.Float64, "gpu_rate": pl.Float64,
}


def _is_spot_by_label() -> pl.Expr:
    """True when a node label marks it spot (capacity_type left 'unknown' by a collector)."""
    hits = [
        pl.col("labels").list.eval(
            (pl.element().struct.field("key") == k)
            & (pl.element().struct.field("value").str.to_lowercase() == v.lower())
        ).list.any()
        for k, v in SPOT_LABELS.items()
    ]
    return pl.any_horizontal(hits).fill_null(False)


def resolve_node_prices(nodes: pl.DataFrame, book: PriceBook) -> tuple[pl.DataFrame, list[str]]:
    """Price every node and split the price into per-core, per-GiB and per-GPU hourly rates.

    Returns one row per node (see ``NODE_PRICE_SCHEMA``) and the warnings to show. Done with
    joins over the node frame, so thousands of nodes cost nothing.

    Length: the price precedence (snapshot, user, catalog, derived spot, fallback) is one chain of joins read
    in order; each step is commented.
    """
    warnings: list[str] = []
    if nodes.height == 0:
        return pl.DataFrame(schema=NODE_PRICE_SCHEMA), warnings
    od, sp = book.fallback["on-demand"], book.fallback["spot"]
    base = nodes.select(
        pl.col("node").cast(pl.String),
        pl.col("provider"),
        pl.col("instance_type"),
        pl.col("capacity_type").cast(pl.String),
        pl.when(pl.col("capacity_type").cast(pl.String) == "spot").then(True)
        .when(pl.col("capacity_type").cast(pl.String) == "unknown").then(_is_spot_by_label())
        .otherwise(False).alias("_spot"),
        pl.col("cpu_capacity"), pl.col("cpu_allocatable"),
        pl.col("memory_capacity"), pl.col("memory_allocatable"),
        pl.col("gpu_count"),
        pl.col("hourly_price").alias("_snap_price"),
        pl.col("price_source").alias("_snap_source"),
    ).with_columns(pl.when(pl.col("_spot")).then(pl.lit("spot")).otherwise(pl.lit("on-demand")).alias("price_capacity"))

    types = book.types.rename({"provider": "_type_provider"})
    prices = book.prices.select(
        "instance_type", "capacity",
        pl.col("provider").alias("_row_provider"), pl.col("price").alias("_row_price"),
        pl.col("source").alias("_row_source"), pl.col("date").alias("_row_date"),
        pl.col("derived").alias("_row_derived"), pl.col("origin").alias("_row_origin"),
    )
    od_prices = prices.filter(pl.col("capacity") == "on-demand").drop("capacity").rename(
        {c: c.replace("_row_", "_od_") for c in prices.columns if c.startswith("_row_")})
    df = (
        base.join(types, on="instance_type", how="left")
        .join(prices, left_on=["instance_type", "price_capacity"], right_on=["instance_type", "capacity"], how="left")
        .join(od_prices, on="instance_type", how="left")
        .with_columns(
            pl.coalesce("provider", "_type_provider", "_row_provider", "_od_provider").alias("provider"),
            pl.coalesce("cpu_capacity", "vcpu", "cpu_allocatable").cast(pl.Float64).alias("cpu_cores"),
            pl.coalesce(pl.col("memory_capacity").cast(pl.Float64) / GIB, "memory_gib",
                        pl.col("memory_allocatable").cast(pl.Float64) / GIB).alias("memory_gib"),
            pl.coalesce(pl.col("gpu_count").cast(pl.Float64), pl.col("gpus").cast(pl.Float64), pl.lit(0.0))
            .alias("gpus"),
        )
    )

    # Spot discount and negotiated discount per provider, as small lookup frames.
    sd_rows = [{"provider": p, "_sd": d.fraction, "_sd_source": d.source, "_sd_date": d.date, "_sd_derived": d.derived}
               for p, d in book.spot_discounts.items()]
    sd = pl.DataFrame(sd_rows, schema={"provider": pl.String, "_sd": pl.Float64, "_sd_source": pl.String,
                                       "_sd_date": pl.String, "_sd_derived": pl.String})
    default_sd = book.spot_discounts.get("*")
    df = df.join(sd, on="provider", how="left")
    if default_sd is not None:
        df = df.with_columns(
            pl.col("_sd").fill_null(default_sd.fraction), pl.col("_sd_source").fill_null(default_sd.source),
            pl.col("_sd_date").fill_null(default_sd.date), pl.col("_sd_derived").fill_null(default_sd.derived))
    disc = pl.DataFrame([{"provider": p, "_disc": f} for p, f in book.discounts.items() if p != "*"],
                        schema={"provider": pl.String, "_disc": pl.Float64})
    df = df.join(disc, on="provider", how="left").with_columns(pl.col("_disc").fill_null(book.discounts.get("*", 0.0)))

    snap_ok = pl.col("_snap_price").is_not_null() & (pl.col("_snap_price") >= 0) & pl.lit(book.use_snapshot_prices)
    has_row = pl.col("_row_price").is_not_null()
    can_derive = pl.col("_spot") & pl.col("_od_price").is_not_null() & pl.col("_sd").is_not_null()
    has_specs = pl.col("cpu_cores").is_not_null() & pl.col("memory_gib").is_not_null()
    kind = (
        pl.when(snap_ok).then(pl.lit("snapshot"))
        .when(has_row & pl.col("_row_derived").is_not_null()).then(pl.lit("derived"))
        .when(has_row).then(pl.col("_row_origin"))
        .when(can_derive).then(pl.lit("derived"))
        .when(has_specs).then(pl.lit("fallback"))
        .otherwise(pl.lit("none"))
    )
    fb = {c: (pl.when(pl.col("_spot")).then(pl.lit(getattr(sp, k))).otherwise(pl.lit(getattr(od, k))))
          for c, k in (("cpu", "cpu_core_hour"), ("mem", "memory_gib_hour"), ("gpu", "gpu_hour"))}
    fb_origin = pl.when(pl.col("_spot")).then(pl.lit(sp.origin)).otherwise(pl.lit(od.origin))
    fb_price = fb["cpu"] * pl.col("cpu_cores") + fb["mem"] * pl.col("memory_gib") + fb["gpu"] * pl.col("gpus")
    row_bundled = pl.col("_row_origin") == "catalog"
    df = df.with_columns(kind.alias("price_kind")).with_columns(
        # Negotiated discounts apply to bundled prices only: snapshot and user prices are what you pay.
        pl.when(pl.col("price_kind") == "snapshot").then(0.0)
        .when(has_row).then(pl.when(row_bundled).then(pl.col("_disc")).otherwise(0.0))
        .when(pl.col("price_kind") == "derived").then(
            pl.when(pl.col("_od_origin") == "catalog").then(pl.col("_disc")).otherwise(0.0))
        .when(pl.col("price_kind") == "fallback")
        .then(pl.when(fb_origin == "catalog").then(pl.col("_disc")).otherwise(0.0))
        .otherwise(0.0).alias("discount"),
    ).with_columns(
        (pl.when(pl.col("price_kind") == "snapshot").then(pl.col("_snap_price"))
         .when(has_row).then(pl.col("_row_price"))
         .when(pl.col("price_kind") == "derived").then(pl.col("_od_price") * (1 - pl.col("_sd")))
         .when(pl.col("price_kind") == "fallback").then(fb_price)
         .otherwise(0.0) * (1 - pl.col("discount"))).alias("hourly_price"),
        pl.when(pl.col("price_kind") == "snapshot")
        .then(pl.concat_str(pl.lit("snapshot nodes.hourly_price"),
                            pl.when(pl.col("_snap_source").is_not_null())
                            .then(pl.concat_str(pl.lit(" ("), pl.col("_snap_source"), pl.lit(")")))
                            .otherwise(pl.lit(""))))
        .when(has_row).then(pl.concat_str(
            pl.col("_row_source"),
            pl.when(pl.col("_row_derived").is_not_null())
            .then(pl.concat_str(pl.lit("; derived: "), pl.col("_row_derived"))).otherwise(pl.lit(""))))
        .when(pl.col("price_kind") == "derived").then(pl.concat_str(
            pl.lit("on-demand "), pl.col("_od_price").round(6).cast(pl.String), pl.lit(" x (1 - "),
            (pl.col("_sd") * 100).round(1).cast(pl.String), pl.lit("% spot discount: "), pl.col("_sd_derived"),
            pl.lit("); on-demand: "), pl.col("_od_source"), pl.lit("; discount: "), pl.col("_sd_source")))
        .when(pl.col("price_kind") == "fallback").then(pl.concat_str(
            pl.lit("fallback rates x node capacity: "),
            pl.when(pl.col("_spot")).then(pl.lit(sp.source)).otherwise(pl.lit(od.source))))
        .otherwise(pl.lit("no price: unknown type and no capacity")).alias("price_source"),
        pl.when(pl.col("price_kind") == "snapshot").then(pl.lit("snapshot window"))
        .when(has_row).then(pl.col("_row_date"))
        .when(pl.col("price_kind") == "derived")
        .then(pl.concat_str(pl.col("_od_date"), pl.lit(" / "), pl.col("_sd_date")))
        .when(pl.col("price_kind") == "fallback").then(
            pl.when(pl.col("_spot")).then(pl.lit(sp.date)).otherwise(pl.lit(od.date)))
        .otherwise(pl.lit(None, pl.String)).alias("price_date"),
    )

    # Split: fallback-priced nodes use the fallback rates themselves; every other price is split
    # with OpenCost's ratio method, using the on-demand fallback rates as the CPU:RAM:GPU ratio.
    cpu_to_ram = od.cpu_core_hour / od.memory_gib_hour if od.memory_gib_hour > 0 else 10.0
    gpu_to_ram = od.gpu_hour / od.memory_gib_hour if od.memory_gib_hour > 0 else 100.0
    cores = pl.col("cpu_cores").fill_null(0.0)
    gib = pl.col("memory_gib").fill_null(0.0)
    denom = pl.col("gpus") * gpu_to_ram + cores * cpu_to_ram + gib
    ram_rate = pl.when(denom > 0).then(pl.col("hourly_price") / denom).otherwise(0.0)
    is_fb = pl.col("price_kind") == "fallback"
    df = df.with_columns(
        pl.when(is_fb).then(fb["cpu"] * (1 - pl.col("discount"))).otherwise(ram_rate * cpu_to_ram).alias("cpu_rate"),
        pl.when(is_fb).then(fb["mem"] * (1 - pl.col("discount"))).otherwise(ram_rate).alias("memory_rate"),
        pl.when(is_fb).then(fb["gpu"] * (1 - pl.col("discount"))).otherwise(ram_rate * gpu_to_ram).alias("gpu_rate"),
    )
    out = df.select(list(NODE_PRICE_SCHEMA)).cast(NODE_PRICE_SCHEMA)

    fallback_types = out.filter(pl.col("price_kind") == "fallback").get_column("instance_type").fill_null("(none)")
    if fallback_types.len():
        names = sorted(set(fallback_types.to_list()))
        warnings.append(
            f"No price for instance type{'s' if len(names) > 1 else ''} {', '.join(names)}: "
            f"{fallback_types.len()} node(s) priced with fallback rates (per core, GiB and GPU hour); "
            "add them to a --pricing file for exact figures.")
    unpriced = out.filter(pl.col("price_kind") == "none")
    if unpriced.height:
        warnings.append(
            f"{unpriced.height} node(s) have an unknown instance type and no capacity, so they cost 0: "
            + ", ".join(unpriced.get_column("node").head(10).to_list()) + ("..." if unpriced.height > 10 else ""))
    zero_split = out.filter((pl.col("hourly_price") > 0) & (pl.col("cpu_cores").fill_null(0) <= 0)
                            & (pl.col("memory_gib").fill_null(0) <= 0) & (pl.col("gpus") <= 0))
    if zero_split.height:
        warnings.append(f"{zero_split.height} node(s) have a price but no known capacity; their cost cannot be "
                        "split into resources and is left out: "
                        + ", ".join(zero_split.get_column("node").head(10).to_list()))
    reserved = out.filter(pl.col("capacity_type") == "reserved")
    if reserved.height:
        warnings.append(f"{reserved.height} reserved node(s) are priced at on-demand rates; put your reserved rate in "
                        "a --pricing file (prices: or discounts:).")
    return out, warnings


def prices_used(node_prices: pl.DataFrame) -> pl.DataFrame:
    """The 'prices used' table: one row per distinct price, with its source, for the report."""
    return (
        node_prices.group_by(["provider", "instance_type", "price_capacity", "price_kind", "hourly_price",
                              "price_source", "price_date", "discount"])
        .agg(pl.len().alias("nodes"), pl.col("cpu_rate").first(), pl.col("memory_rate").first(),
             pl.col("gpu_rate").first())
        .sort(["price_kind", "provider", "instance_type"], nulls_last=True)
        .rename({"price_capacity": "capacity", "price_kind": "kind", "price_source": "source", "price_date": "date"})
        .select(["instance_type", "provider", "capacity", "nodes", "hourly_price", "kind", "discount", "cpu_rate",
                 "memory_rate", "gpu_rate", "source", "date"])
    )
