"""`telesynth eval` with the tiny GGUF as the student, on the dev subsets and our own exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_cli
from .test_eval_readers import DATA, pytestmark  # noqa: F401 - skip without shared/data


@pytest.mark.real_models
def test_eval_mcq_free_and_compare(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    run_cli("init", "--empty", project=proj, check=True)
    mcq = json.loads(
        run_cli(
            "eval",
            "--student",
            "tiny-telesynth",
            "--set",
            str(DATA / "teleqna/TeleQnA_dev.json"),
            "--limit",
            "6",
            "--json",
            project=proj,
            check=True,
        ).stdout
    )
    assert mcq["items"] == 6 and mcq["graded"] == 6 and 0.0 <= mcq["accuracy"] <= 1.0
    assert mcq["decode_tok_s"] > 0 and mcq["joules_per_output_token"] > 0
    assert mcq["energy_source"] in ("rapl", "estimate") and mcq["format"] == "teleqna"
    free = json.loads(
        run_cli(
            "eval",
            "--student",
            "tiny-telesynth",
            "--set",
            str(DATA / "mm_telcobench/LONG_TelcoBench.csv"),
            "--limit",
            "3",
            "--json",
            project=proj,
            check=True,
        ).stdout
    )
    assert free["accuracy"] is None and free["graded"] == 0
    assert 0 <= free["rouge_l"] <= 1 and 0 <= free["bleu"] <= 1 and 0 < free["embedding_f1"] <= 1
    table = run_cli(
        "eval", "--compare", str(mcq["eval_run"]), str(free["eval_run"]), project=proj, check=True
    ).stdout
    assert "accuracy" in table and "teleqna" in table and "mm-telcobench-long" in table


@pytest.mark.real_models
def test_eval_on_our_own_rft_export_grades_numbers(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    run_cli("init", "--empty", project=proj, check=True)
    export = tmp_path / "held_out.jsonl"
    record = {
        "prompt": [{"role": "user", "content": "Compute the EIRP for 43 dBm, 18 dBi, 2 dB."}],
        "reference_answer": "EIRP = 59 dBm.",
        "numeric_answer": 59.0,
        "unit": "dBm",
        "tolerance": 0.59,
        "type": "maths",
        "metadata": {"sample_id": 1},
    }
    export.write_text(json.dumps(record) + "\n" + "{broken\n")
    result = json.loads(
        run_cli(
            "eval",
            "--student",
            "tiny-telesynth",
            "--set",
            str(export),
            "--json",
            project=proj,
            check=True,
        ).stdout
    )
    assert result["format"] == "telesynth" and result["items"] == 1 and result["graded"] == 1
    assert result["skipped"] == 1 and "held_out.jsonl:2" in result["skipped_reasons"][0]


def test_eval_errors_are_one_line(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    run_cli("init", "--empty", project=proj, check=True)
    odd = tmp_path / "odd.txt"
    odd.write_text("what is this")
    result = run_cli("eval", "--student", "tiny-telesynth", "--set", str(odd), project=proj)
    assert result.returncode == 2 and "unknown evaluation format" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_cli("eval", "--compare", "7", "8", project=proj)
    assert missing.returncode == 2 and "no evaluation run 7" in missing.stderr
