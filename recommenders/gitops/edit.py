"""Edit one manifest in place so that ``git diff`` shows only the changed fields.

ruamel.yaml's round-trip loader finds each node and its line and column; the change is then
spliced into the original text (one token, or the lines of one entry), and the text is parsed
again before the next change. Nothing else is re-serialised, so comments, key order, quoting,
indentation, blank lines and document markers stay byte for byte. New values take the style the
file already uses for that field (``500m`` stays millicores, ``1Gi`` stays binary, quotes stay);
new blocks (a missing ``limits:``, a toleration list) are dumped by ruamel with the file's own
indentation. A strategic-merge pod-spec fragment (``Recommendation.pod_spec_patch``) is applied
the way the API server would: containers by name, maps key by key, ``null`` removes a key.
"""

from __future__ import annotations

import io
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from analyzer.errors import InputError
from analyzer.units import format_quantity_like


class EditError(InputError):
    """A manifest kubetune cannot edit safely (unparseable, templated, container missing...)."""


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    return y


def load_documents(text: str, where: str) -> list[Any]:
    """All YAML documents of a file, round-trip; one sentence naming the file on bad input."""
    if "{{" in text and "}}" in text:
        raise EditError(f"{where} is templated ({{{{ }}}}): kubetune edits plain YAML, kustomize and Helm values "
                        "files, not templates (map the chart's values file in kubetune-gitops.yaml, or leave the "
                        "file out with --path).")
    try:
        return list(_yaml().load_all(text))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise EditError(f"{where} is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}.") from None


# ---- quantities in the file's own style -------------------------------------------------------

def _styled(template: Any, text: str) -> Any:
    """``text`` as a scalar of the same YAML type/quoting as ``template``."""
    if isinstance(template, DoubleQuotedScalarString):
        return DoubleQuotedScalarString(text)
    if isinstance(template, SingleQuotedScalarString):
        return SingleQuotedScalarString(text)
    if isinstance(template, bool) or not isinstance(template, (int, float)):
        return text
    return int(text) if re.fullmatch(r"\d+", text) else float(text)


def style_quantity(resource: str, new: Any, old: Any) -> Any:
    """The proposed quantity ``new`` written the way ``old`` (or a sibling) is written, as the same
    YAML scalar type and quoting; never less than ``new``."""
    if new is None or old is None:
        return new
    try:
        return _styled(old, format_quantity_like(resource, new, str(old)))
    except InputError:
        return new


# ---- locating tokens and entries ----------------------------------------------------------------

def _token_end(line: str, col: int, flow: bool) -> int:
    """End column (exclusive) of the scalar that starts at ``col``."""
    ch = line[col:col + 1]
    if ch in ("'", '"'):
        i = col + 1
        while i < len(line):
            if ch == "'" and line[i] == "'" and line[i + 1:i + 2] == "'":
                i += 2
                continue
            if ch == '"' and line[i] == "\\":
                i += 2
                continue
            if line[i] == ch:
                return i + 1
            i += 1
        raise EditError("a quoted value spans several lines")
    end = len(line)
    hash_at = line.find(" #", col)
    if hash_at >= 0:
        end = hash_at
    if flow:
        stop = re.search(r"[,}\]]", line[col:end])
        if stop:
            end = col + stop.start()
    return len(line[:end].rstrip())


def _block_end(lines: list[str], start: int, col: int, seq_at_col: bool = False) -> int:
    """Last line of the block that starts on ``start`` with its key (or ``-``) at ``col``: the lines
    after it that are indented deeper (block scalars, nested blocks), or, for a sequence written
    at its key's column, its ``- `` items; trailing comments and blank lines are not part of it."""
    end = start
    for i in range(start + 1, len(lines)):
        stripped = lines[i].lstrip()
        if not stripped.strip() or stripped.startswith("#"):
            continue
        indent = len(lines[i]) - len(stripped)
        if indent > col or (seq_at_col and indent == col and stripped.startswith("- ")):
            end = i
            continue
        break
    return end


def _entry_lines(lines: list[str], parent: CommentedMap, key: str) -> tuple[int, int]:
    """First and last line (inclusive) of ``key: value`` in a block mapping."""
    start, col = parent.lc.key(key)
    value = parent[key]
    return start, _block_end(lines, start, col, isinstance(value, CommentedSeq) and not value.fa.flow_style())


