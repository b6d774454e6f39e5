"""docs/reference/config.md from the pydantic model of device.toml (terminal.config.DeviceConfig).

Every key's type, limits and default come from the model, its meaning from the field's
docstring, its unit from the key's suffix (`_s` seconds, `_ms` milliseconds, `_min` minutes,
`_days` days): the page cannot drift from what `careterm config check` accepts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from careterm.reference.docstrings import attribute_docs, one_line
from terminal.config import DEFAULT_CONFIG_PATH, DeviceConfig

UNITS = {"_ms": "milliseconds", "_s": "seconds", "_min": "minutes", "_days": "days"}
USED_BY = {
    "device": "both roles",
    "mqtt": "both roles",
    "privacy": "both roles",
    "window": "rating pad",
    "rating": "rating pad",
    "buttons": "rating pad",
    "card_reader": "kiosk (patients' cards); rating pad (staff cards)",
    "printer": "kiosk",
    "kiosk": "kiosk",
}
"""Which role reads a section (a kiosk ignores the pad's sections and the other way round)."""
LONG = 60

HEADER = f"""\
# Device configuration reference (`device.toml`)

A device reads one TOML file: `--config F`, else `$CARETERM_CONFIG`, else
`{DEFAULT_CONFIG_PATH}`. Unknown keys and wrong types are errors: `careterm config check F`
prints one line naming the file and the key, and every command exits with status 2 on such
a file. A string is never taken for a number (`keepalive_s = "30"` is refused). Keys a role
does not use are checked all the same and otherwise ignored.

Example, a rating pad (every key not shown keeps its default):

```toml
[device]
id = "pad-w03"
role = "rating_pad"
site = "main"

[mqtt]
url = "mqtts://broker.hospital.local:8883"
ca_file = "/etc/careterm/ca.crt"
cert_file = "/etc/careterm/device.crt"
key_file = "/etc/careterm/device.key"

[window]
id = "W03"
name = "收费处 3号窗口"

[buttons]
driver = "serial"
device = "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0"
```
"""


def unit(name: str) -> str:
    for suffix, what in UNITS.items():
        if name.endswith(suffix):
            return what
    return ""


def toml_value(v: Any, key: str = "") -> str:
    """A default written as TOML (inline), the way it would appear in device.toml."""
    if isinstance(v, BaseModel):
        v = v.model_dump()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"0x{v:04x}" if key.startswith("usb_") else str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        items = [toml_value(x) for x in v]
        if any(isinstance(x, dict | BaseModel) for x in v):
            return "[\n" + "".join(f"  {i},\n" for i in items) + "]"
        return "[" + ", ".join(items) + "]"
    if isinstance(v, dict):
        inner = ", ".join(f"{_key(str(k))} = {toml_value(x)}" for k, x in v.items())
        return "{ " + inner + " }" if inner else "{}"
    return json.dumps(v, ensure_ascii=False)


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", k) else json.dumps(k, ensure_ascii=False)


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    return defs[ref.rsplit("/", 1)[-1]] if ref else prop


def type_text(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A JSON-schema property as words: type and limits."""
    prop = _resolve(prop, defs)
    if "anyOf" in prop:
        return " or ".join(type_text(p, defs) for p in prop["anyOf"])
    if "enum" in prop:
        return "one of " + ", ".join(f"`{json.dumps(e, ensure_ascii=False)}`" for e in prop["enum"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'], ensure_ascii=False)}`"
    kind = prop.get("type", "any")
    if kind == "string":
        out = "string"
        if "pattern" in prop:
            out += f" matching `{prop['pattern']}`"
        lo, hi = prop.get("minLength"), prop.get("maxLength")
        if lo or hi:
            out += f", {lo or 0} to {hi} characters" if hi else f", at least {lo} characters"
        return out
    if kind in ("integer", "number"):
        out = "integer" if kind == "integer" else "number"
        lo, hi = prop.get("minimum"), prop.get("maximum")
        xlo = prop.get("exclusiveMinimum")
        if lo is not None and hi is not None:
            out += f", {lo} to {hi}"
        elif xlo is not None:
            out += f" > {xlo}" + (f", at most {hi}" if hi is not None else "")
        elif lo is not None:
            out += f" ≥ {lo}"
        elif hi is not None:
            out += f" ≤ {hi}"
        return out
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        items = _resolve(prop.get("items", {}), defs)
        what = "tables" if items.get("type") == "object" else type_text(items, defs)
        out = f"list of {what}"
        lo, hi = prop.get("minItems"), prop.get("maxItems")
        if lo is not None and hi is not None:
            out += f", {lo} to {hi} items"
        elif lo:
            out += f", at least {lo} items"
        elif hi is not None:
            out += f", at most {hi} items"
        return out
    if kind == "object":
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict):
            return f"table of name → {type_text(extra, defs)}"
        return "table"
    return kind


def _default(field: FieldInfo, key: str) -> str:
    if field.is_required():
        return "required"
    return toml_value(field.get_default(call_default_factory=True), key)


def section_rows(
    section: str, model: type[BaseModel], missing: list[str]
) -> tuple[list[str], list[str]]:
    """Table rows and the long defaults shown under the table."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    docs = attribute_docs(model)
    rows: list[str] = []
    below: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{section}.{name}"
        meaning = docs.get(name, "") or (field.description or "")
        if not meaning:
            missing.append(key)
        default = _default(field, name)
        if len(default) > LONG or "\n" in default:
            below.append(f"`{key}` defaults to:\n\n```toml\n{name} = {default}\n```\n")
            default = "see below"
        elif default != "required":
            default = f"`{default}`"
        prop = schema["properties"][name]
        rows.append(
            f"| `{name}` | {one_line(type_text(prop, defs))} | {default} | {unit(name)} "
            f"| {one_line(meaning)} |"
        )
        items = _resolve(prop.get("items", {}), defs) if prop.get("type") == "array" else {}
        sub = field.annotation
        nested = _nested_model(sub)
        if items.get("type") == "object" and nested is not None:
            sub_docs = attribute_docs(nested)
            for sub_name, sub_prop in items.get("properties", {}).items():
                sub_meaning = sub_docs.get(sub_name, "")
                if not sub_meaning:
                    missing.append(f"{key}[].{sub_name}")
                rows.append(
                    f"| `{name}[].{sub_name}` | {one_line(type_text(sub_prop, defs))} | "
                    f"{'required' if sub_name in items.get('required', []) else ''} | "
                    f"{unit(sub_name)} | {one_line(sub_meaning)} |"
                )
    return rows, below


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def render(model: type[BaseModel] = DeviceConfig) -> tuple[str, list[str]]:
    """The page, and the keys that have no meaning written (no docstring)."""
    missing: list[str] = []
    out = [HEADER, "\n## Sections\n\n| section | read by | what it holds |\n|---|---|---|\n"]
    sections: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        section_model = field.annotation
        if not (isinstance(section_model, type) and issubclass(section_model, BaseModel)):
            continue
        sections.append((name, section_model))
        out.append(
            f"| [`[{name}]`](#{name.replace('_', '_')}) | {USED_BY.get(name, '')} | "
            f"{one_line((section_model.__doc__ or '').strip())} |\n"
        )
    for name, section_model in sections:
        out.append(f"\n## [{name}]\n\n")
        doc = (section_model.__doc__ or "").strip()
        if doc:
            out.append(" ".join(doc.split()) + "\n\n")
        if name in USED_BY:
            out.append(f"Read by: {USED_BY[name]}.\n\n")
        rows, below = section_rows(name, section_model, missing)
        out.append("| key | type | default | unit | meaning |\n|---|---|---|---|---|\n")
        out.append("\n".join(rows) + "\n")
        for b in below:
            out.append("\n" + b)
    return "".join(out), missing
