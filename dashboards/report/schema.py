"""The JSON Schema of report.json (version 2), as a Python dict; ``report.schema.json`` is its dump.

The dashboard and the PR bot read saved runs through this contract; the README documents it and
a test validates real reports against it. Bump ``figures.REPORT_VERSION`` when a field changes
meaning or disappears; adding optional fields keeps the version.
"""

from __future__ import annotations

from typing import Any

NUM = {"type": "number"}
NUM_N = {"type": ["number", "null"]}
STR = {"type": "string"}
STR_N = {"type": ["string", "null"]}
INT = {"type": "integer", "minimum": 0}
TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"}
RUN_ID = {"type": "string", "pattern": r"^\d{8}T\d{6}Z(-\d+)?$"}
WORKLOAD = {"namespace": STR, "workload_kind": STR, "workload": STR}


def obj(props: dict[str, Any], required: list[str] | None = None, extra: bool = True) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required,
            "additionalProperties": extra}


def arr(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


COST_ROW = {"cpu_cost": NUM, "memory_cost": NUM, "gpu_cost": NUM, "idle_cost": NUM, "total_cost": NUM, "share": NUM_N}
RECOMMENDATION = obj({
    **WORKLOAD, "container": STR, "container_type": STR,
    "kind": {"enum": ["rightsize", "raise-memory", "gpu-remove", "gpu-share", "gpu-optimize", "spot"]},
    "resource": STR, "current_request": NUM_N, "proposed_request": NUM_N, "current_limit": NUM_N,
    "proposed_limit": NUM_N, "replicas": INT, "monthly_saving_usd": NUM, "risk": {"type": "number", "minimum": 0},
    "confidence": {"type": "number", "minimum": 0, "maximum": 1}, "confidence_label": {"enum": ["low", "medium", "high"]},
    "reason": STR, "saving_basis": STR,
})
RUN_POINT = obj({"run_id": RUN_ID, "generated_at": TIME, "monthly_cost_usd": NUM, "idle_monthly_usd": NUM,
                 "waste_monthly_usd": NUM, "potential_saving_monthly_usd": NUM, "taken_saving_monthly_usd": NUM_N})
TAKEN = obj({**WORKLOAD, "container": STR, "resource": {"enum": ["cpu", "memory"]}, "kind": STR,
             "previous_request": NUM_N, "proposed_request": NUM, "request_now": NUM, "monthly_saving_usd": NUM,
             "proposed_in": RUN_ID})

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://kubetune.dev/schemas/report-v2.json",
    "title": "kubetune report.json",
    **obj({
        "format": {"const": "kubetune-report"},
        "version": {"const": 2},
        "run_id": RUN_ID,
        "generated_at": TIME,
        "title": STR,
        "cluster": STR,
        "source": STR,
        "team_label": STR,
        "snapshot": obj({"start": TIME, "end": TIME, "step_seconds": INT, "source": STR}),
        "headline": obj({
            "monthly_cost_usd": NUM, "idle_monthly_usd": NUM, "idle_fraction": NUM_N, "waste_monthly_usd": NUM,
            "potential_saving_monthly_usd": {"type": "number", "minimum": 0}, "net_saving_monthly_usd": NUM,
            "recommendations": INT,
            "saving_by_kind": arr(obj({"kind": STR, "count": INT, "monthly_saving_usd": NUM, "mean_risk": NUM_N,
                                       "max_risk": NUM_N})),
        }),
        "summary": obj({"cluster": STR, "nodes": INT, "containers": INT, "resources": arr({"type": "object"})},
                       ["cluster", "nodes", "containers", "resources"]),
        "cost": obj({
            "window": obj({"start": TIME, "end": TIME, "hours": NUM}),
            "monthly_cost_usd": NUM, "idle_monthly_usd": NUM, "idle_fraction": NUM_N, "waste_monthly_usd": NUM,
            "window_cost_usd": NUM, "efficiency": NUM_N,
            "by_namespace": arr(obj({"namespace": STR, **COST_ROW})),
            "by_team": arr(obj({"team": STR, **COST_ROW})),
            "daily": arr(obj({"day": TIME, "total_usd": NUM, "allocated_usd": NUM, "idle_usd": NUM})),
            "top_waste": arr(obj({**WORKLOAD, "waste_monthly": NUM, "cost_monthly": NUM, "waste_fraction": NUM_N},
                                 list(WORKLOAD) + ["waste_monthly"])),
            "prices": arr(STR), "warnings": arr(STR),
        }),
        "workload_charts": arr(obj({
            **WORKLOAD, "container": STR, "resource": {"enum": ["cpu", "memory"]}, "unit": {"enum": ["cores", "bytes"]},
            "times": arr(TIME), "usage": arr(NUM_N), "current_request": NUM_N, "proposed_request": NUM_N, "kind": STR,
            "monthly_saving_usd": NUM,
            "forecast": {"oneOf": [{"type": "null"}, obj({"times": arr(TIME), "p50": arr(NUM_N), "p95": arr(NUM_N)})]},
            "drift": arr(obj({"timestamp": TIME, "kind": STR})),
        })),
        "gpu": obj({
            "fleet": {"oneOf": [{"type": "null"}, obj({"devices": INT, "busy_fraction": NUM_N,
                                                       "memory_used_fraction": NUM_N, "idle_monthly_usd": NUM_N,
                                                       "cost_monthly_usd": NUM_N})]},
            "by_model": arr(obj({"model": STR_N, "devices": INT, "busy_fraction": NUM_N, "memory_used_fraction": NUM_N,
                                 "idle_monthly_usd": NUM_N, "cost_monthly_usd": NUM_N})),
            "sharing": arr(obj({**WORKLOAD, "container": STR, "kind": STR, "setup": STR, "current": NUM_N,
                                "proposed": NUM_N, "monthly_saving_usd": NUM, "reason": STR})),
            "packing": {"type": ["object", "null"]},
        }),
        "drift": obj({"events": INT, "series": INT, "recent": arr(obj({
            **WORKLOAD, "container": STR, "resource": STR, "timestamp": TIME, "kind": STR, "before": NUM_N,
            "after": NUM_N}))}),
        "recommendations": arr(RECOMMENDATION),
        "skipped": INT,
        "notes": arr(STR),
        "history": {"oneOf": [{"type": "null"}, obj({"runs": {**arr(RUN_POINT), "minItems": 1}, "taken": arr(TAKEN),
                                                     "taken_saving_monthly_usd": NUM})]},
    }),
}


if __name__ == "__main__":  # python -m dashboards.report.schema > docs/report-schema.json
    import json

    print(json.dumps(SCHEMA, indent=2))
