"""`cnncalc schema`: the JSON Schema validates the examples and rejects what cnncalc rejects.

``jsonschema`` is not a dependency, so a small validator for the keywords the schema uses
lives here (type, properties, required, additionalProperties, items, allOf, anyOf, oneOf, $ref,
const, enum, minimum, minItems, maxItems, minProperties, pattern).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnncalc.cli import main
from cnncalc.layers import LAYER_TYPES, canonical_type
from cnncalc.schema import spec_schema
from cnncalc.spec import spec_from_data

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def errors(value: Any, schema: dict, root: dict, path: str = "$") -> list[str]:
    """Every violation of ``schema`` by ``value`` (an empty list: valid)."""
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return errors(value, node, root, path)
    out: list[str] = []
    kind = schema.get("type")
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: not an integer"]
    elif kind == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return [f"{path}: not a number"]
    elif kind is not None and not isinstance(value, TYPES[kind]):
        return [f"{path}: not {kind}"]
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: not in {schema['enum']}")
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        out.append(f"{path}: below {schema['minimum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        out.append(f"{path}: does not match {schema['pattern']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 10**9):
            out.append(f"{path}: wrong length")
        if "items" in schema:
            for i, v in enumerate(value):
                out += errors(v, schema["items"], root, f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{path}: missing {key}")
        if len(value) < schema.get("minProperties", 0):
            out.append(f"{path}: too few properties")
        extra = schema.get("additionalProperties", True)
        for key, v in value.items():
            if key in props:
                out += errors(v, props[key], root, f"{path}.{key}")
            elif extra is False:
                out.append(f"{path}: unknown property {key}")
            elif isinstance(extra, dict):
                out += errors(v, extra, root, f"{path}.{key}")
    for sub in schema.get("allOf", []):
        out += errors(value, sub, root, path)
    for word in ("anyOf", "oneOf"):
        if word in schema:
            results = [errors(value, sub, root, path) for sub in schema[word]]
            passing = sum(not r for r in results)
            if passing == 0:
                out.append(f"{path}: matches none of {word} ({min(results, key=len)[0]})")
            elif word == "oneOf" and passing > 1:
                out.append(f"{path}: matches {passing} of oneOf")
    return out


@pytest.fixture(scope="module")
def schema() -> dict:
    return spec_schema()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(schema, path):
    assert EXAMPLES
    assert errors(yaml.safe_load(path.read_text()), schema, schema) == []


def test_every_layer_type_is_listed(schema):
    mapping = schema["$defs"]["Layer"]["discriminator"]["mapping"]
    assert set(mapping) == {canonical_type(c) for c in LAYER_TYPES}


@pytest.mark.parametrize(
    "layer",
    [
        {"type": "conv2d", "out_channels": 6, "kernel_size": 5, "stide": 2},  # typo
        {"type": "conv2d", "kernel_size": 5},  # out_channels missing
        {"type": "convolution", "out_channels": 6, "kernel_size": 5},  # unknown type
        {"type": "maxpool2d", "kernel_size": 2, "ceil_mode": "yes"},  # not a boolean
        {"out_channels": 6, "kernel_size": 5},  # no type
        {"type": "conv2d", "out_channels": 6},  # neither kernel_size nor k
    ],
)
def test_bad_layers_are_rejected(schema, layer):
    assert errors({"layers": [layer]}, schema, schema)


def test_graph_and_short_fields(schema):
    doc = {
        "input": "3x32x32",
        "blocks": {
            "basic": {
                "args": {"c": None},
                "layers": [{"type": "conv2d", "out_channels": "$c", "k": 3, "p": 1}],
            }
        },
        "layers": [
            {"use": "basic", "c": 8},
            {
                "residual": [{"type": "conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1}],
                "shortcut": "identity",
            },
            {"concat": {"a": [{"type": "relu"}], "b": []}},
            {"type": "relu", "repeat": 2},
        ],
    }
    assert errors(doc, schema, schema) == []
    assert len(spec_from_data(doc).layers) == 5  # and cnncalc reads it
    assert errors({"layers": [], "input": [3, 32]}, schema, schema)  # empty layers
    assert errors({"layers": [{"type": "relu"}], "inputs": [3]}, schema, schema)


def test_cli_prints_the_schema(capsys, schema):
    assert main(["schema"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == schema and err == ""
