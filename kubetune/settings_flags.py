"""CLI flags generated from the recommenders' Settings dataclasses (``recommenders.contract``).

One flag per Settings field; a field name that several recommenders share is one flag, applied to
each of them. The flag is ``--`` + the recommender's ``flag_prefix`` (not for shared fields) + the
field name with dashes, ``_hours`` dropped for fields in hours (``min_history_hours`` ->
``--min-history``), unless the field's metadata names it (``flag``). Values are read in the
field's unit: hours take a duration (``24h``, ``3d``; a bare number is hours), bytes a memory
quantity (``512Mi``), cores a CPU quantity (``250m``); a ``switch`` field is an on/off flag that
sets the field to the switch value.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Annotated, Any

import typer

from analyzer.errors import InputError
from analyzer.units import format_cpu, format_memory, parse_cpu, parse_duration, parse_memory
from kubetune.options import extend_signature


@dataclass
class Flag:
    """One generated flag: its name, the Python parameter, and the (recommender, field) pairs it sets."""

    flag: str
    param: str
    targets: list[tuple[str, dataclasses.Field]]
    annotation: Any
    default: Any
    parse: Callable[[Any], Any]


def _hours(text: str | float) -> float:
    raw = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return float(raw)
    return parse_duration(raw) / 3600.0


def _show_hours(h: float) -> str:
    return f"{h:g}h"


METAVARS = {"hours": "DURATION", "bytes": "QUANTITY", "cores": "CPU", "fraction": "FRACTION", "ratio": "RATIO"}


def _reader(f: dataclasses.Field, hint: Any, flag: str) -> tuple[Any, Callable[[Any], Any], Callable[[Any], Any]]:
    """(CLI type, parse CLI value -> field value, show default) for one field."""
    unit = f.metadata.get("unit")
    base = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = base[0] if len(base) == 1 else hint
    optional = type(None) in typing.get_args(hint)
    if unit == "hours" and kind in (float, int):
        return str, (lambda v: None if optional and str(v).strip().lower() in ("none", "off") else _hours(v)), _show_hours
    if unit == "bytes" and kind in (float, int):
        return str, parse_memory, format_memory
    if unit == "cores" and kind in (float, int):
        return str, parse_cpu, format_cpu
    if f.metadata.get("choices"):
        choices = enum.Enum(flag.strip("-").title().replace("-", ""), [(c, c) for c in f.metadata["choices"]], type=str)
        return choices, lambda v: v.value if isinstance(v, enum.Enum) else v, lambda v: v
    if kind in (bool, int, float, str):
        return kind, lambda v: v, lambda v: v
    return str, lambda v: v, lambda v: v


def _flag_name(rec: Any, f: dataclasses.Field, shared: bool) -> str:
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    name = f.name.removesuffix("_hours") if f.metadata.get("unit") == "hours" else f.name
    return "--" + ("" if shared else rec.flag_prefix) + name.replace("_", "-")


def settings_flags(recommenders: list[Any]) -> list[Flag]:
    """The flags for these recommender classes, in registration and field order."""
    owners: dict[str, list[Any]] = {}
    for rec in recommenders:
        for f in fields(rec.Settings):
            owners.setdefault(f.name, []).append(rec)
    flags: dict[str, Flag] = {}
    for rec in recommenders:
        hints = typing.get_type_hints(rec.Settings)
        for f in fields(rec.Settings):
            shared = len(owners[f.name]) > 1
            name = _flag_name(rec, f, shared)
            if name in flags:
                flags[name].targets.append((rec.name, f))
                if flags[name].default is not None and f.default != flags[name].targets[0][1].default:
                    flags[name].default = None  # each recommender keeps its own default
                continue
            if not f.metadata.get("help"):
                raise TypeError(f"{rec.Settings.__name__}.{f.name} has no help in its field metadata")
            panel = "Shared policy" if shared else rec.help_panel
            unit = f.metadata.get("unit")
            help_text = f.metadata["help"]
            param = "opt_" + name.strip("-").replace("-", "_")
            if "switch" in f.metadata:
                on = f.metadata["switch"]
                annotation = Annotated[bool, typer.Option(name, help=help_text, rich_help_panel=panel)]
                flags[name] = Flag(name, param, [(rec.name, f)], annotation, False,
                                   lambda v, on=on, off=f.default: on if v else off)
                continue
            cli_type, parse, show = _reader(f, hints[f.name], name)
            optional = f.default is None
            annotation = Annotated[
                (cli_type | None) if optional else cli_type,
                typer.Option(name if cli_type is not bool else f"{name}/--no-{name.removeprefix('--')}",
                             help=help_text, rich_help_panel=panel, show_default=True,
                             metavar=METAVARS.get(unit) if cli_type is not bool else None),
            ]
            if f.default is None:
                default = None
            elif cli_type is str and show is not None and not isinstance(f.default, str):
                default = show(f.default)
            elif isinstance(cli_type, type) and issubclass(cli_type, enum.Enum):
                default = cli_type(f.default)
            else:
                default = f.default
            flags[name] = Flag(name, param, [(rec.name, f)], annotation, default,
                               lambda v, parse=parse: None if v is None else parse(v))
    return list(flags.values())


def build_settings(recommenders: list[Any], flags: list[Flag], values: dict[str, Any]) -> dict[str, Any]:
    """Settings instances per recommender name from the parsed flag values (each class checks itself)."""
    per: dict[str, dict[str, Any]] = {rec.name: {} for rec in recommenders}
    for flag in flags:
        raw = values[flag.param]
        if raw is None:
            continue  # unset optional / shared with differing defaults: each keeps its own default
        try:
            value = flag.parse(raw)
        except InputError as exc:
            raise InputError(f"{flag.flag}: {exc}") from None
        for rec_name, f in flag.targets:
            per[rec_name][f.name] = value
    out = {}
    for rec in recommenders:
        make = getattr(rec.Settings, "from_options", None)
        out[rec.name] = make(**per[rec.name]) if make else rec.Settings(**per[rec.name])
    return out


def with_settings(recommenders: list[Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add a flag per Settings field to a command; it receives ``settings: dict[name, Settings]``."""
    flags = settings_flags(recommenders)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        extra = [inspect.Parameter(fl.param, inspect.Parameter.KEYWORD_ONLY, default=fl.default,
                                   annotation=fl.annotation) for fl in flags]
        signature, annotations = extend_signature(func, extra, drop=("settings",))

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            values = {fl.param: kwargs.pop(fl.param) for fl in flags}
            return func(settings=build_settings(recommenders, flags, values), **kwargs)

        command.__signature__ = signature  # type: ignore[attr-defined]
        command.__annotations__ = annotations
        return command

    return decorate
