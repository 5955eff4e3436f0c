"""Alarms raised by the elements named right after them, several elements in one clause."""

from __future__ import annotations

from telesynth_tui.graph.chunking import chunk_markdown
from telesynth_tui.graph.extraction import extract

DOC = """# Split node links

## Symptoms

- F1 Link Failure alarm raised by the gNB-DU or gNB-CU, while the AMF still answers.
- An NG Setup Failure alarm on the gNodeB (S1 Setup Failure on an eNodeB) towards the AMF.
"""


def _found() -> set[tuple[str, str, str]]:
    out = extract(chunk_markdown(DOC, "Split node links", 300), "Split node links")
    return {(t.subject.name, t.predicate, t.object.name) for t in out.triples}


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
