"""`kubetune recommend`: right-sizing, GPU and spot recommendations, and their patches."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analyzer.errors import InputError
from kubetune.console import check_out, err_console, note, out_console, spinner
from kubetune.options import with_source
from kubetune.output import Format, emit, emit_document
from kubetune.settings_flags import with_settings
from kubetune.sources import Source, load_source
from kubetune.tables import recommendation_table
from recommenders.contract import registered


RECOMMENDERS = registered()


@with_source
@with_settings(RECOMMENDERS)
def recommend(
    source: Source,
    settings: dict,
    patches: Annotated[Path | None, typer.Option(
        help="Write one strategic-merge patch per workload + kustomization.yaml (+ cluster/ extras, "
             "recommendations.json) into this directory.", rich_help_panel="Output")] = None,
    base: Annotated[str | None, typer.Option(
        help="Path to your workloads' manifests, relative to --patches, listed as the kustomization's resource "
             "(so `kubectl kustomize DIR` builds the patched manifests).", rich_help_panel="Output")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --patches directory.", rich_help_panel="Output")] = False,
    kind: Annotated[list[str] | None, typer.Option(
        "--kind", help=f"Only these recommenders: {', '.join(r.name for r in RECOMMENDERS)} (repeat or "
                       "comma-separate; default all).")] = None,
    pricing: Annotated[Path | None, typer.Option(
        help="Your prices (YAML), as for `kubetune cost`: rates and the spot discount every recommender uses.")] = None,
    skipped: Annotated[bool, typer.Option("--skipped", help="Also list what got no recommendation, and why.")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="table, json, yaml, csv or parquet.")] = Format.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the list to this file instead of stdout.")] = None,
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
      kubetune recommend --memory-policy burstable --node-size 32Gi/8
    """
    from recommenders.api import recommend as run
    from recommenders.api import recommendations_frame, skip_summary
    from recommenders.base_manifests import resolve_base
    from recommenders.patches import write_patches

    kinds = tuple(k.strip() for part in (kind or [r.name for r in RECOMMENDERS]) for k in part.split(",") if k.strip())
    if patches is not None:
        check_out(patches, overwrite)
        local = resolve_base(patches, base) if base else None
        if local is not None and not local.exists():
            raise InputError(f"--base {base} does not exist: it is resolved from the --patches directory, to {local}.")
    snap = load_source(source, note=note)
    if snap.usage.is_empty():
        raise InputError("this snapshot has no usage samples to recommend from (collect from Prometheus or import usage).")
    with spinner() as progress:
        progress.add_task("recommending", total=None)
        result = run(snap, settings, kinds=kinds, pricing_file=pricing)
    for line in result.notes:
        err_console.print(f"[yellow]note:[/yellow] {line}", highlight=False)
    if patches is not None:
        written = write_patches(result, patches, base=base)
        err_console.print(f"Wrote {len(written.files)} patch(es) and kustomization.yaml to {patches}.")
        if written.unmatched:
            err_console.print(f"[yellow]warning:[/yellow] {len(written.unmatched)} patch(es) do not match --base and "
                              f"were set aside in {patches / 'unmatched'}, e.g. {written.unmatched[0]}.", highlight=False)
    frame = recommendations_frame(result, include_skipped=skipped)
    if format is Format.json or format is Format.yaml:
        rows = [r.to_dict() for r in result.recommendations]
        if skipped:
            rows += [s.row() for s in result.skipped]
        emit_document(rows, format, out)
    elif format is not Format.table:
        emit(frame, format, out=out)
    else:
        shown, formatters = recommendation_table(frame)
        total = result.monthly_saving_usd
        title = (f"{len(result.recommendations)} recommendation(s), net ${total:,.2f}/month "
                 f"({len(result.skipped)} skipped{'' if skipped else '; --skipped lists them'})")
        emit(shown, Format.table, title=title, formatters=formatters, out=out, console=out_console)
        if not skipped and result.skipped and out is None:
            note("Skipped most often: " + "; ".join(skip_summary(result)))
    gpu = result.cluster_notes.get("gpu")
    if isinstance(gpu, dict) and gpu.get("gpus_released") is not None and out is None and format is Format.table:
        note(f"GPUs: {gpu['gpus_needed_now']} in use by GPU workloads now, about {gpu['gpus_needed_after']} after the "
              f"GPU changes; up to {gpu['gpus_released']} could be released (packing estimate).")
