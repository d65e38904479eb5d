"""Validate custom resources offline the way an API server with the upstream CRDs would.

For each object: the CRD's served version is found by group, version and kind; the schema's
defaults are applied (as the API server does before validating); the openAPIV3Schema is
checked as JSON Schema with unknown fields refused wherever the CRD does not say
x-kubernetes-preserve-unknown-fields; then every x-kubernetes-validations rule on the path of
the object is evaluated with cel-python, `self` bound to the value at that node; lists of
x-kubernetes-list-type set or map are checked for duplicates.

What is not evaluated, and reported as such: transition rules (those reading `oldSelf`: the
API server runs them on updates only, never on create), and any rule whose CEL uses a function
cel-python lacks and this module does not supply (recorded in `Report.unsupported`; the tests
require that list to be empty). Not modelled: CEL cost limits, `messageExpression`, and the
`format` keyword (int32, date-time, ...).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from celpy import celtypes

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# CEL's reserved words: Kubernetes exposes properties with these names as __name__.
CEL_RESERVED = {
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
}

OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["name"],
    "additionalProperties": False,
}


@dataclasses.dataclass
class Report:
    errors: list[str] = dataclasses.field(default_factory=list)
    evaluated: list[str] = dataclasses.field(default_factory=list)
    transition_rules: list[str] = dataclasses.field(default_factory=list)
    unsupported: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Definition:
    group: str
    kind: str
    version: str
    namespaced: bool
    schema: dict[str, Any]


def load_definitions(crds: Path) -> dict[tuple[str, str, str], Definition]:
    """(group, version, kind) -> the served version's schema, from every CRD under crds."""
    found: dict[tuple[str, str, str], Definition] = {}
    for path in sorted(crds.rglob("*.yaml")):
        with path.open() as handle:
            for doc in yaml.load_all(handle, Loader=_LOADER):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    if not version.get("served"):
                        continue
                    found[(spec["group"], version["name"], spec["names"]["kind"])] = Definition(
                        group=spec["group"],
                        kind=spec["names"]["kind"],
                        version=version["name"],
                        namespaced=spec["scope"] == "Namespaced",
                        schema=version["schema"]["openAPIV3Schema"],
                    )
    return found


# -- JSON Schema --------------------------------------------------------------------------


