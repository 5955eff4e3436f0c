"""Alarms raised by the elements named right after them, several elements in one clause."""

from __future__ import annotations

from telesynth_tui.graph.chunking import chunk_markdown
from telesynth_tui.graph.extraction import extract

from .conftest import extracted

DOC = """# Split node links

## Symptoms

- F1 Link Failure alarm raised by the gNB-DU or gNB-CU, while the AMF still answers.
- An NG Setup Failure alarm on the gNodeB (S1 Setup Failure on an eNodeB) towards the AMF.
"""


def _found() -> set[tuple[str, str, str]]:
    return set(extracted(DOC))


def test_an_alarm_raised_by_several_elements() -> None:
    found = _found()
    assert ("F1 Link Failure", "raised_by", "gNB-DU") in found
    assert ("F1 Link Failure", "raised_by", "gNB-CU") in found
    # the AMF is named in the clause, but not as what raises the alarm
    assert ("F1 Link Failure", "raised_by", "AMF") not in found


def test_each_alarm_with_the_element_after_it() -> None:
    found = _found()
    assert ("NG Setup Failure", "raised_by", "gNodeB") in found
    assert ("S1 Setup Failure", "raised_by", "eNodeB") in found
    assert ("NG Setup Failure", "raised_by", "eNodeB") not in found
    assert ("NG Setup Failure", "raised_by", "AMF") not in found


def test_an_interface_alarm_is_raised_by_the_radio_nodes_at_its_ends() -> None:
    doc = """# Core links

Most mentions here are of the gNodeB and the AMF; the gNodeB hosts the cells.

## Symptoms

- E1 Link Failure alarm and NG Setup Failure alarm; the gNodeB keeps retrying.
- X2 Link Failure alarm on the LTE anchor.
"""
    found = {(s, o) for s, p, o in extracted(doc) if p == "raised_by"}
    assert ("E1 Link Failure", "gNB-CU") in found
    assert ("NG Setup Failure", "gNodeB") in found
    assert ("X2 Link Failure", "eNodeB") in found
    # not the core node at the other end, nor a node of the other radio technology
    assert ("NG Setup Failure", "AMF") not in found
    assert ("X2 Link Failure", "gNodeB") not in found


def test_a_core_node_named_most_raises_no_alarm() -> None:
    doc = """# S1 supervision

The eNodeB keeps one association per MME; each MME of the pool answers heartbeats, and an MME
under load may drop them. The MME pool is shared.

## Symptoms

- SCTP Heartbeat Timeout alarm when heartbeats stay unanswered.
"""
    out = extract(chunk_markdown(doc, "S1 supervision", 300), "S1 supervision")
    assert not [t for t in out.triples if t.predicate == "raised_by"]