class _Doc:
    """One file's text, and helpers that each make one change and re-parse."""

    def __init__(self, text: str, where: str):
        self.lines = text.splitlines(keepends=True)
        self.where = where
        self.indent, self.offset = _guess_indent(text)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def docs(self) -> list[Any]:
        return load_documents(self.text, self.where)

    def set_scalar(self, parent: CommentedMap, key: str, value: Any) -> None:
        line, col = parent.lc.value(key)
        text = self.lines[line]
        end = _token_end(text, col, bool(parent.fa.flow_style()))
        self.lines[line] = text[:col] + _scalar_text(value) + text[end:]

    def delete_entry(self, parent: CommentedMap, key: str) -> None:
        start, end = _entry_lines(self.lines, parent, key)
        del self.lines[start:end + 1]

    def insert_entry(self, parent: CommentedMap, key: str, value: Any, before: str | None = None) -> None:
        first = next(iter(parent))
        col = parent.lc.key(first)[1]
        if before is not None:
            at = parent.lc.key(before)[0]
        else:
            at = _entry_lines(self.lines, parent, list(parent.keys())[-1])[1] + 1
        self.lines[at:at] = self.render(key, value, col)

    def replace_entry(self, parent: CommentedMap, key: str, value: Any) -> None:
        start, end = _entry_lines(self.lines, parent, key)
        col = parent.lc.key(key)[1]
        self.lines[start:end + 1] = self.render(key, value, col)

    def render(self, key: str, value: Any, col: int) -> list[str]:
        y = YAML(typ="rt")
        y.width = 4096
        y.indent(mapping=self.indent, sequence=self.indent + self.offset, offset=self.offset)
        buf = io.StringIO()
        y.dump({key: value}, buf)
        return [" " * col + line + "\n" for line in buf.getvalue().splitlines()]


def _scalar_text(value: Any) -> str:
    if isinstance(value, DoubleQuotedScalarString):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, SingleQuotedScalarString):
        return "'" + str(value).replace("'", "''") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", text) or text.lower() in ("true", "false", "null", "yes", "no",
                                                                                  "on", "off", "~"):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _guess_indent(text: str) -> tuple[int, int]:
    """The file's mapping indent and the offset of ``-`` under its parent key (0 or the indent)."""
    indent, offset = None, None
    prev_key_col = None
    for line in text.splitlines():
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        col = len(line) - len(stripped)
        if prev_key_col is not None:
            if stripped.startswith("- ") and offset is None:
                offset = col - prev_key_col
            elif col > prev_key_col and indent is None and not stripped.startswith("- "):
                indent = col - prev_key_col
        prev_key_col = (col + 2 if stripped.startswith("- ") else col) if re.match(r"(- )?[^#\s][^:]*:\s*(#.*)?$",
                                                                                   stripped) else None
        if indent is not None and offset is not None:
            break
    return indent or 2, max(0, offset if offset is not None else 0)


# ---- applying a strategic-merge fragment --------------------------------------------------------

_LISTS_BY_NAME = ("containers", "initContainers")


def apply_fragment(text: str, where: str, doc_index: int, spec_path: list[str], fragment: dict[str, Any]) -> str:
    """``text`` with the pod-spec ``fragment`` merged into document ``doc_index`` at ``spec_path``
    (``["spec", "template", "spec"]``; ``[]`` for a Helm values ``resources`` block handled by
    ``set_values``). Raises EditError naming what is missing."""
    doc = _Doc(text, where)

    def node_at(path: list[Any]) -> Any:
        node = doc.docs()[doc_index]
        for step in path:
            if isinstance(step, tuple):  # (list key, container name)
                node = next(c for c in node if isinstance(c, CommentedMap) and c.get("name") == step[1])
            else:
                node = node[step]
        return node

    def merge(path: list[Any], patch: dict[str, Any], resource_hint: str | None = None) -> None:
        # set values first, then remove keys: removing the last key of a block removes the block
        for key, value in sorted(patch.items(), key=lambda kv: kv[1] is None):
            parent = node_at(path)
            if not isinstance(parent, CommentedMap):
                raise EditError(f"{where}: {'.'.join(map(_step, path))} is not a mapping")
            if key in _LISTS_BY_NAME and isinstance(value, list):
                present = parent.get(key)
                names = {c.get("name") for c in present or [] if isinstance(c, CommentedMap)}
                for item in value:
                    if item.get("name") not in names:
                        raise EditError(f"{where}: the workload has no {key[:-1]} named {item.get('name')!r}")
                    merge(path + [key, (key, item["name"])], {k: v for k, v in item.items() if k != "name"})
                continue
            set_key(path, parent, key, value, resource_hint or (key if path and path[-1] in ("requests", "limits")
                                                                 else None))

    def set_key(path: list[Any], parent: CommentedMap, key: str, value: Any, resource: str | None) -> None:
        flow = bool(parent.fa.flow_style())
        current = parent.get(key) if key in parent else _MISSING
        if flow:  # rewrite the enclosing entry as a block, merged
            if len(path) == 0:
                raise EditError(f"{where}: the document is in flow style")
            grand = node_at(path[:-1])
            merged = _merged_plain(parent, {key: value})
            doc.replace_entry(grand, path[-1], merged)
            return
        if value is None:
            if current is not _MISSING:
                if len(parent) == 1 and path and isinstance(path[-1], str):
                    grand = node_at(path[:-1])
                    if isinstance(grand, CommentedMap) and not grand.fa.flow_style():
                        doc.delete_entry(grand, path[-1])
                        return
                doc.delete_entry(parent, key)
            return
        if isinstance(value, dict):
            if isinstance(current, CommentedMap) and len(current) and not current.fa.flow_style():
                merge(path + [key], value)
            elif current is _MISSING:
                before = "limits" if key == "requests" and "limits" in parent else None
                doc.insert_entry(parent, key, _styled_block(key, value, parent), before=before)
            else:
                base = current if isinstance(current, CommentedMap) else {}
                doc.replace_entry(parent, key, _merged_plain(base, value))
            return
        if isinstance(value, list):
            if current is _MISSING:
                doc.insert_entry(parent, key, value)
            else:
                doc.replace_entry(parent, key, value)
            return
        if current is _MISSING:
            sib = _sibling_style(node_at(path[:-1]) if path else None, resource)
            doc.insert_entry(parent, key, style_quantity(resource, value, sib) if resource else value)
        elif isinstance(current, (CommentedMap, CommentedSeq)):
            doc.replace_entry(parent, key, value)
        else:
            new = style_quantity(resource, value, current) if resource else value
            if str(new) != str(current) or type(new) is not type(current):
                doc.set_scalar(parent, key, new)

    merge(list(spec_path), fragment)
    out = doc.text
    load_documents(out, where)  # the edit must leave valid YAML
    return out


