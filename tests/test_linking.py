from __future__ import annotations

from telesynth_tui.graph.linking import Gazetteer, find_candidates


def test_gazetteer_longest_match_and_case_rules() -> None:
    gaz = Gazetteer()
    gaz.add(1, ["RRC Setup Success Rate", "RRC SSR"])
    gaz.add(2, ["RRC"])
    gaz.add(3, ["UE"])
    gaz.add(4, ["uplink interference"])
    gaz.add(5, ["gNB-CU"])
    text = (
        "The rrc setup success rate fell; RRC logs show the UE and Uplink Interference at gNB-CU."
    )
    found = [(m.entity_id, m.surface) for m in gaz.find(text)]
    assert found == [
        (1, "rrc setup success rate"),
        (2, "RRC"),
        (3, "UE"),
        (4, "Uplink Interference"),
        (5, "gNB-CU"),
    ]
    # abbreviations are case-sensitive: "ue" inside prose is not the UE
    assert gaz.find("the value ue was rrc") == []
    assert gaz.lookup("rrc") is None and gaz.lookup("RRC") == 2 and gaz.lookup("rrc ssr") == 1


def test_candidate_patterns() -> None:
    text = (
        "Raise qRxLevMin and check pmRrcConnEstabFailNoReply as TS 38.331 and 3GPP TS 36.213 say. "
        "The Physical Random Access Channel (PRACH) carries the preamble; the eNodeB answers."
    )
    found = {(c.name, c.type) for c in find_candidates(text)}
    assert ("qRxLevMin", "Parameter") in found
    assert ("pmRrcConnEstabFailNoReply", "Counter") in found
    assert ("TS 38.331", "Specification") in found
    assert ("TS 36.213", "Specification") in found
    assert ("Physical Random Access Channel", "Concept") in found
    assert not any(name == "eNodeB" for name, _ in found)
    prach = next(c for c in find_candidates(text) if c.type == "Concept")
    assert prach.aliases == ("PRACH",)


def test_hyphenated_prose_is_not_a_parameter() -> None:
    text = "low-SINR users, intra-LTE and inter-RAT moves, dB-Hz, gNodeBs; q-RxLevMin is one."
    found = [c.name for c in find_candidates(text) if c.type == "Parameter"]
    assert found == ["q-RxLevMin"]
