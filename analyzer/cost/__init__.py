"""The cost model: prices, allocation of node cost to containers, idle, efficiency and waste.

Entry points for the CLI, the report and the dashboard::

    result = analyze_cost(snapshot, window=timedelta(days=7), pricing_file=None, idle_share="none")
    rollup(result, "namespace")          # or workload, node, label:team, namespace_label:cost-center
    top_waste(result, 10)                # workloads wasting the most, $/month
    result.gpus, result.prices, result.warnings, result.summary()
"""

from analyzer.cost.allocation import HOURS_PER_MONTH, IDLE_SHARES, CostResult, analyze_cost
from analyzer.cost.pricing import PriceBook, load_catalog, load_pricing
from analyzer.cost.rollup import parse_by, rollup, top_waste

__all__ = [
    "HOURS_PER_MONTH", "IDLE_SHARES", "CostResult", "PriceBook", "analyze_cost", "load_catalog", "load_pricing",
    "parse_by", "rollup", "top_waste",
]
