"""`kubetune recommend`: right-sizing, GPU and spot recommendations, and their patches."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from analyzer.errors import InputError
from analyzer.units import parse_duration
from kubetune.console import Steps, check_out, note, warn, written
from kubetune.options import FormatOpt, OutOpt, with_source
from kubetune.output import Format, document_for, emit, emit_document, is_table
from kubetune.sources import Source, load_source
from kubetune.tables import recommendation_table


class RiskMode(str, Enum):
    cluster = "cluster"
    workload = "workload"


class SpotPlacement(str, Enum):
    preferred = "preferred"
    required = "required"
    selector = "selector"


@with_source
def recommend(
    source: Source,
    patches: Annotated[Path | None, typer.Option(
        help="Write one strategic-merge patch per workload + kustomization.yaml (+ cluster/ extras, "
             "recommendations.json) into this directory.", rich_help_panel="Output")] = None,
    base: Annotated[str | None, typer.Option(
        help="Path to your workloads' manifests, relative to --patches, listed as the kustomization's resource "
             "(so `kubectl kustomize DIR` builds the patched manifests).", rich_help_panel="Output")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --patches directory.", rich_help_panel="Output")] = False,
    kind: Annotated[list[str] | None, typer.Option(
        "--kind", help="Only these recommenders: rightsize, gpu, spot (repeat or comma-separate; default all).")] = None,
    risk: Annotated[float, typer.Option(
        help="Accepted share of pod-hours with CPU demand above request (0.02 = 2%), calibrated out of sample.",
        rich_help_panel="Policy")] = 0.02,
    risk_mode: Annotated[RiskMode, typer.Option(
        help="workload: every container within --risk (bounds how far demand exceeds requests); cluster: spend "
             "--risk where it saves the most cores (no container above --max-risk; fewer cores, bigger shortfalls "
             "on spiky containers).", rich_help_panel="Policy")] = RiskMode.workload,
    max_risk: Annotated[float, typer.Option(help="Cap on one container's CPU risk in cluster mode.",
                                            rich_help_panel="Policy")] = 0.10,
    memory_risk: Annotated[float, typer.Option(
        help="Accepted chance that next week's memory peak exceeds the proposal (sets each container's margin).",
        rich_help_panel="Policy")] = 0.01,
    memory_margin: Annotated[float, typer.Option(help="Smallest memory margin over the observed peak (0.05 = 5%).",
                                                 rich_help_panel="Policy")] = 0.05,
    cpu_limit_ratio: Annotated[float | None, typer.Option(
        help="Propose CPU limit = request x RATIO (default: no CPU limit change).", rich_help_panel="Policy")] = None,
    keep_memory_limit: Annotated[bool, typer.Option(
        help="Leave memory limits alone unless below the new request (default: limit = request).",
        rich_help_panel="Policy")] = False,
    min_change: Annotated[float, typer.Option(help="Skip changes smaller than this fraction (no churn).",
                                              rich_help_panel="Policy")] = 0.05,
    min_history: Annotated[str, typer.Option(help="Least history to recommend from, e.g. 24h.",
                                             rich_help_panel="Policy")] = "24h",
    allow_hpa: Annotated[bool, typer.Option(
        help="Also resize resources an HPA scales on (default: skip them and explain the HPA effect).",
        rich_help_panel="Policy")] = False,
    use_forecast: Annotated[bool, typer.Option(
        "--use-forecast", help="Also run the demand forecaster: its 7-day memory peak becomes a floor (safer, more "
                               "memory) and its P95/peak go into the evidence.", rich_help_panel="Policy")] = False,
    spot_placement: Annotated[SpotPlacement, typer.Option(
        help="Spot patches: preferred node affinity (falls back to on-demand), required affinity, or nodeSelector.",
        rich_help_panel="Policy")] = SpotPlacement.preferred,
    gpu_sharing: Annotated[str, typer.Option(
        help="GPU sharing: auto (MIG where the model has it, else time-slicing), mig, time-slicing or mps.",
        rich_help_panel="GPU")] = "auto",
    gpu_margin: Annotated[float | None, typer.Option(
        help="Fixed GPU headroom over the framebuffer peak and P95 busy (0.2 = 20%); default: calibrated per pod.",
        rich_help_panel="GPU")] = None,
    gpu_fb_risk: Annotated[float, typer.Option(
        help="Accepted chance that a pod's later framebuffer peak beats its slice (a CUDA OOM); sets the "
             "calibrated framebuffer margin.", rich_help_panel="GPU")] = 0.01,
    gpu_busy_risk: Annotated[float, typer.Option(
        help="Accepted share of samples with GPU busy above the proposed compute share.",
        rich_help_panel="GPU")] = 0.05,
    pricing: Annotated[Path | None, typer.Option(help="Your prices (YAML), as for `kubetune cost`.")] = None,
    skipped: Annotated[bool, typer.Option("--skipped", help="Also list what got no recommendation, and why.")] = False,
    format: FormatOpt = Format.table,
    out: OutOpt = None,
) -> None:
    """Right-sizing, GPU-sharing and spot recommendations, each with its saving, risk and evidence.

    CPU requests come from calibrated quantiles of per-pod demand after the last behaviour change,
    under a risk budget (--risk); memory from the observed peak plus a margin set by how much the
    container's daily peaks vary, never below the peak, with VPA's bump for OOM-killed containers.
    GPUs: remove unused ones, share (MIG profile or time-slicing) lightly used ones. Spot: workloads
    that pass the readiness checks. JSON/CSV keep base units (cores, bytes, devices); the table
    shows human units.

    Examples:
      kubetune recommend
      kubetune recommend --risk 0.01 --format json --out recs.json
      kubetune recommend --patches patches/ --base ../base
      kubetune recommend --kind rightsize --skipped
    """
    from recommenders.api import KINDS as KNOWN_KINDS
    from recommenders.api import recommend as run
    from recommenders.api import recommendations_frame, skip_summary
    from recommenders.base_manifests import resolve_base
    from analyzer.envelope import window_of
    from recommenders.patches import recommendation_summary, write_patches
    from recommenders.policy import RightsizePolicy

    kinds = tuple(k.strip() for part in (kind or list(KNOWN_KINDS)) for k in part.split(",") if k.strip())
    if patches is not None:
        check_out(patches, overwrite)
        local = resolve_base(patches, base) if base else None
        if local is not None and not local.exists():
            raise InputError(f"--base {base} does not exist: it is resolved from the --patches directory, to {local}.")
    policy = RightsizePolicy(
        risk=risk, risk_mode=risk_mode.value, max_risk=max(max_risk, risk), memory_risk=memory_risk,
        memory_margin=memory_margin, max_memory_margin=max(0.5, memory_margin), cpu_limit_ratio=cpu_limit_ratio,
        memory_limit="keep" if keep_memory_limit else "request", min_change=min_change,
        min_history_hours=parse_duration(min_history) / 3600.0, hpa="allow" if allow_hpa else "skip",
        use_forecast=use_forecast,
    )
    from recommenders.gpu_settings import GpuSettings

    # hand-wired until #13's generated flags land: --min-history is the knob all recommenders share
    gpu_settings = GpuSettings(min_history_hours=policy.min_history_hours, margin=gpu_margin, fb_risk=gpu_fb_risk,
                               busy_risk=gpu_busy_risk, sharing=gpu_sharing)
    snap = load_source(source, note=note)
    if snap.usage.is_empty():
        raise InputError("this snapshot has no usage samples to recommend from (collect from Prometheus or import usage).")
    with Steps("recommend") as steps, steps.stage("recommenders", total=len(kinds)) as stage:
        def tell(kind: str, done: int, total: int) -> None:
            stage.advance(done - stage.completed)
            stage.describe(f"recommenders ({kind})")
        result = run(snap, policy, kinds=kinds, pricing_file=pricing, spot_placement=spot_placement.value,
                     gpu_settings=gpu_settings, progress=tell)
    for line in result.notes:
        note(f"note: {line}")
    if patches is not None:
        written_patches = write_patches(result, patches, base=base, source=source.describe(),
                                        window=window_of(snap.manifest))
        layout = "kustomization.yaml" if base else "kustomize components (kind: Component)"
        written(f"Wrote {len(written_patches.files)} patch(es) and {layout} to {patches}.")
        if written_patches.unmatched:
            warn(f"{len(written_patches.unmatched)} patch(es) do not match --base and were set aside in "
                 f"{patches / 'unmatched'}, e.g. {written_patches.unmatched[0]}.")
    frame = recommendations_frame(result, include_skipped=skipped)
    if format is Format.json or format is Format.yaml:
        build = document_for(source, snap, notes=result.notes, summary=recommendation_summary(result, skipped))
        emit_document(build([r.to_dict() for r in result.recommendations]), format, out)
    elif not is_table(format):
        emit(frame, format, out=out)
    else:
        shown, columns = recommendation_table(frame)
        total = result.monthly_saving_usd
        title = (f"{len(result.recommendations)} recommendation(s), net ${total:,.2f}/month "
                 f"({len(result.skipped)} skipped{'' if skipped else '; --skipped lists them'})")
        emit(shown, format, title=title, columns=columns, out=out)
        if not skipped and result.skipped and out is None:
            note("Skipped most often: " + "; ".join(skip_summary(result)))
    gpu = result.cluster_notes.get("gpu")
    if isinstance(gpu, dict) and gpu.get("gpus_released") is not None and out is None and is_table(format):
        note(f"GPUs: {gpu['gpus_needed_now']} in use by GPU workloads now, about {gpu['gpus_needed_after']} after the "
             f"GPU changes; up to {gpu['gpus_released']} could be released (packing estimate).")
