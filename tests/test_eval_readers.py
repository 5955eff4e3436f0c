"""Benchmark readers on the development subsets as shipped, and the answer parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telesynth_tui.errors import TelesynthError
from telesynth_tui.evaluate.answers import parse_choice
from telesynth_tui.evaluate.readers import read_eval_set

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared/data is not beside the project")


@pytest.mark.parametrize(
    ("relative", "fmt", "items", "kind", "skipped"),
    [
        ("teleqna/TeleQnA_dev.json", "teleqna", 400, "mcq", 0),
        (
            "mm_telcobench/5G_Faults_Multi_Correct_MCQ_Benchmark_.csv",
            "mm-telcobench-multi-correct",
            120,
            "mcq",
            0,
        ),
        (
            "mm_telcobench/MultiHop_MCQ_Telco_Bench_QA.csv",
            "mm-telcobench-multihop-mcq",
            200,
            "mcq",
            0,
        ),
        ("mm_telcobench/LONG_TelcoBench.csv", "mm-telcobench-long", 150, "free", 0),
        ("mm_telcobench/Long_multi_BENCH_data.csv", "mm-telcobench-multihop-long", 150, "free", 0),
        ("oran_bench/fin_H_dev.json", "oran-bench", 199, "mcq", 1),  # one item has no question
    ],
)
def test_dev_subsets_read_as_shipped(
    relative: str, fmt: str, items: int, kind: str, skipped: int
) -> None:
    data = read_eval_set(DATA / relative)
    assert data.format == fmt and len(data.items) == items and len(data.skipped) == skipped
    for item in data.items:
        assert item.kind == kind and item.question
        if kind == "mcq":
            assert len(item.options) >= 2 and item.answers
            assert all(0 <= a < len(item.options) for a in item.answers)
            assert not any(re.match(r"\d\. |•", o) for o in item.options)
        else:
            assert item.references and all(item.references)


def test_known_answers_of_each_format() -> None:
    teleqna = read_eval_set(DATA / "teleqna/TeleQnA_dev.json").items[0]
    assert teleqna.answers == {3} and teleqna.options[3] == "All devices"
    faults = read_eval_set(DATA / "mm_telcobench/5G_Faults_Multi_Correct_MCQ_Benchmark_.csv")
    assert faults.items[0].answers == {5}
    assert any(len(i.answers) > 1 for i in faults.items)  # several correct
    oran = read_eval_set(DATA / "oran_bench/fin_H_dev.json").items[0]
    assert oran.answers == {1} and oran.options[1].startswith("It consults the SM Catalog")
    long = read_eval_set(DATA / "mm_telcobench/LONG_TelcoBench.csv").items[0]
    assert len(long.references) == 3


def test_malformed_items_are_skipped_with_reasons(tmp_path: Path) -> None:
    path = tmp_path / "oran.json"
    path.write_text('["q", ["1. a", "2. b"], "2"]\nnot json\n["q2", ["1. a"], "7"]\n')
    data = read_eval_set(path)
    assert len(data.items) == 1 and len(data.skipped) == 2
    assert data.skipped[0].startswith("oran.json:2: invalid JSON")
    assert "beyond the options" in data.skipped[1]
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(TelesynthError, match="unknown CSV layout"):
        read_eval_set(odd)
    with pytest.raises(TelesynthError, match="unknown evaluation format"):
        (tmp_path / "x.txt").write_text("hello")
        read_eval_set(tmp_path / "x.txt")


@pytest.mark.parametrize(
    ("text", "single", "multiple"),
    [
        ("B", {1}, {1}),
        ("(C) because the pool is empty", {2}, {2}),
        ("Answer: 3", {2}, {2}),
        ("The correct answer is option 2.", {1}, {1}),
        ("I think the IP pool is exhausted in the SMF.", {2}, {2}),
        ("**D**", {3}, {3}),
        ("option 1 and option 3", {0}, {0, 2}),
        ("no idea", set(), set()),
    ],
)
def test_answer_parser(text: str, single: set[int], multiple: set[int]) -> None:
    options = [
        "The UPF routes traffic",
        "The AMF authenticates",
        "The IP pool is exhausted",
        "None",
    ]
    assert parse_choice(text, options) == single
    assert parse_choice(text, options, multiple=True) == multiple
