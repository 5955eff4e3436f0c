"""Evaluation metrics against values computed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from telesynth_tui.evaluate.metrics import bleu, embedding_f1, rouge_l
from telesynth_tui.project import Project
from telesynth_tui.units import check_numeric


def test_rouge_l_by_hand() -> None:
    # LCS of the two is "the cat sat on mat": 5 of 6 words each way -> F1 = 5/6
    assert rouge_l("the cat sat on the mat", ["the cat sat on a mat"]) == pytest.approx(5 / 6)
    # best over several references; nothing in common -> 0
    assert rouge_l("the cat sat on the mat", ["dogs bark", "the cat sat on the mat"]) == 1.0
    assert rouge_l("uplink noise", ["downlink power"]) == 0.0


def test_bleu_by_hand() -> None:
    # n-gram precisions 5/6, 3/5, 2/4, 1/3, equal lengths (no brevity penalty):
    # BLEU = (5/6 * 3/5 * 1/2 * 1/3) ** (1/4)
    expected = (5 / 6 * 3 / 5 * 1 / 2 * 1 / 3) ** 0.25
    assert bleu("the cat sat on the mat", ["the cat sat on a mat"]) == pytest.approx(expected)
    assert bleu("the cat sat on the mat", ["the cat sat on the mat"]) == pytest.approx(1.0)


def test_embedding_f1_orders_answers_by_meaning() -> None:
    encoder = Project.optional(Path("/nonexistent")).encoder()
    same = embedding_f1("VSWR alarm on the feeder", ["VSWR alarm on the feeder"], encoder)
    close = embedding_f1(
        "VSWR alarm on the feeder", ["The antenna feeder raised a VSWR alarm"], encoder
    )
    far = embedding_f1("VSWR alarm on the feeder", ["Paris is sunny today"], encoder)
    assert same == pytest.approx(1.0, abs=1e-4) and same > close > far


@pytest.mark.parametrize(
    ("text", "truth", "unit", "ok"),
    [
        ("The SNR is 13 dB.", 13.0, "dB", True),
        ("Bandwidth = 0.02 GHz", 20.0, "MHz", True),
        ("P = 1 W", 30.0, "dBm", True),
        ("about 30 dBm", 0.5, "W", False),
        ("The distance is 1,500 m", 1.5, "km", True),
        ("13.2 dB", 13.0, "dB", False),  # outside 1 %
    ],
)
def test_numeric_pass_with_units(text: str, truth: float, unit: str, ok: bool) -> None:
    assert check_numeric(text, truth, unit).ok is ok
