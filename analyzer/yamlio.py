"""YAML in and out with one library, ruamel.yaml (the PR bot needs its round-trip editing).

``dump``/``dump_all`` write block-style YAML in the objects' key order (plain data: dicts, lists,
strings, numbers), quoting every string a YAML 1.1 reader would take for something else
(``"yes"``, ``"on"``, ``"0123"``: Kubernetes' YAML is 1.1); ``load``/``load_all`` read it safely.
``times_as_strings=True`` keeps timestamps as the strings the Kubernetes API's JSON has.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import YAMLError
from ruamel.yaml.resolver import VersionedResolver

__all__ = ["YAMLError", "dump", "dump_all", "load", "load_all"]


class _Yaml11(VersionedResolver):
    """Quote what YAML 1.1 readers (kubectl, kustomize, PyYAML) would not read as a string: yes, on, y, NO."""

    def __init__(self, version=None, loader=None):
        super().__init__(version=(1, 1), loader=loader)


def _writer() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.Resolver = _Yaml11
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False  # keep the objects' key order
    y.width = 4096  # long strings stay on one line (comments and reasons are read by people)
    # non-ASCII as escapes in double quotes: ruamel writes a NEL or LINE SEPARATOR inside a name as a
    # raw line break, which YAML 1.1 readers (PyYAML, older kustomize) read back as a space
    y.allow_unicode = False
    return y


class _StringTimes(SafeConstructor):
    """Safe constructor that leaves timestamps as strings."""


_StringTimes.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def _reader(times_as_strings: bool) -> YAML:
    y = YAML(typ="safe", pure=True)
    if times_as_strings:
        y.Constructor = _StringTimes
    return y


def dump(data: Any) -> str:
    buf = io.StringIO()
    _writer().dump(data, buf)
    return buf.getvalue()


def dump_all(documents: list[Any]) -> str:
    buf = io.StringIO()
    _writer().dump_all(documents, buf)
    return buf.getvalue()


def load(text: str, *, times_as_strings: bool = False) -> Any:
    return _reader(times_as_strings).load(text)


def load_all(text: str, *, times_as_strings: bool = False) -> list[Any]:
    return list(_reader(times_as_strings).load_all(text))
