from __future__ import annotations

from pathlib import Path

from telesynth_tui.graph.importer import import_paths
from telesynth_tui.graph.retrieval import Retriever, embed_chunks, fts_query, rrf
from telesynth_tui.project import Project

from .fakes import HashEncoder
from .test_import import write_small_kg


def test_rrf_sums_reciprocal_ranks() -> None:
    scores = rrf({"a": ["x", "y"], "b": ["y", "z"]}, k=60)
    assert scores["y"] == 1 / 62 + 1 / 61
    assert scores["x"] == 1 / 61 and scores["z"] == 1 / 62
    assert max(scores, key=scores.__getitem__) == "y"


def test_fts_query_never_passes_syntax_through() -> None:
    assert fts_query('NEAR(a b) OR "x" AND -y*') == '"near" OR "or" OR "and"'


def test_hybrid_retrieval_on_bundled_kg(bundled: Project) -> None:
    retriever = Retriever(bundled.connect(), bundled.settings.retrieval)
    result = retriever.retrieve(
        "RRC setup success rate is low and RACH attempts fail", budget_tokens=900
    )
    assert result.items and result.n_tokens <= 900
    assert "RRC Setup Success Rate" in result.entities
    kinds = {i.kind for i in result.items}
    assert kinds == {"chunk", "fact"}
    for item in result.items:
        assert item.n_tokens > 0 and item.ranks
        if item.kind == "chunk":
            assert Path(str(item.provenance["source"])).exists()
            assert item.provenance["heading"]
        else:
            assert item.provenance["predicate"] and item.provenance["source"]
    # fused: the best item is ranked by more than one ranker or is the top of one
    assert len(result.items[0].ranks) >= 2 or 1 in result.items[0].ranks.values()
    scores = [i.score for i in result.items]
    assert scores == sorted(scores, reverse=True)


def test_budget_is_respected(bundled: Project) -> None:
    retriever = Retriever(bundled.connect(), bundled.settings.retrieval)
    small = retriever.retrieve("VSWR alarm on the antenna feeder", budget_tokens=120, top_k=20)
    assert 0 < small.n_tokens <= 120


def test_graph_alone_finds_evidence_without_word_overlap(bundled: Project) -> None:
    """A query naming only an alias still reaches the entity's facts and evidence."""
    conn = bundled.connect()
    retriever = Retriever(conn, bundled.settings.retrieval)
    entity_ids = retriever.query_entities("RSRP")
    assert entity_ids
    chunks, facts = retriever.graph_expansion(entity_ids, 10)
    assert chunks and facts


def test_dense_ranker_joins_the_fusion(project: Project, tmp_path: Path) -> None:
    conn = project.connect()
    import_paths(conn, [write_small_kg(tmp_path / "kg")], project.settings.ingest)
    encoder = HashEncoder()
    assert embed_chunks(conn, encoder) == 2
    assert embed_chunks(conn, encoder) == 0  # only missing vectors are computed
    retriever = Retriever(conn, project.settings.retrieval, encoder=encoder)
    result = retriever.retrieve("spectrum scan interferer")
    assert any("dense" in item.ranks for item in result.items)


def test_bm25_ignores_words_in_most_chunks_but_still_answers(
    project: Project, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        extra = " The feeder shows corrosion." if i == 4 else ""
        (docs / f"d{i}.md").write_text(
            f"# Doc {i}\nThe cell carries traffic on sector {i}.{extra}\n"
        )
    conn = project.connect()
    import_paths(conn, [docs], project.settings.ingest)
    retriever = Retriever(conn, project.settings.retrieval)
    corrosion_chunk = conn.execute(
        "SELECT id FROM chunks WHERE text LIKE '%corrosion%'"
    ).fetchone()[0]
    # "cell", "traffic" and "sector" are in every chunk: only "corrosion" decides the order
    assert retriever.bm25("cell traffic sector corrosion", 10) == [corrosion_chunk]
    # a query of common words only still returns the chunks that contain them
    assert len(retriever.bm25("cell traffic", 10)) == 6
    assert retriever.bm25("nothing matches zyxw", 10) == []