_MISSING = object()


def _step(s: Any) -> str:
    return f"{s[0]}[{s[1]}]" if isinstance(s, tuple) else str(s)


def _merged_plain(base: Any, patch: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in (base or {}).items()}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merged_plain(out[k], v)
        else:
            out[k] = v
    return {k: v for k, v in out.items() if v != {}}


def _styled_block(key: str, value: dict[str, Any], parent: CommentedMap) -> dict[str, Any]:
    """A new ``resources:``/``requests:``/``limits:`` block, quantities styled like the file's."""
    if key in ("requests", "limits"):
        return {r: style_quantity(r, q, _sibling_style(parent, r)) for r, q in value.items() if q is not None}
    if key == "resources":
        out = {k: _styled_block(k, v, CommentedMap()) for k, v in value.items() if isinstance(v, dict)}
        return {k: v for k, v in out.items() if v}
    return value


def _sibling_style(resources: Any, resource: str | None) -> Any:
    """An existing value of ``resource`` under ``requests`` or ``limits`` to copy the style from."""
    if not isinstance(resources, dict) or resource is None:
        return None
    for block in ("requests", "limits"):
        b = resources.get(block)
        if isinstance(b, dict) and b.get(resource) is not None:
            return b[resource]
    return None


def set_values(text: str, where: str, values_path: list[str], resources: dict[str, Any]) -> str:
    """A Helm values file with ``resources`` (a ``{"requests": ..., "limits": ...}`` patch)
    merged at ``values_path`` (e.g. ``["api", "resources"]``); the path must exist."""
    docs = load_documents(text, where)
    node = docs[0] if docs else None
    for i, step in enumerate(values_path[:-1]):
        if not isinstance(node, CommentedMap) or step not in node:
            raise EditError(f"{where} has no {'.'.join(values_path[:i + 1])} (check the helm mapping in kubetune-gitops.yaml)")
        node = node[step]
    if not isinstance(node, CommentedMap):
        raise EditError(f"{where} has no {'.'.join(values_path[:-1])} mapping")
    return apply_fragment(text, where, 0, values_path[:-1], {values_path[-1]: resources})


def append_to_list(text: str, where: str, key: str, item: Any) -> str:
    """``text`` (one top-level mapping, e.g. a kustomization) with ``item`` appended to its ``key``
    list, the list created at the end if missing; unchanged when the item is already there."""
    doc = _Doc(text, where)
    docs = doc.docs()
    top = docs[0] if docs else None
    if not isinstance(top, CommentedMap):
        raise EditError(f"{where} is not a YAML mapping")
    current = top.get(key)
    if isinstance(current, list) and item in current:
        return text
    if current is None or (isinstance(current, CommentedSeq) and (current.fa.flow_style() or not len(current))):
        value = [*(current or []), item]
        if key in top:
            doc.replace_entry(top, key, value)
        else:
            if doc.lines and not doc.lines[-1].endswith("\n"):
                doc.lines[-1] += "\n"
            doc.lines += doc.render(key, value, 0)
        return doc.text
    if not isinstance(current, CommentedSeq):
        raise EditError(f"{where}: {key} is not a list")
    last = len(current) - 1
    line, col = current.lc.item(last)
    end = _block_end(doc.lines, line, col - 2)
    rendered = doc.render("x", [item], 0)[1:]  # the item lines without the "x:" key
    dash = min(len(r) - len(r.lstrip()) for r in rendered if r.strip())
    first_dash = col - 2
    doc.lines[end + 1:end + 1] = [" " * first_dash + r[dash:] if r.strip() else r for r in rendered]
    out = doc.text
    load_documents(out, where)
    return out
