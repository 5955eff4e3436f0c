"""Exports that training tools read unchanged: fixed layouts, TRL's and OpenAI's formats checked
by validators written from their documented rules, Hugging Face folders loaded with `datasets`,
and the reward functions for GRPO. Runs are made with fake models."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from telesynth_tui.dta.runner import DtaConfig, DtaModels, DtaRunner, create_dta_run
from telesynth_tui.dta.solutions import ModelTeacher, SolverTeacher
from telesynth_tui.errors import TelesynthError
from telesynth_tui.graph.retrieval import Retriever
from telesynth_tui.pipeline.export import Tokenizer, export_run
from telesynth_tui.pipeline.export.records import SCORE_KEYS, Shape
from telesynth_tui.pipeline.export.schema import schema
from telesynth_tui.pipeline.filters import Filters, FilterSettings
from telesynth_tui.pipeline.rewards import numeric_reward, rubric_reward
from telesynth_tui.pipeline.runner import Runner, create_run
from telesynth_tui.pipeline.store import RunConfig
from telesynth_tui.project import Project
from telesynth_tui.units import check_numeric, convert

from .conftest import run_cli
from .fakes import EndsCleanlyHead, FixedScorer, HashEncoder, RoleModel, filter_encoder


def _generation_run(conn: sqlite3.Connection, project: Project) -> int:
    """A KG-template run without maths, through the real runner with fake models."""
    encoder = filter_encoder()
    filters = Filters(encoder, EndsCleanlyHead(), FilterSettings(duplicate=0.999))  # type: ignore[arg-type]
    retriever = Retriever(conn, project.settings.retrieval, encoder=None)
    runner = Runner(conn, retriever, filters, FixedScorer())
    config = RunConfig(n=10, seed=4, mix={"factual": 0.5, "definition": 0.3, "multi_hop": 0.2})
    run_id = create_run(conn, config)
    summary = runner.execute(run_id)
    assert summary["accepted"] >= 5
    return run_id


def _dta_run(conn: sqlite3.Connection) -> int:
    """A DTA run (maths and troubleshooting): the solver and a wrong teacher, as in test_dta."""
    student = RoleModel("student", {"Answer the telecom": "Working: add the terms.\nAnswer: 42 dB"})
    wrong = RoleModel(
        "wrong",
        {
            "senior RAN engineer": json.dumps(
                {"steps": ["Guess the value."], "final_answer": "1e9 W"}
            )
        },
    )
    config = DtaConfig(student="student", teachers=["wrong"], n=8, seed=3, rewriter=None, probes=1)
    run_id = create_dta_run(conn, config)
    models = DtaModels(student, [SolverTeacher(), ModelTeacher(wrong)], HashEncoder())
    summary = DtaRunner(conn, models).execute(run_id)
    assert summary["accepted"] >= 4 and summary["rejected"] >= 4
    return run_id


@pytest.fixture(scope="module")
def runs(bundled_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    path = tmp_path_factory.mktemp("exports") / "proj"
    shutil.copytree(bundled_template, path)
    project = Project.open(path)
    conn = project.connect()
    gen, dta = _generation_run(conn, project), _dta_run(conn)
    conn.close()
    return path, gen, dta


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _words(messages: Sequence[dict[str, str]]) -> int:
    return sum(len(m["content"].split()) + 4 for m in messages)


WORDS = Tokenizer("words", _words)


# --- validators written from the documented rules --------------------------------------------

# TRL (trl/data_utils.py): a conversational example has a supported key holding a list of
# {role, content} dicts; apply_chat_template accepts exactly these key sets.
TRL_KEYS = ("prompt", "chosen", "rejected", "completion", "messages", "label")
TRL_TYPES = (
    {"messages"},
    {"prompt"},
    {"prompt", "completion"},
    {"prompt", "chosen", "rejected"},
    {"chosen", "rejected"},
    {"prompt", "completion", "label"},
)


def trl_problems(example: dict[str, Any], expected: set[str]) -> list[str]:
    keys = {k for k in example if k in TRL_KEYS}
    problems = []
    if keys not in TRL_TYPES:
        problems.append(f"invalid keys for TRL: {sorted(keys)}")
    if keys != expected:
        problems.append(f"keys {sorted(keys)}, expected {sorted(expected)}")
    for key in keys:
        value = example[key]
        if not (
            isinstance(value, list)
            and value
            and all(
                isinstance(m, dict)
                and set(m) == {"role", "content"}
                and isinstance(m["content"], str)
                and m["content"]
                for m in value
            )
        ):
            problems.append(f"{key} is not a list of role/content messages")
    if "prompt" in keys and example["prompt"][-1]["role"] != "user":
        problems.append("the prompt does not end with the user's turn")
    for key in ("chosen", "rejected", "completion"):
        if key in keys and [m["role"] for m in example[key]] != ["assistant"]:
            problems.append(f"{key} is not one assistant message")
    return problems


# OpenAI: the chat fine-tuning checks of the cookbook's data preparation notebook, the
# preference (DPO) layout and the reinforcement fine-tuning layout of the fine-tuning guide.
def openai_sft_problems(ex: Any) -> list[str]:
    if not isinstance(ex, dict):
        return ["data_type"]
    messages = ex.get("messages")
    if not messages:
        return ["missing_messages_list"]
    problems = [f"unrecognized top-level key {k}" for k in ex if k not in ("messages", "tools")]
    for m in messages:
        if "role" not in m or "content" not in m:
            problems.append("message_missing_key")
        if any(k not in ("role", "content", "name", "function_call", "weight") for k in m):
            problems.append("message_unrecognized_key")
        if m.get("role") not in ("system", "user", "assistant", "function"):
            problems.append("unrecognized_role")
        content, call = m.get("content"), m.get("function_call")
        if (not content and not call) or not isinstance(content, str | type(None)):
            problems.append("missing_content")
    if not any(m.get("role") == "assistant" for m in messages):
        problems.append("example_missing_assistant_message")
    return problems


def openai_dpo_problems(ex: dict[str, Any]) -> list[str]:
    problems = [
        f"unrecognized key {k}"
        for k in ex
        if k not in ("input", "preferred_output", "non_preferred_output")
    ]
    messages = (ex.get("input") or {}).get("messages")
    if not messages or set(ex["input"]) - {"messages", "tools", "parallel_tool_calls"}:
        problems.append("input must hold messages (and optionally tools)")
    elif messages[-1]["role"] != "user":
        problems.append("input must end with a user message")
    for key in ("preferred_output", "non_preferred_output"):
        out = ex.get(key)
        if not (
            isinstance(out, list)
            and len(out) == 1
            and out[0].get("role") == "assistant"
            and isinstance(out[0].get("content"), str)
            and out[0]["content"]
        ):
            problems.append(f"{key} must be one assistant message")
    return problems


def openai_rft_problems(ex: dict[str, Any], reference_keys: set[str]) -> list[str]:
    messages = ex.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["missing_messages_list"]
    problems = []
    for m in messages:
        if set(m) - {"role", "content"} or m.get("role") not in ("developer", "system", "user"):
            problems.append(f"unexpected message {sorted(m)} role {m.get('role')}")
        if not isinstance(m.get("content"), str) or not m["content"]:
            problems.append("missing_content")
    if messages[-1].get("role") != "user":
        problems.append("the final message must be the user's")
    if not reference_keys <= set(ex):
        problems.append(f"missing grader fields {reference_keys - set(ex)}")
    return problems


# --- layouts ---------------------------------------------------------------------------------


def test_every_record_has_every_key_with_one_metadata_shape(
    runs: tuple[Path, int, int], tmp_path: Path
) -> None:
    path, gen, dta = runs
    conn = Project.open(path).connect()
    metadata_keys = {f.name for f in schema(Shape("sft"))}
    for fmt, run_ids in (("sft", (gen, dta)), ("rft", (gen, dta)), ("dpo", (dta,))):
        columns = {f.name for f in schema(Shape(fmt))}
        for run_id in run_ids:
            out = tmp_path / f"{fmt}{run_id}.jsonl"
            result = export_run(conn, run_id, fmt, out, tokenizer=WORDS)
            records = _lines(out)
            assert len(records) == result["records"] > 0
            for r in records:
                assert set(r) == columns, (fmt, set(r) ^ columns)
                assert {"metadata"} <= metadata_keys and set(r["metadata"]["scores"]) == set(
                    SCORE_KEYS
                )
                assert r["metadata"]["run_kind"] == ("dta" if run_id == dta else "generation")
                assert r["metadata"]["context_items"] == r["metadata"]["context_trimmed"] == 0
            if fmt == "rft":
                for r in records:
                    maths = r["type"] == "maths"
                    assert (r["numeric_answer"] is not None) == maths
                    assert (r["unit"] is not None) == maths == (r["tolerance"] is not None)
                    assert r["messages"] == r["prompt"]  # OpenAI's prompt and GRPO's, one prompt
    gen_meta = _lines(tmp_path / f"sft{gen}.jsonl")[0]["metadata"]
    dta_meta = _lines(tmp_path / f"sft{dta}.jsonl")[0]["metadata"]
    assert set(gen_meta) == set(dta_meta) and gen_meta["scores"]["selection_score"] is None
    assert dta_meta["scores"]["answer_relevancy"] is None
    assert dta_meta["scores"]["selection_score"] is not None
    # the same prompt in sft, rft and dpo
    sft = {
        r["metadata"]["sample_id"]: r["messages"][:2] for r in _lines(tmp_path / f"sft{dta}.jsonl")
    }
    for r in _lines(tmp_path / f"rft{dta}.jsonl"):
        assert r["prompt"] == sft[r["metadata"]["sample_id"]]
    pairs = _lines(tmp_path / f"dpo{dta}.jsonl")
    for r in pairs:
        assert r["prompt"] == sft[r["metadata"]["sample_id"]]
        assert r["metadata"]["rejected_sample_id"] and r["metadata"]["rejected_reason"]
        assert r["chosen"] != r["rejected"]


def test_trl_shapes_and_chat_template_prefixes(runs: tuple[Path, int, int], tmp_path: Path) -> None:
    """TRL's conversational rules, checked in code, and its chat-template step done with a
    tokenizer built offline: the tokenized prompt must be a prefix of prompt + answer (TRL
    warns otherwise and the loss mask is wrong)."""
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers import models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path, _, dta = runs
    conn = Project.open(path).connect()
    expected = {
        ("sft", "messages"): {"messages"},
        ("sft", "prompt-completion"): {"prompt", "completion"},
        ("dpo", "messages"): {"prompt", "chosen", "rejected"},
    }
    exported: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for fmt, layout in expected:
        out = tmp_path / f"{fmt}-{layout}.jsonl"
        export_run(conn, dta, fmt, out, with_context=True, layout=layout)
        exported[fmt, layout] = _lines(out)
        for r in exported[fmt, layout]:
            assert trl_problems(r, expected[fmt, layout]) == [], r
    rft = tmp_path / "rft.jsonl"
    export_run(conn, dta, "rft", rft)
    for r in _lines(rft):  # GRPO reads the prompt column alone
        assert trl_problems({"prompt": r["prompt"]}, {"prompt"}) == []
    texts = [
        m["content"]
        for rs in exported.values()
        for r in rs
        for key in ("messages", "prompt", "completion", "chosen", "rejected")
        for m in r.get(key, [])
    ]
    raw = RawTokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(
        texts, trainers.WordLevelTrainer(special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"])
    )
    chatml = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        unk_token="<unk>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        chat_template=chatml,
    )
    for (fmt, _layout), records in exported.items():
        for r in records:
            if "messages" in r:
                ids = tok.apply_chat_template(r["messages"], tokenize=True)
                assert tok.decode(ids).count("<|im_start|>") == 3
                continue
            prompt_ids = tok.apply_chat_template(
                r["prompt"], tokenize=True, add_generation_prompt=True
            )
            for key in ("completion", "chosen", "rejected"):
                if key in r:
                    full = tok.apply_chat_template(r["prompt"] + r[key], tokenize=True)
                    assert full[: len(prompt_ids)] == prompt_ids, (fmt, key)
                    assert len(full) > len(prompt_ids)


def test_openai_target_layouts_and_provenance(runs: tuple[Path, int, int], tmp_path: Path) -> None:
    from datasets import load_dataset

    path, gen, dta = runs
    for fmt in ("sft", "rft", "dpo"):
        out = tmp_path / f"{fmt}.jsonl"
        result = json.loads(
            run_cli(
                "export",
                str(dta),
                "--format",
                fmt,
                "--target",
                "openai",
                "--out",
                str(out),
                "--json",
                project=path,
                check=True,
            ).stdout
        )
        records, side = _lines(out), _lines(out.with_suffix(".provenance.jsonl"))
        assert len(records) == len(side) == result["records"] > 0
        assert [s["line"] for s in side] == list(range(1, len(records) + 1))
        assert all(s["sample_id"] == s["metadata"]["sample_id"] for s in side)
        for r in records:
            if fmt == "sft":
                assert openai_sft_problems(r) == [] and set(r) == {"messages"}
            elif fmt == "dpo":
                assert openai_dpo_problems(r) == []
            else:
                keys = {"reference_answer", "rubric", "numeric_answer", "unit", "tolerance"}
                assert openai_rft_problems(r, keys) == [] and "metadata" not in r
        assert "side file" in Path(result["card"]).read_text()
        loaded = load_dataset("json", data_files=str(out), cache_dir=str(tmp_path / "cache"))
        assert loaded["train"].num_rows == len(records)
    # the trl layouts fail OpenAI's checks where they differ (metadata), and pass otherwise
    out = tmp_path / "trl-sft.jsonl"
    export_run(Project.open(path).connect(), gen, "sft", out)
    record = _lines(out)[0]
    assert openai_sft_problems(record) == ["unrecognized top-level key metadata"]
    assert openai_sft_problems({"messages": record["messages"]}) == []


# --- datasets --------------------------------------------------------------------------------


def test_a_folder_of_generation_and_dta_exports_loads_with_datasets(
    runs: tuple[Path, int, int], tmp_path: Path
) -> None:
    from datasets import load_dataset

    path, gen, dta = runs
    conn = Project.open(path).connect()
    folder = tmp_path / "exports"
    for run_id in (gen, dta):
        for fmt in ("sft", "rft", "csv"):
            suffix = "csv" if fmt == "csv" else "jsonl"
            export_run(conn, run_id, fmt, folder / f"run{run_id}-{fmt}.{suffix}")
    export_run(conn, dta, "dpo", folder / f"run{dta}-dpo.jsonl")
    export_run(conn, gen, "sft", folder / f"run{gen}-sft.parquet")
    export_run(conn, dta, "sft", folder / f"run{dta}-sft-pc.jsonl", layout="prompt-completion")
    readme = (folder / "README.md").read_text()
    assert readme.startswith("---\n") and 'config_name: "sft"' in readme
    cache = str(tmp_path / "cache")
    sft = load_dataset(str(folder), "sft", cache_dir=cache)["train"]
    assert {m["run_kind"] for m in sft["metadata"]} == {"generation", "dta"}
    rft = load_dataset(str(folder), "rft", cache_dir=cache)["train"]
    assert None in rft["numeric_answer"] and any(v is not None for v in rft["numeric_answer"])
    assert load_dataset(str(folder), "dpo", cache_dir=cache)["train"].num_rows > 0
    assert load_dataset(str(folder), cache_dir=cache)["train"].num_rows == sft.num_rows  # default
    pc = load_dataset(str(folder), "sft-prompt-completion", cache_dir=cache)["train"]
    assert set(pc.column_names) == {"prompt", "completion", "metadata"}
    parquet = load_dataset(
        "parquet", data_files=str(folder / f"run{gen}-sft.parquet"), cache_dir=cache
    )["train"]
    assert parquet.num_rows == sum(1 for m in sft["metadata"] if m["run_kind"] == "generation")
    # each file alone, as a user loads it
    for f in sorted(folder.glob("*.jsonl")):
        assert load_dataset("json", data_files=str(f), cache_dir=cache)["train"].num_rows > 0
    table = load_dataset("csv", data_files=str(folder / f"run{dta}-csv.csv"), cache_dir=cache)
    assert table["train"].num_rows == len(
        list(csv.DictReader((folder / f"run{dta}-csv.csv").open()))
    )
    rows = list(csv.DictReader((folder / f"run{dta}-csv.csv").open()))
    assert all(isinstance(json.loads(r["steps"]), list) for r in rows)
    assert all(isinstance(json.loads(r["cited"]), list) for r in rows)
    assert all(json.loads(r["agrees_with"]) == [] for r in rows if r["type"] == "maths")


def test_hf_folder_with_splits_by_plan(runs: tuple[Path, int, int], tmp_path: Path) -> None:
    from datasets import load_dataset

    path, gen, dta = runs
    out = tmp_path / "hf"
    result = json.loads(
        run_cli(
            "export",
            str(dta),
            "--format",
            "dpo",
            "--out",
            str(out),
            "--hf",
            "--validation",
            "0.3",
            "--json",
            project=path,
            check=True,
        ).stdout
    )
    assert set(result["splits"]) == {"train", "validation"}
    readme = (out / "README.md").read_text()
    head = readme.split("\n---\n")[0]
    for key in (
        "license:",
        "language:",
        "task_categories:",
        "size_categories:",
        "configs:",
        "dataset_info:",
        'layout: "dpo/1"',
    ):
        assert key in head, key
    assert "## Token lengths" in readme and "| total |" in readme
    data = load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert {k: v.num_rows for k, v in data.items()} == result["splits"]
    plans = {k: {m["plan_id"] for m in v["metadata"]} for k, v in data.items()}
    assert plans["train"] and plans["validation"] and not plans["train"] & plans["validation"]
    again = tmp_path / "hf2"
    run_cli(
        "export",
        str(dta),
        "--format",
        "dpo",
        "--out",
        str(again),
        "--hf",
        "--validation",
        "0.3",
        project=path,
        check=True,
    )
    assert (again / "validation.parquet").read_bytes() == (out / "validation.parquet").read_bytes()
    other = json.loads(
        run_cli(
            "export",
            str(gen),
            "--format",
            "sft",
            "--out",
            str(tmp_path / "g"),
            "--hf",
            "--json",
            project=path,
            check=True,
        ).stdout
    )
    assert sum(other["splits"].values()) == other["records"]


# --- token lengths ---------------------------------------------------------------------------


def test_max_tokens_trims_context_or_warns(runs: tuple[Path, int, int], tmp_path: Path) -> None:
    path, _, dta = runs
    conn = Project.open(path).connect()
    full = tmp_path / "full.jsonl"
    wide = export_run(conn, dta, "sft", full, with_context=True, tokenizer=WORDS)
    longest = int(wide["tokens"]["total"]["max"])
    shortest = int(min(_words(r["messages"]) for r in _lines(full)))
    limit = (shortest + longest) // 2
    out = tmp_path / "trimmed.jsonl"
    result = export_run(conn, dta, "sft", out, with_context=True, max_tokens=limit, tokenizer=WORDS)
    records = _lines(out)
    trimmed = [r for r in records if r["metadata"]["context_trimmed"] > 0]
    assert trimmed and result["tokens"]["trimmed"] == len(trimmed)
    for r in records:  # the prompt holds the items the metadata says it kept
        assert r["messages"][1]["content"].count("\n[") + 1 >= r["metadata"]["context_items"]
        assert f"[{r['metadata']['context_items'] + 1}] " not in r["messages"][1]["content"]
    assert {r["metadata"]["context_items"] for r in _lines(tmp_path / "full.jsonl")} != {0}
    for r in records:
        answer = r["messages"][2]["content"]
        assert answer  # the answer is never cut
        without_context = _words(
            [r["messages"][0], {"role": "user", "content": ""}, r["messages"][2]]
        )
        if without_context < limit - 40:
            assert _words(r["messages"]) <= limit
    tight = export_run(
        conn,
        dta,
        "sft",
        tmp_path / "tight.jsonl",
        with_context=True,
        max_tokens=16,
        tokenizer=WORDS,
    )
    assert tight["tokens"]["over_limit"] == tight["records"]
    assert "even without context" in tight["warnings"][0]
    card = (tmp_path / "tight.card.md").read_text()
    assert "| total |" in card and "Warning:" in card
    with pytest.raises(TelesynthError, match="tokenizer"):
        export_run(conn, dta, "sft", tmp_path / "x.jsonl", max_tokens=100)


def test_records_over_trl_default_length_are_flagged(
    runs: tuple[Path, int, int], tmp_path: Path
) -> None:
    path, _, dta = runs
    big = Tokenizer("x", lambda msgs: 400 * len(msgs))
    result = export_run(
        Project.open(path).connect(), dta, "sft", tmp_path / "a.jsonl", tokenizer=big
    )
    assert "TRL's default max_length" in result["warnings"][0]


@pytest.mark.real_models
def test_cli_token_figures_with_the_tiny_gguf(runs: tuple[Path, int, int], tmp_path: Path) -> None:
    path, gen, _ = runs
    out = tmp_path / "sft.jsonl"
    result = json.loads(
        run_cli(
            "export",
            str(gen),
            "--out",
            str(out),
            "--with-context",
            "--max-tokens",
            "200",
            "--json",
            project=path,
            check=True,
        ).stdout
    )
    assert result["tokens"]["tokenizer"] == "tiny-telesynth"
    assert result["tokens"]["total"]["max"] > 0 and result["tokens"]["max_tokens"] == 200
    bad = run_cli("export", str(gen), "--tokenizer", "nope", project=path)
    assert bad.returncode == 2 and "nope" in bad.stderr and "Traceback" not in bad.stderr


# --- rewards ---------------------------------------------------------------------------------


def test_reward_functions_on_records(runs: tuple[Path, int, int], tmp_path: Path) -> None:
    path, gen, dta = runs
    conn = Project.open(path).connect()
    out = tmp_path / "rft.jsonl"
    export_run(conn, dta, "rft", out)
    export_run(conn, gen, "rft", tmp_path / "gen.jsonl")
    records = _lines(out) + _lines(tmp_path / "gen.jsonl")
    columns = {k: [r[k] for r in records] for k in records[0] if k != "prompt"}
    answers = [[{"role": "assistant", "content": r["reference_answer"]}] for r in records]
    numeric = numeric_reward(answers, **columns)
    assert [v is None for v in numeric] == [r["type"] != "maths" for r in records]
    assert all(v == 1.0 for v in numeric if v is not None)
    assert any(v is not None for v in numeric)
    rubric = rubric_reward(answers, **columns)
    assert any(v is not None for v in rubric)
    assert all(v is None or v >= 0.5 for v in rubric)
    junk = rubric_reward(["It depends on many things."] * len(records), **columns)
    assert all(v is None or v < 0.5 for v in junk)
    # the numeric reward agrees with the unit-aware checker on values stated in other units
    maths = [r for r in records if r["numeric_answer"] is not None]
    for r in maths:
        truth, unit, tol = r["numeric_answer"], r["unit"], r["tolerance"]
        stated = [
            f"The result is {truth:.6g} {unit}.",
            f"= {truth * 1.5 + 10:.6g} {unit}",
            "I cannot say.",
        ]
        if unit == "dBm":
            watts = convert(truth, "dBm", "W")
            assert watts is not None
            stated += [f"P = {watts:.6g} W", f"P = {watts * 1000:.6g} mW"]
        if unit in ("Hz", "kHz", "MHz"):
            stated.append(f"= {convert(truth, unit, 'Hz'):.6g} Hz")
        rewards = numeric_reward(
            stated, [truth] * len(stated), [unit] * len(stated), [tol] * len(stated)
        )
        expected = [
            1.0 if check_numeric(s, truth, unit, rel_tol=0.0, abs_tol=tol).ok else 0.0
            for s in stated
        ]
        assert rewards == expected and rewards[0] == 1.0 and rewards[1] == rewards[2] == 0.0


# --- refusals --------------------------------------------------------------------------------


def test_refusals_write_nothing(runs: tuple[Path, int, int], tmp_path: Path) -> None:
    path, gen, dta = runs
    out = tmp_path / "dpo.jsonl"
    result = run_cli("export", str(gen), "--format", "dpo", "--out", str(out), project=path)
    assert result.returncode == 2 and "no DPO pairs" in result.stderr and not out.exists()
    assert not list(tmp_path.iterdir())
    for args, message in (
        (["--out", str(tmp_path / "x.txt")], ".jsonl or .parquet"),
        (["--format", "csv", "--out", str(tmp_path / "x.jsonl")], ".csv"),
        (["--target", "openai", "--out", str(tmp_path / "x.parquet")], ".jsonl"),
        (["--format", "rft", "--layout", "prompt-completion"], "sft only"),
        (["--hf", "--out", str(tmp_path / "x.jsonl")], "folder"),
        (["--format", "csv", "--hf"], "--hf"),
        (["--layout", "nope"], "--layout"),
    ):
        bad = run_cli("export", str(dta), *args, project=path)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
        assert "Traceback" not in bad.stderr
    assert not list(tmp_path.iterdir())
    conn = Project.open(path).connect()
    empty = create_run(conn, RunConfig(n=2, seed=1))  # planned, nothing generated
    with pytest.raises(TelesynthError, match="nothing to export"):
        export_run(conn, empty, "sft", tmp_path / "e.jsonl")
    with pytest.raises(TelesynthError, match="nothing to export"):
        export_run(conn, empty, "csv", tmp_path / "e.csv")
    assert not list(tmp_path.iterdir())


def test_exports_read_back_as_evaluation_sets(runs: tuple[Path, int, int], tmp_path: Path) -> None:
    from telesynth_tui.evaluate.student import read_own_samples

    path, gen, dta = runs
    conn = Project.open(path).connect()
    for run_id, fmt, layout in (
        (gen, "rft", "messages"),
        (dta, "rft", "messages"),
        (dta, "sft", "prompt-completion"),
        (gen, "sft", "messages"),
    ):
        out = tmp_path / f"{run_id}-{fmt}-{layout}.jsonl"
        export_run(conn, run_id, fmt, out, with_context=True, layout=layout)
        records = _lines(out)
        read = read_own_samples(out)
        assert not read.skipped and len(read.items) == len(records)
        for item, r in zip(read.items, records, strict=True):
            maths = r["metadata"]["type"] == "maths" and fmt == "rft"
            assert ("numeric" in item.meta) == maths and item.meta["context"]
            assert item.references[0] and item.question