def to_json_schema(schema: dict[str, Any], top: bool = False) -> dict[str, Any]:
    """An OpenAPI v3 structural schema as a Draft 4 JSON Schema, unknown fields refused."""
    out: dict[str, Any] = {}
    for name, value in schema.items():
        if name in {"description", "x-kubernetes-validations", "default", "format", "example"}:
            continue
        if name.startswith("x-kubernetes-"):
            continue
        if name == "nullable":
            continue
        if name == "properties":
            out["properties"] = {k: to_json_schema(v) for k, v in value.items()}
        elif name == "items":
            out["items"] = to_json_schema(value)
        elif name == "additionalProperties":
            out["additionalProperties"] = (
                to_json_schema(value) if isinstance(value, dict) else value
            )
        elif name in {"anyOf", "oneOf", "allOf"}:
            out[name] = [to_json_schema(v) for v in value]
        elif name == "not":
            out["not"] = to_json_schema(value)
        else:
            out[name] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if schema.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        for field in ("apiVersion", "kind"):
            props.setdefault(field, {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    is_object = schema.get("type") == "object"
    if (
        is_object
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if top:
        out.setdefault("properties", {})["metadata"] = OBJECT_META
        out["required"] = sorted({*out.get("required", []), "apiVersion", "kind", "metadata"})
    return out


@cache
def _validator(definition_id: int) -> jsonschema.Draft4Validator:
    definition = _DEFINITIONS[definition_id]
    schema = to_json_schema(definition.schema, top=True)
    return jsonschema.Draft4Validator(schema)


_DEFINITIONS: dict[int, Definition] = {}


# -- defaults -----------------------------------------------------------------------------


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Fill in the schema's defaults, as the API server does before validation."""
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(value[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in list(value):
                if name not in (schema.get("properties") or {}):
                    value[name] = apply_defaults(value[name], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


# -- CEL ----------------------------------------------------------------------------------


def _escape(name: str) -> str:
    if name in CEL_RESERVED:
        return f"__{name}__"
    return (
        name.replace("__", "__underscores__")
        .replace(".", "__dot__")
        .replace("-", "__dash__")
        .replace("/", "__slash__")
    )


def to_cel_value(value: Any, schema: dict[str, Any]) -> Any:
    """The JSON value as CEL sees it: object properties by their escaped names."""
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        converted: dict[str, Any] = {}
        for name, item in value.items():
            if props is not None and name in props:
                converted[_escape(name)] = to_cel_value(item, props[name])
            elif isinstance(extra, dict):
                converted[name] = to_cel_value(item, extra)
            else:
                converted[name] = item
        return converted
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [to_cel_value(item, schema["items"]) for item in value]
    return value


def _split(text: celtypes.StringType, separator: celtypes.StringType) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(part) for part in str(text).split(separator)])


def _upper_ascii(text: celtypes.StringType) -> celtypes.StringType:
    return celtypes.StringType("".join(c.upper() if c.isascii() else c for c in str(text)))


def _lower_ascii(text: celtypes.StringType) -> celtypes.StringType:
    return celtypes.StringType("".join(c.lower() if c.isascii() else c for c in str(text)))


# Kubernetes' CEL libraries beyond the standard ones that the CRDs' rules use.
KUBERNETES_FUNCTIONS = {"split": _split, "upperAscii": _upper_ascii, "lowerAscii": _lower_ascii}
_ENV = celpy.Environment()
_FUNCTION_CALL = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)\(")
KNOWN_FUNCTIONS = {
    "has",
    "size",
    "all",
    "exists",
    "exists_one",
    "filter",
    "map",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "duration",
    "timestamp",
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "type",
    "dyn",
    *KUBERNETES_FUNCTIONS,
}


@cache
def _program(rule: str) -> celpy.Runner:
    return _ENV.program(_ENV.compile(rule), functions=KUBERNETES_FUNCTIONS)


def check_list_type(value: list[Any], schema: dict[str, Any], path: str, report: Report) -> None:
    """x-kubernetes-list-type: set items and map keys are unique, as the API server checks."""
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        seen = [repr(item) for item in value]
        if len(seen) != len(set(seen)):
            report.errors.append(f"{path}: duplicate items in a list of type set")
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        items_schema = schema.get("items") or {}
        defaults = {
            k: (items_schema.get("properties") or {}).get(k, {}).get("default") for k in keys
        }
        tuples = [tuple(item.get(k, defaults[k]) for k in keys) for item in value]
        if len(tuples) != len(set(map(repr, tuples))):
            report.errors.append(f"{path}: duplicate keys {keys} in a list of type map")


def run_rules(value: Any, schema: dict[str, Any], path: str, report: Report) -> None:
    """Evaluate every x-kubernetes-validations rule on the path of value, depth first, and
    the list-type uniqueness the API server enforces."""
    if isinstance(value, list):
        check_list_type(value, schema, path, report)
    for validation in schema.get("x-kubernetes-validations") or []:
        rule = validation["rule"]
        where = f"{path or '<root>'}: {rule}"
        if "oldSelf" in rule:
            report.transition_rules.append(where)
            continue
        unknown = set(_FUNCTION_CALL.findall(rule)) - KNOWN_FUNCTIONS
        if unknown:
            report.unsupported.append(f"{where} (functions {sorted(unknown)})")
            continue
        try:
            result = _program(rule).evaluate(
                {"self": celpy.json_to_cel(to_cel_value(value, schema))}
            )
        except Exception as exc:  # a CEL error is a refused object, as in the API server
            report.errors.append(f"{where}: evaluation error {exc!r}")
            continue
        if isinstance(result, Exception):
            report.errors.append(f"{where}: evaluation error {result!r}")
            continue
        report.evaluated.append(where)
        if not (isinstance(result, celtypes.BoolType) and bool(result)):
            message = validation.get("message", "rule failed")
            report.errors.append(f"{where}: {message} (got {result!r})")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if name in props:
                run_rules(item, props[name], f"{path}.{name}", report)
            elif isinstance(extra, dict):
                run_rules(item, extra, f"{path}[{name!r}]", report)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for position, item in enumerate(value):
            run_rules(item, schema["items"], f"{path}[{position}]", report)


# -- entry point --------------------------------------------------------------------------


class CustomResources:
    def __init__(self, crds: Path) -> None:
        self.definitions = load_definitions(crds)
        for definition in self.definitions.values():
            _DEFINITIONS[id(definition)] = definition

    def groups(self) -> set[str]:
        return {group for group, _, _ in self.definitions}

    def definition(self, doc: dict[str, Any]) -> Definition | None:
        group, _, version = doc["apiVersion"].rpartition("/")
        return self.definitions.get((group, version, doc["kind"]))

    def validate(self, doc: dict[str, Any]) -> Report:
        report = Report()
        definition = self.definition(doc)
        if definition is None:
            report.errors.append(f"no served CRD version for {doc['apiVersion']} {doc['kind']}")
            return report
        if definition.namespaced != ("namespace" in doc["metadata"]):
            report.errors.append(
                f"{doc['kind']} is {'namespaced' if definition.namespaced else 'cluster-scoped'}"
                f" but metadata.namespace is {'missing' if definition.namespaced else 'set'}"
            )
        obj = apply_defaults(copy.deepcopy(doc), definition.schema)
        for error in _validator(id(definition)).iter_errors(obj):
            where = ".".join(str(p) for p in error.absolute_path) or "<root>"
            report.errors.append(f"{where}: {error.message}")
        if not report.errors:
            # At the root, CEL sees metadata.name and metadata.generateName only.
            meta = {k: v for k, v in obj["metadata"].items() if k in {"name", "generateName"}}
            run_rules({**obj, "metadata": meta}, definition.schema, "", report)
        return report
