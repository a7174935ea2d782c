"""The JSON Schema of a spec, generated from the pydantic layer models in ``layers.py``.

Editors use it to validate and complete YAML/JSON specs (see the README). The layer part is
pydantic's schema of a union of every class in ``layers.LAYER_TYPES`` discriminated on
``type``; the graph part (blocks, residual, add/concat, templates) mirrors ``spec.py``.

The schema is slightly stricter than cnncalc in one respect, stated in its descriptions:
``type`` is listed under its canonical name (``maxpool2d``), while cnncalc also accepts any
capitalisation with ``_``/``-`` ignored (``MaxPool2d``, ``max_pool2d``) and a few aliases
(``dense``, ``fc``, ``bn2d``, …). Template expressions (``$planes``, ``${c * 2}``) are
accepted wherever a value is.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Union

from cnncalc.layers import _ALIASES, FIELD_ALIASES, LAYER_TYPES, canonical_type

SCHEMA_ID = "urn:cnncalc:spec-schema:1"  # an identifier, not a download address

TYPE_NOTE = (
    "Canonical name of the layer type. cnncalc also accepts any capitalisation with '_' "
    "and '-' ignored (MaxPool2d, max_pool2d), and the aliases: "
    + ", ".join(f"{a} → {t}" for a, t in sorted(_ALIASES.items()))
    + "."
)

_EXPR = {"$ref": "#/$defs/Expression"}


def _layer_defs() -> tuple[dict[str, Any], dict[str, Any]]:
    """(pydantic's $defs of every layer model, the discriminated union over them)."""
    from pydantic import Field, TypeAdapter

    union = Annotated[Union[tuple(LAYER_TYPES)], Field(discriminator="type")]  # noqa: UP007
    raw = TypeAdapter(union).json_schema(ref_template="#/$defs/{model}")
    defs = raw.pop("$defs")
    for cls in LAYER_TYPES:
        body = defs[cls.__name__]
        props = body["properties"]
        props["type"]["description"] = TYPE_NOTE
        body["required"] = ["type", *[r for r in body.get("required", []) if r != "type"]]
        body["description"] = (
            body.get("description") or f"torch.nn layer {canonical_type(cls)}."
        ).strip()
        for name in list(props):
            if name != "type":
                props[name] = {"anyOf": [props[name], _EXPR], **_meta(props[name])}
        for short, full in FIELD_ALIASES.items():
            if full in props:
                props[short] = {**copy.deepcopy(props[full]), "description": f"Short for {full}."}
                if full in body["required"]:  # either spelling satisfies it
                    body["required"].remove(full)
                    body.setdefault("allOf", []).append(
                        {"anyOf": [{"required": [full]}, {"required": [short]}]}
                    )
        props["repeat"] = {
            "anyOf": [{"type": "integer", "minimum": 0}, _EXPR],
            "description": "Splice this many copies here ($i is the copy's number).",
        }
    return defs, raw


def _meta(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: prop[k] for k in ("title", "description", "default") if k in prop}


def _block(key: str, body: dict[str, Any], extra: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": text,
        "properties": {
            key: body,
            "name": {"type": "string", "description": "Name of the block (paths, references)."},
            "repeat": {
                "anyOf": [{"type": "integer", "minimum": 0}, _EXPR],
                "description": "Run the block this many times ($i is the copy's number).",
            },
            **extra,
        },
        "required": [key],
        "additionalProperties": False,
    }


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a cnncalc spec file."""
    defs, layer = _layer_defs()
    nodes = {"type": "array", "items": {"$ref": "#/$defs/Node"}}
    branch = {"anyOf": [nodes, {"type": "string", "description": "Name of an earlier output."}]}
    branches = {
        "anyOf": [
            {"type": "array", "items": branch, "minItems": 2},
            {"type": "object", "additionalProperties": branch, "minProperties": 2},
        ]
    }
    split = {
        "anyOf": [
            {"type": "integer", "minimum": 2},
            {"type": "array", "items": {"type": "integer", "minimum": 1}},
            _EXPR,
        ],
        "description": "Cut the input along channels first, one part per branch: a chunk "
        "count (torch.chunk) or the part sizes (torch.split).",
    }
    defs.update(
        {
            "Expression": {
                "type": "string",
                "pattern": r"\$",
                "description": "A template argument or expression: $planes, ${c * 2}.",
            },
            "Layer": {**layer, "description": "One torch.nn layer; fields follow its constructor."},
            "Node": {
                "anyOf": [
                    {"$ref": "#/$defs/Layer"},
                    _block(
                        "layers",
                        nodes,
                        {
                            "from": {
                                "type": "string",
                                "description": "Start from this earlier named "
                                "output instead of the previous layer's.",
                            },
                            "output": {
                                "type": "boolean",
                                "description": "A side output (auxiliary head): "
                                "reported as an output; the main flow continues with its input.",
                            },
                        },
                        "A named sequence of layers (nn.Sequential).",
                    ),
                    _block(
                        "residual",
                        nodes,
                        {
                            "shortcut": {
                                "anyOf": [{"enum": ["identity", "auto"]}, nodes, _EXPR],
                                "description": "identity (default), auto (1×1 conv + BN "
                                "when shapes differ) or a list of layers.",
                            }
                        },
                        "y = body(x) + shortcut(x).",
                    ),
                    _block(
                        "add",
                        branches,
                        {"split": split},
                        "Branches from the same input, added element-wise.",
                    ),
                    _block(
                        "concat",
                        branches,
                        {"split": split},
                        "Branches from the same input, concatenated along channels.",
                    ),
                    _block(
                        "mul",
                        branches,
                        {"split": split},
                        "Branches from the same input, multiplied element-wise with broadcasting "
                        "(squeeze-and-excitation: C×1×1 ⊙ C×H×W).",
                    ),
                    {
                        "type": "object",
                        "description": "Use a template declared under 'blocks'; the other "
                        "keys are its arguments.",
                        "properties": {"use": {"type": "string"}, "name": {"type": "string"}},
                        "required": ["use"],
                    },
                ]
            },
            "Shape": {
                "anyOf": [
                    {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1},
                        "minItems": 1,
                        "maxItems": 4,
                    },
                    {"type": "string", "pattern": r"^\s*\d+(\s*[x×,*]\s*\d+)*\s*$"},
                ],
                "description": "Input without the batch: C,L / C,H,W / C,D,H,W, e.g. 3x224x224.",
            },
        }
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "cnncalc spec",
        "description": "A network for cnncalc: optional name and input shape, templates under "
        "'blocks', and its layers. " + TYPE_NOTE.replace("Canonical name of the layer type. ", ""),
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "input": {"$ref": "#/$defs/Shape"},
            "blocks": {
                "type": "object",
                "description": "Templates: name → {args, layers}.",
                "additionalProperties": {
                    "anyOf": [
                        nodes,
                        {
                            "type": "object",
                            "properties": {
                                "args": {
                                    "anyOf": [
                                        {"type": "object"},
                                        {"type": "array", "items": {"type": "string"}},
                                    ]
                                },
                                "layers": nodes,
                            },
                            "required": ["layers"],
                            "additionalProperties": False,
                        },
                    ]
                },
            },
            "layers": {**nodes, "minItems": 1},
        },
        "required": ["layers"],
        "additionalProperties": False,
        "$defs": defs,
    }
