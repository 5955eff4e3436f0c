from __future__ import annotations

from telesynth_tui.graph.chunking import chunk_markdown, split_sections
from telesynth_tui.text import count_tokens


def test_sections_follow_heading_paths() -> None:
    text = "# Runbook\nintro\n## Checks\nread pmRrcConnEstabAtt\n### Deep\nmore\n## Actions\nact\n"
    sections = split_sections(text, "fallback")
    assert [s.path for s in sections] == [
        ("Runbook",),
        ("Runbook", "Checks"),
        ("Runbook", "Checks", "Deep"),
        ("Runbook", "Actions"),
    ]


def test_setext_headings_and_toc_lines() -> None:
    text = "Title\n=====\n\nContents ........ 3\n\nSub\n---\nbody text\n"
    sections = split_sections(text, "x")
    assert [s.path for s in sections] == [("Title", "Sub")]
    assert sections[0].blocks == ("body text",)


def test_chunks_respect_budget_and_never_cross_headings() -> None:
    para = " ".join(f"Sentence {i} about the uplink noise rise." for i in range(60))
    text = f"# A\n{para}\n\n## B\nshort\n"
    chunks = chunk_markdown(text, "A", budget=80)
    assert all(c.n_tokens <= 80 for c in chunks)
    assert chunks[-1].heading == "A > B" and chunks[-1].text == "short"
    assert sum(1 for c in chunks if c.heading == "A") >= 6
    # nothing lost: every sentence number appears once
    joined = " ".join(c.text for c in chunks if c.heading == "A")
    assert all(f"Sentence {i} " in joined for i in range(60))


def test_large_table_split_by_rows_with_header_repeated() -> None:
    rows = "\n".join(f"| p{i} | {i} dB | effect number {i} on coverage |" for i in range(80))
    text = f"# T\n| Parameter | Value | Effect |\n|---|---|---|\n{rows}\n"
    chunks = chunk_markdown(text, "T", budget=120)
    assert len(chunks) > 3
    for chunk in chunks:
        lines = chunk.text.splitlines()
        assert lines[0] == "| Parameter | Value | Effect |"
        assert lines[1] == "|---|---|---|"
        assert count_tokens(chunk.text) <= 120
    body = [line for c in chunks for line in c.text.splitlines()[2:]]
    assert len(body) == 80


def test_code_fence_kept_whole_and_headings_inside_ignored() -> None:
    text = "# A\n```\n# not a heading\nx = 1\n```\nafter\n"
    sections = split_sections(text, "A")
    assert len(sections) == 1
    assert sections[0].blocks[0].startswith("```") and "# not a heading" in sections[0].blocks[0]


def test_giant_word_run_is_split() -> None:
    text = "# A\n" + "x" * 10 + " word" * 2000
    chunks = chunk_markdown(text, "A", budget=100)
    assert all(c.n_tokens <= 100 for c in chunks)
