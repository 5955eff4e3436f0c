"""LLM relation extraction with any registered GGUF: schema-constrained triples from the
predicate vocabulary, each one checked against the chunk it came from.

The output schema enumerates the 13 entity types and the predicates, so the model can only
write triples of the graph's schema. When the chunk's names are known (the graph's entities and
the typed mentions the structure-aware spotter finds in it), each predicate's subject and object
are enums of the names whose types it joins, the types coming from the graph: the model chooses
relations between things the text names, and cannot misspell or invent one, nor join types the
predicate does not. A triple is kept only when its subject and its
object both occur in the chunk (the evidence span is the sentence that holds them) and their
types fit the predicate; anything else is dropped with its reason. Kept triples are stored as
candidates with extractor `llm:<model>` and a fixed confidence below the acceptance threshold:
an LLM triple is accepted when the structure-aware extractor agrees, or by a person.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.graph.candidates import (
    StoreReport,
    apply_acceptance,
    known_names,
    store_extractions,
)
from telesynth_tui.graph.extraction import Known, XEntity, XTriple, spot
from telesynth_tui.graph.linking import find_candidates
from telesynth_tui.graph.resolution import EntityIndex
from telesynth_tui.graph.store import ENTITY_TYPES, PREDICATES
from telesynth_tui.inference.base import CallContext, SamplingParams, TextModel
from telesynth_tui.text import normalize_name

LLM_CONFIDENCE = 0.5
MAX_TRIPLES = 8

SYSTEM = (
    "You extract facts for a telecom knowledge graph. Copy entity names exactly as they are "
    "written in the text. Use only these relations (subject type -> object type):\n"
    + "\n".join(
        f"- {p}: {'/'.join(sorted(s)) if s else 'any'} -> {'/'.join(sorted(o)) if o else 'any'}"
        for p, (s, o) in PREDICATES.items()
        if p != "related_to"
    )
)


MAX_NAMES = 40


def triples_schema(
    max_triples: int = MAX_TRIPLES, names: Sequence[str] | Mapping[str, str] = ()
) -> dict[str, Any]:
    """Free names with their types; or, given the chunk's names (name -> type), one shape per
    predicate whose subject and object are enums of the names of the types it joins (a
    predicate no two names fit is left out)."""
    predicates = [p for p in PREDICATES if p != "related_to"]
    if names:
        typed = dict(names) if isinstance(names, Mapping) else {n: "" for n in names}
        shapes = []
        for p in predicates:
            allowed_s, allowed_o = PREDICATES[p]
            subjects = [n for n, t in typed.items() if allowed_s is None or t in allowed_s]
            objects = [n for n, t in typed.items() if allowed_o is None or t in allowed_o]
            if not subjects or not objects or (subjects == objects and len(subjects) < 2):
                continue
            shapes.append(
                {
                    "type": "object",
                    "properties": {
                        "subject": {"type": "string", "enum": subjects},
                        "predicate": {"type": "string", "enum": [p]},
                        "object": {"type": "string", "enum": objects},
                    },
                    "required": ["subject", "predicate", "object"],
                }
            )
        if shapes:
            return {
                "type": "object",
                "properties": {
                    "triples": {
                        "type": "array",
                        "maxItems": max_triples,
                        "items": {"anyOf": shapes},
                    }
                },
                "required": ["triples"],
            }
    name = {"type": "string", "minLength": 2, "maxLength": 80}
    return {
        "type": "object",
        "properties": {
            "triples": {
                "type": "array",
                "maxItems": max_triples,
                "items": {
                    "type": "object",
                    "properties": {
                        "subject": name,
                        "subject_type": {"type": "string", "enum": list(ENTITY_TYPES)},
                        "predicate": {
                            "type": "string",
                            "enum": [p for p in PREDICATES if p != "related_to"],
                        },
                        "object": name,
                        "object_type": {"type": "string", "enum": list(ENTITY_TYPES)},
                    },
                    "required": ["subject", "subject_type", "predicate", "object", "object_type"],
                },
            }
        },
        "required": ["triples"],
    }


@dataclass
class ChunkResult:
    triples: list[XTriple] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    raw: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?:;])\s+|\n+")


def _find(name: str, text: str) -> int | None:
    """Where a name occurs in the text (case-insensitive, by whole words), or None."""
    words = normalize_name(name).split()
    if not words:
        return None
    pattern = r"(?<![A-Za-z0-9])" + r"[\s\-_/.]*".join(re.escape(w) for w in words)
    match = re.search(pattern + r"(?![A-Za-z0-9])", text, re.IGNORECASE)
    return match.start() if match else None


def evidence_span(text: str, subject: str, obj: str) -> str | None:
    """The sentence (or two adjacent ones) of the chunk that names both; None if the chunk does
    not name both."""
    if _find(subject, text) is None or _find(obj, text) is None:
        return None
    sentences = [s.strip() for s in _SENTENCE_SPLIT.split(text) if s.strip()]
    for sentence in sentences:
        if _find(subject, sentence) is not None and _find(obj, sentence) is not None:
            return sentence[:400]
    for i in range(len(sentences)):
        pair = " ".join(sentences[i : i + 2])
        if _find(subject, pair) is not None and _find(obj, pair) is not None:
            return pair[:400]
    return " ".join(text.split())[:400]


class LlmExtractor:
    """One GGUF model extracting triples chunk by chunk."""

    def __init__(
        self, generator: TextModel, max_tokens: int = 384, closed_names: bool = True
    ) -> None:
        self.generator = generator
        self.name = generator.name
        self.max_tokens = max_tokens
        self.closed_names = closed_names  # subject and object from the chunk's names

    def messages(
        self, heading: str, text: str, names: Mapping[str, str] | None = None
    ) -> list[dict[str, str]]:
        listed = (
            "\n\nNames in the text (subject and object are two of these):\n"
            + "\n".join(f"- {n} ({t})" for n, t in names.items())
            if names
            else ""
        )
        request = (
            f"Section: {heading}\n\nText:\n{text}{listed}\n\nList the facts this text states "
            f"as JSON triples (at most {MAX_TRIPLES})."
        )
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": request}]

    def extract_chunk(
        self,
        index: int,
        heading: str,
        text: str,
        names: Mapping[str, str] | None = None,
        ctx: CallContext | None = None,
    ) -> ChunkResult:
        """Triples of one chunk; with `names` (name -> entity type, at least two) the model
        picks subject and object among them."""
        result = ChunkResult()
        names = dict(names) if names and len(names) >= 2 else None
        schema = triples_schema(names=names or {})
        if "anyOf" not in schema["properties"]["triples"]["items"]:
            names = None  # no predicate fits two of the names: the model writes its own
        params = SamplingParams(max_tokens=self.max_tokens, temperature=0.0, json_schema=schema)
        try:
            done = self.generator.complete(self.messages(heading, text, names), params, ctx)
        except TelesynthError as exc:
            result.dropped.append(f"model call failed: {exc}")
            return result
        result.raw, result.metrics = done.text, done.metrics.to_dict()
        try:
            data = json.loads(result.raw)
        except json.JSONDecodeError as exc:
            cut = (
                " (cut at the token limit)" if result.metrics.get("stop_reason") == "length" else ""
            )
            result.dropped.append(f"invalid JSON{cut}: {exc.msg}")
            return result
        rows = data.get("triples", []) if isinstance(data, dict) else []
        seen: set[tuple[str, str, str]] = set()
        for row in rows if isinstance(rows, list) else []:
            if names and isinstance(row, dict):  # the types are the graph's, not the model's
                row = {
                    **row,
                    "subject_type": names.get(str(row.get("subject", "")), ""),
                    "object_type": names.get(str(row.get("object", "")), ""),
                }
            triple, reason = self.check(index, text, row)
            if triple is None:
                result.dropped.append(reason)
                continue
            key = (triple.subject.name, triple.predicate, triple.object.name)
            if key in seen:
                result.dropped.append("repeated triple")
                continue
            seen.add(key)
            result.triples.append(triple)
        return result

    @staticmethod
    def check(index: int, text: str, row: Any) -> tuple[XTriple | None, str]:
        """The triple if it is grounded in the chunk and fits the schema, else why not."""
        if not isinstance(row, dict):
            return None, "not an object"
        subject = " ".join(str(row.get("subject", "")).split())
        obj = " ".join(str(row.get("object", "")).split())
        predicate = str(row.get("predicate", ""))
        s_type, o_type = str(row.get("subject_type", "")), str(row.get("object_type", ""))
        if predicate not in PREDICATES:
            return None, f"unknown predicate {predicate!r}"
        if normalize_name(subject) == normalize_name(obj):
            return None, f"subject and object are the same ({subject!r})"
        for label, name in (("subject", subject), ("object", obj)):
            if _find(name, text) is None:
                return None, f"{label} {name!r} does not occur in the chunk"
        allowed_s, allowed_o = PREDICATES[predicate]
        if allowed_s is not None and s_type not in allowed_s:
            return None, f"{predicate} cannot start at a {s_type} ({subject!r})"
        if allowed_o is not None and o_type not in allowed_o:
            return None, f"{predicate} cannot end at a {o_type} ({obj!r})"
        span = evidence_span(text, subject, obj) or ""
        triple = XTriple(
            XEntity(subject, s_type),
            predicate,
            XEntity(obj, o_type),
            index,
            span,
            "schema",
            LLM_CONFIDENCE,
        )
        return triple, ""


@dataclass
class LlmReport:
    chunks: int = 0
    kept: int = 0
    stored: StoreReport = field(default_factory=StoreReport)
    dropped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def _reason_kind(reason: str) -> str:
    """Reasons grouped for a summary ('subject ... does not occur in the chunk' -> one line)."""
    reason = re.sub(r"'[^']*'", "'…'", reason)
    return re.sub(r"\([^)]*\)", "(…)", reason)


def chunk_names(text: str, known: Known, limit: int = MAX_NAMES) -> dict[str, str]:
    """The names a chunk states, with their types: the graph's entities and the typed mentions
    the structure-aware spotter finds (counters, parameters, KPI and alarm phrases, elements,
    specifications), each one occurring in the text."""
    found: dict[str, str] = {}
    for e in spot(text, known):
        found.setdefault(e.name, e.type)
    for e, _, _ in known.find(text):  # checks, actions and causes named in the graph
        found.setdefault(e.name, e.type)
    for cand in find_candidates(text):  # identifiers inside longer names too
        if cand.type in ("Counter", "Parameter"):
            found.setdefault(cand.name, cand.type)
    for m in re.finditer(r"\b(?:TS|TR)\s?\d{2}\.\d{3}(?:-\d)?\b", text):
        found.setdefault(
            " ".join(m.group().replace("TS", "TS ").replace("TR", "TR ").split()), "Specification"
        )
    grounded = {n: t for n, t in found.items() if _find(n, text) is not None}
    return dict(list(grounded.items())[:limit])


def extract_documents(
    conn: sqlite3.Connection,
    extractor: LlmExtractor,
    paths: Sequence[str] | None = None,
    threshold: float = 0.85,
    limit_chunks: int | None = None,
    progress: Callable[[str], None] | None = None,
    parallel: int = 1,
) -> LlmReport:
    """Run the LLM extractor over imported documents (all, or those whose path contains one of
    `paths`), one transaction per document, then apply the acceptance rule. With `parallel` > 1
    chunks are extracted `parallel` at a time (the extractor's model must take calls from
    several threads, as a `BatchedModel` does); results are used in the chunks' order."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from telesynth_tui import database as db
    from telesynth_tui.infra import transaction

    t0 = time.perf_counter()
    report = LlmReport()
    docs = conn.execute(
        "SELECT d.id, d.source_file_id, sf.path FROM documents d JOIN source_files sf"
        " ON sf.id = d.source_file_id ORDER BY sf.path, d.id"
    ).fetchall()
    if paths is not None:
        docs = [d for d in docs if any(p in d[2] for p in paths)]
    family = f"llm:{extractor.name}"
    known = known_names(conn)
    # every chunk to read, in document and chunk order: (document, index, heading, text, names)
    documents: list[tuple[int, str, list[int]]] = []  # source, path, chunk ids
    jobs: list[tuple[int, int, str, str, dict[str, str] | None]] = []
    for doc_id, source_id, path in docs:
        if limit_chunks is not None and len(jobs) >= limit_chunks:
            break
        chunks = conn.execute(
            "SELECT id, heading, text FROM chunks WHERE document_id = ? ORDER BY ordinal",
            (doc_id,),
        ).fetchall()
        documents.append((source_id, path, [int(c[0]) for c in chunks]))
        for index, (_cid, heading, text) in enumerate(chunks):
            if limit_chunks is not None and len(jobs) >= limit_chunks:
                break
            names = chunk_names(text, known) if extractor.closed_names else None
            jobs.append((len(documents) - 1, index, heading or "", text, names))
    last_job = {job[0]: i for i, job in enumerate(jobs)}  # a document is stored after its last
    triples: list[XTriple] = []
    stop = threading.Event()  # set when the loop ends early: calls in flight stop at a token

    def extract(job: tuple[int, int, str, str, dict[str, str] | None]) -> ChunkResult:
        _d, index, heading, text, names = job
        if stop.is_set():  # picked up between the stop and the pool's shutdown
            return ChunkResult()
        return extractor.extract_chunk(index, heading, text, names, CallContext(stop.is_set))

    pool = ThreadPoolExecutor(max_workers=parallel) if parallel > 1 else None
    try:
        # in order, each as soon as it and those before it are done; with `parallel` > 1 the
        # next document's chunks start while this one's finish
        results = pool.map(extract, jobs) if pool is not None else map(extract, jobs)
        for i, ((d, index, *_), result) in enumerate(zip(jobs, results, strict=True)):
            source_id, path, chunk_ids = documents[d]
            report.chunks += 1
            report.kept += len(result.triples)
            report.dropped.update(_reason_kind(r) for r in result.dropped)
            triples += result.triples
            if progress:
                progress(
                    f"{path.rsplit('/', 1)[-1]} chunk {index + 1}/{len(chunk_ids)}: "
                    f"{len(result.triples)} kept, {len(result.dropped)} dropped"
                )
            if last_job[d] != i:
                continue
            with transaction(conn):
                conn.execute(  # a second run replaces this model's earlier extractions
                    "DELETE FROM relation_extractions WHERE source_file_id = ? AND extractor = ?",
                    (source_id, family),
                )
                stored = store_extractions(
                    conn, source_id, chunk_ids, triples, family, EntityIndex(conn)
                )
                _drop_unsupported(conn, source_id)
            triples = []
            report.stored.relations += stored.relations
            report.stored.supported += stored.supported
            report.stored.entities += stored.entities
            report.dropped.update(_reason_kind(r) for r in stored.dropped)
    finally:
        stop.set()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    with transaction(conn):
        apply_acceptance(conn, threshold)
        db.bump_revision(conn)
    report.seconds = round(time.perf_counter() - t0, 1)
    return report


