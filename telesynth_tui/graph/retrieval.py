"""Hybrid retrieval: FTS5 BM25 + dense vectors + graph expansion, fused by reciprocal rank.

The result is a ranked list of context items (chunks and facts) with provenance and token
counts, cut to a token budget. Dense retrieval runs when an encoder is given.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from telesynth_tui import database as db
from telesynth_tui.config import RetrievalSettings
from telesynth_tui.graph.linking import Gazetteer
from telesynth_tui.graph.store import KnowledgeGraph
from telesynth_tui.graph.views import Edge, edges_around, load_graph, neighbourhood
from telesynth_tui.inference.base import Encoder
from telesynth_tui.infra import transaction
from telesynth_tui.text import count_tokens, words


@dataclass
class ContextItem:
    kind: str  # "chunk" or "fact"
    id: int
    text: str
    n_tokens: int
    score: float
    ranks: dict[str, int] = field(default_factory=dict)  # ranker -> 1-based rank
    provenance: dict[str, object] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass
class RetrievalResult:
    query: str
    items: list[ContextItem]
    entities: list[str]
    budget_tokens: int

    @property
    def n_tokens(self) -> int:
        return sum(i.n_tokens for i in self.items)


def query_terms(text: str) -> list[str]:
    """Distinct lower-case words of free text, as FTS5 phrases (no FTS syntax reaches SQLite)."""
    terms = dict.fromkeys(w.lower() for w in words(text) if len(w) > 1 or w.isdigit())
    return ['"' + t.replace('"', "") + '"' for t in list(terms)[:32]]


def fts_query(text: str) -> str:
    """An FTS5 OR-query of the distinct words of free text."""
    return " OR ".join(query_terms(text))


def rrf(rankings: dict[str, list[str]], k: int) -> dict[str, float]:
    """Reciprocal rank fusion: score = sum over rankers of 1 / (k + rank)."""
    scores: dict[str, float] = defaultdict(float)
    for ranking in rankings.values():
        for rank, key in enumerate(ranking, start=1):
            scores[key] += 1.0 / (k + rank)
    return dict(scores)


class DenseIndex:
    """Brute-force cosine search over the stored embeddings of one encoder."""

    def __init__(self, conn: sqlite3.Connection, encoder: Encoder) -> None:
        self.encoder = encoder
        rows = conn.execute(
            "SELECT owner_id, dim, vector FROM embeddings WHERE owner_kind='chunk' AND model_id=?",
            (encoder.model_id,),
        ).fetchall()
        self.ids = np.array([r[0] for r in rows], dtype=np.int64)
        self._row = {int(i): n for n, i in enumerate(self.ids)}
        dim = rows[0][1] if rows else 0
        self.matrix = (
            np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dim)
            if rows
            else np.zeros((0, 0), dtype=np.float32)
        )

    def vector(self, chunk_id: int) -> np.ndarray | None:
        """The stored vector of a chunk, if it has one."""
        row = self._row.get(chunk_id)
        return None if row is None else self.matrix[row]

    def search(self, query: str, k: int) -> list[int]:
        if not len(self.ids):
            return []
        vector = self.encoder.embed([query])[0].astype(np.float32)
        scores = self.matrix @ vector
        top = np.argsort(-scores)[:k]
        return [int(self.ids[i]) for i in top]


def embed_chunks(conn: sqlite3.Connection, encoder: Encoder, batch: int = 64) -> int:
    """Embed the chunks that have no vector from this encoder yet; returns how many."""
    rows = conn.execute(
        "SELECT c.id, c.heading, c.text FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM embeddings"
        " e WHERE e.owner_kind='chunk' AND e.owner_id=c.id AND e.model_id=?)",
        (encoder.model_id,),
    ).fetchall()
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        vectors = encoder.embed([f"{r[1]}\n{r[2]}" for r in part]).astype(np.float32)
        with transaction(conn):
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings(owner_kind, owner_id, model_id, dim, vector)"
                " VALUES ('chunk', ?, ?, ?, ?)",
                [
                    (r[0], encoder.model_id, int(v.shape[0]), v.tobytes())
                    for r, v in zip(part, vectors, strict=True)
                ],
            )
    return len(rows)


class Retriever:
    """One retriever for the whole product; caches the graph until the KG revision changes."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        settings: RetrievalSettings,
        encoder: Encoder | None = None,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.encoder = encoder
        self._revision = -1
        self._graph: nx.MultiDiGraph | None = None
        self._gazetteer: Gazetteer | None = None
        self._dense: DenseIndex | None = None
        self._df: dict[str, int] = {}
        self._n_chunks = 0

    def _refresh(self) -> None:
        revision = db.kg_revision(self.conn)
        if revision != self._revision or self._graph is None:
            self._graph = load_graph(self.conn)
            self._gazetteer = KnowledgeGraph(self.conn).gazetteer()
            self._dense = DenseIndex(self.conn, self.encoder) if self.encoder else None
            self._df = {}
            self._n_chunks = self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            self._revision = revision

    def chunk_vector(self, chunk_id: int) -> np.ndarray | None:
        """A chunk's stored dense vector (None without an encoder or a stored vector)."""
        self._refresh()
        return self._dense.vector(chunk_id) if self._dense is not None else None

    @property
    def graph(self) -> nx.MultiDiGraph:
        self._refresh()
        assert self._graph is not None
        return self._graph

    # --- rankers --------------------------------------------------------------------------

    def _document_frequency(self, term: str) -> int:
        df = self._df.get(term)
        if df is None:
            df = self.conn.execute(
                "SELECT COUNT(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (term,)
            ).fetchone()[0]
            self._df[term] = df
        return df

    def bm25(self, query: str, k: int) -> list[int]:
        """FTS5 BM25 over chunks. Terms in more than half of the chunks are left out: their BM25
        IDF is <= 0 (FTS5 floors it at 1e-6), so they cannot change the order, only cost time."""
        self._refresh()
        terms = query_terms(query)
        if not terms:
            return []
        n_chunks = self._n_chunks
        frequencies = {t: self._document_frequency(t) for t in terms}
        useful = [t for t in terms if 0 < frequencies[t] <= n_chunks / 2]
        if not useful:  # only common words: keep the rarest ones that occur at all
            present = sorted((f, t) for t, f in frequencies.items() if f > 0)
            useful = [t for _, t in present[:3]]
        if not useful:
            return []
        match = " OR ".join(useful)
        rows = self.conn.execute(
            "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts)"
            " LIMIT ?",
            (match, k),
        )
        return [r[0] for r in rows]

    def query_entities(self, query: str) -> list[int]:
        self._refresh()
        assert self._gazetteer is not None
        return list(dict.fromkeys(m.entity_id for m in self._gazetteer.find(query)))

    def graph_expansion(self, entity_ids: list[int], k: int) -> tuple[list[int], list[Edge]]:
        """Facts around the query entities (nearest first) and the chunks that evidence them."""
        graph = self.graph
        hops = self.settings.hops
        fanout = self.settings.max_fanout
        distance: dict[int, int] = {}
        for entity_id in entity_ids:
            for node, d in neighbourhood(graph, entity_id, hops, fanout).items():
                distance[node] = min(d, distance.get(node, d))
        # facts touch the entities closer than `hops`; taken round-robin over those entities so
        # each query entity is represented, then facts linking two query entities first
        sources = sorted((d, n) for n, d in distance.items() if d < hops)
        per_node = [edges_around(graph, node, fanout) for _, node in sources]
        facts: dict[int, Edge] = {}
        for layer in itertools.zip_longest(*per_node):
            for edge in layer:
                if edge is not None:
                    facts.setdefault(edge.relation_id, edge)
        query_set = set(entity_ids)
        ranked = sorted(
            facts.values(),
            key=lambda e: (
                -((e.subject_id in query_set) + (e.object_id in query_set)),
                distance.get(e.subject_id, 9) + distance.get(e.object_id, 9),
            ),
        )[:k]
        chunk_ids: list[int] = []
        if ranked:
            marks = ",".join("?" * len(ranked))
            rows = self.conn.execute(
                f"SELECT chunk_id, COUNT(*) AS n FROM relation_evidence WHERE relation_id IN"
                f" ({marks}) GROUP BY chunk_id ORDER BY n DESC, chunk_id LIMIT ?",
                [e.relation_id for e in ranked] + [k],
            )
            chunk_ids = [r[0] for r in rows]
        if entity_ids and len(chunk_ids) < k:
            marks = ",".join("?" * len(entity_ids))
            rows = self.conn.execute(
                f"SELECT chunk_id, COUNT(DISTINCT entity_id) AS n FROM mentions WHERE entity_id IN"
                f" ({marks}) GROUP BY chunk_id ORDER BY n DESC, chunk_id LIMIT ?",
                [*entity_ids, k],
            )
            chunk_ids = list(dict.fromkeys([*chunk_ids, *(r[0] for r in rows)]))[:k]
        return chunk_ids, ranked

    def _facts_by_terms(self, query: str, facts: list[Edge]) -> list[Edge]:
        """The graph's facts again, ordered by how many query words their text shares (a second,
        lexical opinion, so a fact that matches the question can outrank a loosely related chunk).
        Facts sharing no word are left out."""
        nodes = self.graph.nodes
        wanted = {w.lower() for w in words(query)}
        overlap = []
        for position, edge in enumerate(facts):
            text = (
                f"{nodes[edge.subject_id]['name']} {edge.predicate} {nodes[edge.object_id]['name']}"
            )
            shared = len(wanted & {w.lower() for w in words(text.replace("_", " "))})
            if shared:
                overlap.append((-shared, position, edge))
        return [edge for _, _, edge in sorted(overlap, key=lambda t: t[:2])]

    # --- fusion ---------------------------------------------------------------------------

    def retrieve(
        self, query: str, budget_tokens: int | None = None, top_k: int | None = None
    ) -> RetrievalResult:
        s = self.settings
        budget = budget_tokens or s.budget_tokens
        top_k = top_k or s.top_k
        entity_ids = self.query_entities(query)
        rankings: dict[str, list[str]] = {
            "bm25": [f"chunk:{i}" for i in self.bm25(query, s.per_source_k)]
        }
        if self._dense is not None:
            rankings["dense"] = [f"chunk:{i}" for i in self._dense.search(query, s.per_source_k)]
        graph_chunks, facts = self.graph_expansion(entity_ids, s.per_source_k)
        rankings["graph"] = [f"chunk:{i}" for i in graph_chunks]
        rankings["facts"] = [f"fact:{e.relation_id}" for e in facts]
        rankings["fact_terms"] = [
            f"fact:{e.relation_id}" for e in self._facts_by_terms(query, facts)
        ]
        scores = rrf(rankings, s.rrf_k)
        order = sorted(scores, key=lambda key: (-scores[key], key))
        items = self._materialise(order, scores, rankings, {e.relation_id: e for e in facts})
        chosen: list[ContextItem] = []
        used = 0
        for item in items:
            if len(chosen) >= top_k:
                break
            if used + item.n_tokens > budget:
                continue
            chosen.append(item)
            used += item.n_tokens
        names = [self.graph.nodes[i]["name"] for i in entity_ids if i in self.graph]
        return RetrievalResult(query, chosen, names, budget)

    def _fact_provenance(
        self, relation_ids: list[int]
    ) -> tuple[dict[int, tuple[str, int]], dict[int, list[int]]]:
        """Source file and line, and evidence chunk ids, of several relations in two queries."""
        if not relation_ids:
            return {}, {}
        marks = ",".join("?" * len(relation_ids))
        sources = {
            r[0]: (r[1], r[2])
            for r in self.conn.execute(
                "SELECT r.id, sf.path, r.line FROM relations r JOIN source_files sf"
                f" ON sf.id = r.source_file_id WHERE r.id IN ({marks})",
                relation_ids,
            )
        }
        evidence: dict[int, list[int]] = {}
        for relation_id, chunk_id in self.conn.execute(
            "SELECT relation_id, chunk_id FROM relation_evidence"
            f" WHERE relation_id IN ({marks}) ORDER BY relation_id, chunk_id",
            relation_ids,
        ):
            evidence.setdefault(relation_id, []).append(chunk_id)
        return sources, evidence

    def _materialise(
        self,
        order: list[str],
        scores: dict[str, float],
        rankings: dict[str, list[str]],
        facts: dict[int, Edge],
    ) -> list[ContextItem]:
        positions = {
            name: {key: r for r, key in enumerate(keys, 1)} for name, keys in rankings.items()
        }
        chunk_ids = [int(k.split(":")[1]) for k in order if k.startswith("chunk:")]
        chunk_rows: dict[int, sqlite3.Row] = {}
        if chunk_ids:
            marks = ",".join("?" * len(chunk_ids))
            for row in self.conn.execute(
                "SELECT c.id, c.heading, c.text, c.n_tokens, c.ordinal, d.id AS doc_id, d.title,"
                " sf.path FROM chunks c JOIN documents d ON d.id = c.document_id"
                f" JOIN source_files sf ON sf.id = d.source_file_id WHERE c.id IN ({marks})",
                chunk_ids,
            ):
                chunk_rows[row["id"]] = row
        fact_sources, fact_evidence = self._fact_provenance(
            [int(k.split(":")[1]) for k in order if k.startswith("fact:")]
        )
        graph = self.graph
        items: list[ContextItem] = []
        for key in order:
            kind, raw_id = key.split(":")
            ranks = {name: pos[key] for name, pos in positions.items() if key in pos}
            if kind == "chunk":
                row = chunk_rows.get(int(raw_id))
                if row is None:
                    continue
                items.append(
                    ContextItem(
                        "chunk",
                        row["id"],
                        row["text"],
                        row["n_tokens"],
                        scores[key],
                        ranks,
                        {
                            "document_id": row["doc_id"],
                            "document": row["title"],
                            "heading": row["heading"],
                            "ordinal": row["ordinal"],
                            "source": row["path"],
                        },
                    )
                )
            else:
                edge = facts[int(raw_id)]
                subject = graph.nodes[edge.subject_id]["name"]
                obj = graph.nodes[edge.object_id]["name"]
                text = f"{subject} {edge.predicate.replace('_', ' ')} {obj}"
                evidence = fact_evidence.get(edge.relation_id, [])
                src = fact_sources.get(edge.relation_id)
                items.append(
                    ContextItem(
                        "fact",
                        edge.relation_id,
                        text,
                        count_tokens(text),
                        scores[key],
                        ranks,
                        {
                            "subject_id": edge.subject_id,
                            "subject": subject,
                            "predicate": edge.predicate,
                            "object_id": edge.object_id,
                            "object": obj,
                            "source": src[0] if src else None,
                            "line": src[1] if src else None,
                            "evidence_chunk_ids": evidence,
                        },
                    )
                )
        return items


def result_to_json(result: RetrievalResult) -> dict[str, object]:
    return {
        "query": result.query,
        "entities": result.entities,
        "budget_tokens": result.budget_tokens,
        "n_tokens": result.n_tokens,
        "items": [
            {
                "kind": i.kind,
                "id": i.id,
                "score": round(i.score, 6),
                "ranks": i.ranks,
                "n_tokens": i.n_tokens,
                "text": i.text,
                "provenance": i.provenance,
            }
            for i in result.items
        ],
    }
