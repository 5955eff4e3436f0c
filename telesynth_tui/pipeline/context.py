"""Context assembly: what a QA pair is grounded in. A plan's own facts (or formula, entity, or
document section) come first, then what retrieval adds within the token budget; the
provenance names all of it."""

from __future__ import annotations

import sqlite3
from typing import Any

from telesynth_tui.graph.retrieval import Retriever
from telesynth_tui.pipeline.documents import section_context
from telesynth_tui.pipeline.generate_llm import DOCUMENT
from telesynth_tui.pipeline.records import Provenance

LLM_CONTEXT_TOKENS = 300  # a small model writes better from the plan and a little context


def plan_context(
    conn: sqlite3.Connection, plan_type: str, payload: dict[str, Any]
) -> list[dict[str, Any]]:
    """The plan's own facts (or formula, or document section) as context items, so the context
    holds what the answer is grounded in."""
    if plan_type == DOCUMENT:
        return section_context(conn, payload)
    items: list[dict[str, Any]] = []
    rel_ids = payload.get("relation_ids", [])
    if rel_ids:
        marks = ",".join("?" * len(rel_ids))
        for rid, s, p, o in conn.execute(
            f"SELECT r.id, s.name, r.predicate, o.name FROM relations r JOIN entities s"
            f" ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id"
            f" WHERE r.id IN ({marks}) ORDER BY r.id",
            rel_ids,
        ):
            items.append(
                {
                    "key": f"fact:{rid}",
                    "kind": "fact",
                    "id": rid,
                    "text": f"{s} {p.replace('_', ' ')} {o}",
                }
            )
    if plan_type == "maths":
        variables = "; ".join(
            f"{k}: {payload['descriptions'].get(k, '')} [{u}]" for k, u in payload["units"].items()
        )
        items.append(
            {
                "key": f"formula:{payload['formula']}",
                "kind": "formula",
                "id": payload["formula"],
                "text": f"{payload['name']}: {payload['output_symbol'] or 'result'} = "
                f"{payload['expression']} [{payload['unit']}]. {variables}",
            }
        )
    if plan_type == "definition":
        items.append(
            {
                "key": f"entity:{payload['entity_ids'][0]}",
                "kind": "entity",
                "id": payload["entity_ids"][0],
                "text": f"{payload['entity']}: {payload['description']}",
            }
        )
    return items


def with_retrieved(
    retriever: Retriever, query: str, base: list[dict[str, Any]], budget: int
) -> list[dict[str, Any]]:
    """The base items, then what retrieval finds for the query in the budget left over."""
    used = sum(len(i["text"].split()) for i in base)
    result = retriever.retrieve(query, budget_tokens=max(64, budget - used))
    keys = {i["key"] for i in base}
    items = list(base)
    for item in result.items:
        if item.key not in keys:
            items.append(
                {
                    "key": item.key,
                    "kind": item.kind,
                    "id": item.id,
                    "text": item.text,
                    "provenance": item.provenance,
                }
            )
    return items


def provenance(
    plan: sqlite3.Row, payload: dict[str, Any], context: list[dict[str, Any]], generator: str
) -> Provenance:
    """What a generation sample was made from: plan, graph items, context and generator."""
    return Provenance(
        plan_id=plan["id"],
        plan_type=plan["type"],
        entity_ids=payload.get("entity_ids", []),
        relation_ids=payload.get("relation_ids", []),
        formula=payload.get("formula"),
        chunk_ids=[c["id"] for c in context if c["kind"] == "chunk"],
        context_keys=[c["key"] for c in context],
        generator=generator,
    )