def _drop_unsupported(conn: sqlite3.Connection, source_id: int) -> None:
    """Extracted relations of this source that no extraction supports any more."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM relations r WHERE origin = 'extracted' AND source_file_id = ?"
            " AND NOT EXISTS (SELECT 1 FROM relation_extractions x WHERE x.relation_id = r.id)",
            (source_id,),
        )
    ]
    for relation_id in ids:
        conn.execute("DELETE FROM relation_evidence WHERE relation_id = ?", (relation_id,))
        conn.execute("DELETE FROM relations WHERE id = ?", (relation_id,))


def open_generator(project: Any, model: str) -> TextModel:
    """A registered model by name, or a .gguf file by path."""
    from pathlib import Path

    if model.endswith(".gguf") or Path(model).is_file():
        from telesynth_tui.inference.generator import LlamaGenerator

        path = Path(model).expanduser()
        if not path.is_file():
            raise TelesynthError(f"{model}: no such model file")
        m = project.settings.models
        return LlamaGenerator(
            path,
            path.stem,
            threads=m.llama_threads,
            n_ctx=m.n_ctx,
            n_batch=m.n_batch,
            energy=project.energy_meter(),
        )
    return project.generator(model)


def extract_with_llm(
    project: Any,
    conn: sqlite3.Connection,
    model: str,
    paths: Sequence[str] | None = None,
    limit_chunks: int | None = None,
    progress: Callable[[str], None] | None = None,
    parallel: int = 1,
) -> LlmReport:
    """`kg extract`: the model over the imported documents; with `parallel` > 1 a GGUF decodes
    that many chunks together (one batch scheduler on the model's weights)."""
    from telesynth_tui.inference.generator import LlamaGenerator
    from telesynth_tui.inference.scheduler import BatchScheduler

    if parallel < 1:
        raise TelesynthError(f"--parallel must be at least 1, not {parallel}")
    generator = open_generator(project, model)
    threshold = project.settings.ingest.accept_confidence
    try:
        if parallel == 1:
            return extract_documents(
                conn, LlmExtractor(generator), paths, threshold, limit_chunks, progress
            )
        if not isinstance(generator, LlamaGenerator):
            raise TelesynthError(
                f"--parallel decodes GGUF models together; {generator.name} is not one "
                "(a served model batches the requests it receives itself)"
            )
        with BatchScheduler(generator, parallel, generator.n_ctx) as scheduler:
            return extract_documents(
                conn,
                LlmExtractor(scheduler.model()),
                paths,
                threshold,
                limit_chunks,
                progress,
                parallel,
            )
    finally:
        generator.close()
