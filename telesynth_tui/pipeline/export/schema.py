"""The column types of each layout (Arrow), for parquet files and for the `dataset_info`
features of a dataset card, so `datasets` reads a null column with its real type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from telesynth_tui.pipeline.export.records import FLOAT_SCORES, Shape

if TYPE_CHECKING:
    import pyarrow as pa


def schema(shape: Shape) -> pa.Schema:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    messages = pa.list_(message)
    strings, ints = pa.list_(pa.string()), pa.list_(pa.int64())
    score_fields = [(k, pa.float64()) for k in FLOAT_SCORES]
    scores = pa.struct([*score_fields, ("judge_by", pa.string()), ("agrees_with", strings)])
    metadata = pa.struct(
        [
            ("sample_id", pa.int64()),
            ("run_id", pa.int64()),
            ("run_kind", pa.string()),
            ("plan_id", pa.int64()),
            ("type", pa.string()),
            ("generator", pa.string()),
            ("quality", pa.float64()),
            ("review", pa.string()),
            ("context_ids", strings),
            ("cited", strings),
            ("entity_ids", ints),
            ("relation_ids", ints),
            ("chunk_ids", ints),
            ("formula", pa.string()),
            ("context_items", pa.int64()),
            ("context_trimmed", pa.int64()),
            ("scores", scores),
            ("rejected_sample_id", pa.int64()),
            ("rejected_reason", pa.string()),
        ]
    )
    rubric = pa.list_(pa.struct([("criterion", pa.string()), ("terms", strings)]))
    refs = [
        ("reference_answer", pa.string()),
        ("rubric", rubric),
        ("type", pa.string()),
        ("numeric_answer", pa.float64()),
        ("unit", pa.string()),
        ("tolerance", pa.float64()),
    ]
    openai = shape.target == "openai"
    if shape.fmt == "sft" and shape.layout == "prompt-completion":
        fields = [("prompt", messages), ("completion", messages)]
    elif shape.fmt == "sft":
        fields = [("messages", messages)]
    elif shape.fmt == "rft":
        fields = [("messages", messages), *([] if openai else [("prompt", messages)]), *refs]
    elif openai:
        fields = [
            ("input", pa.struct([("messages", messages)])),
            ("preferred_output", messages),
            ("non_preferred_output", messages),
        ]
    else:
        fields = [("prompt", messages), ("chosen", messages), ("rejected", messages)]
    if not openai:
        fields.append(("metadata", metadata))
    return pa.schema(fields)


def _feature(t: pa.DataType) -> dict[str, Any]:
    """One Arrow type as a `datasets` feature in the YAML of a dataset card."""
    import pyarrow as pa

    if pa.types.is_struct(t):
        return {"struct": [{"name": f.name, **_feature(f.type)} for f in t]}
    if pa.types.is_list(t):
        inner = _feature(t.value_type)
        return {"list": inner["dtype"] if set(inner) == {"dtype"} else inner.get("struct", inner)}
    names = {
        pa.string(): "string",
        pa.int64(): "int64",
        pa.float64(): "float64",
        pa.bool_(): "bool",
    }
    return {"dtype": names[t]}


def features(shape: Shape) -> list[dict[str, Any]]:
    """The layout's columns in the `dataset_info.features` form of a dataset card."""
    return [{"name": f.name, **_feature(f.type)} for f in schema(shape)]
