"""Stage 3a, the KG-template realizer: a deterministic, grounded question and answer per plan,
with several phrasings per type chosen by the seeded RNG. The embedded default generator."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from telesynth_tui.inference.base import CallContext
from telesynth_tui.pipeline.sources import QARequest, QASource

# predicate -> (question phrasings about the subject, answer sentence)
FACT_TEMPLATES: dict[str, tuple[tuple[str, ...], str]] = {
    "indicates": (
        (
            "What can the {st} '{s}' indicate?",
            "Which root cause can {s} point to?",
            "When {s} appears, what is one possible cause?",
        ),
        "{s} can indicate {o}.",
    ),
    "degrades": (
        ("Which KPI does {s} degrade?", "What KPI gets worse because of {s}?"),
        "{s} degrades {o}.",
    ),
    "checked_by": (
        ("How can an engineer confirm or rule out {s}?", "Which check confirms {s}?"),
        "{s} is checked by: {o}.",
    ),
    "reads": (
        ("What does the check '{s}' look at?", "Which {ot} does '{s}' read?"),
        "The check '{s}' reads {o}.",
    ),
    "resolved_by": (
        ("How is {s} resolved?", "What action removes {s}?"),
        "{s} is resolved by: {o}.",
    ),
    "adjusts": (
        ("Which parameter does the action '{s}' change?", "What does '{s}' adjust?"),
        "'{s}' adjusts {o}.",
    ),
    "verified_by": (
        ("How do you verify that '{s}' worked?", "What shows that '{s}' was effective?"),
        "'{s}' is verified with {o}.",
    ),
    "measured_by": (
        ("Which counter is {s} computed from?", "What counter measures {s}?"),
        "{s} is measured by {o}.",
    ),
    "raised_by": (
        ("Which network element raises the {s} alarm?", "Where does the alarm '{s}' come from?"),
        "{s} is raised by the {o}.",
    ),
    "affects": (
        ("What does {s} affect?", "Which quantity is influenced by {s}?"),
        "{s} affects {o}.",
    ),
    "triggers": (("What does {s} trigger?",), "{s} triggers {o}."),
    "part_of": (("What is {s} part of?",), "{s} is part of {o}."),
    "connects": (("Which element does the {s} interface connect?",), "{s} connects the {o}."),
    "uses": (("What does {s} use?",), "{s} uses {o}."),
    "defined_in": (
        ("Which specification defines {s}?", "Where is {s} specified?"),
        "{s} is defined in {o}.",
    ),
    "computes": (("What does the formula '{s}' compute?",), "'{s}' computes {o}."),
    "has_input": (("What is an input of the formula '{s}'?",), "'{s}' takes {o} as an input."),
    "is_a": (("What kind of concept is {s}?",), "{s} is a {o}."),
}
MULTI_HOP_TEMPLATES = (
    "Starting from {start}, follow the chain {chain}: what do you reach?",
    "{question}",
)
TROUBLESHOOTING_TEMPLATES = (
    "{Symptom} on a cell: give a troubleshooting plan.",
    "How would you troubleshoot {symptom}? List possible causes, checks, actions and verification.",
    "A cell shows {symptom}. What are the possible causes, what should be checked and what should "
    "be changed?",
)
SYMPTOM_PHRASES = {
    "Alarm": "the alarm '{s}'",
    "KPI": "a degraded {s}",
    "Counter": "abnormal {s} values",
}
NO_UNIT = {"", "1", "-", "index", "ratio"}
DEFINITION_TEMPLATES = ("What is {e}?", "Explain the {t} '{e}'.", "Define {e} in RAN terms.")
MATHS_TEMPLATES = (
    "Compute the {name} for {inputs}.",
    "Given {inputs}, what is the {name}?",
    "Using {expression}, find {symbol} when {inputs}.",
)
CHAIN_QUESTIONS = {
    ("indicates", "resolved_by"): "Which action resolves a cause indicated by {s}?",
    ("indicates", "resolved_by", "adjusts"): (
        "Which parameter is changed by the action that resolves a cause indicated by {s}?"
    ),
    ("indicates", "checked_by"): "Which check confirms a cause indicated by {s}?",
    ("checked_by", "reads"): "What does the check for {s} read?",
    ("indicates", "checked_by", "reads"): (
        "Which KPI or counter is read when checking a cause indicated by {s}?"
    ),
    ("resolved_by", "adjusts"): "Which parameter is adjusted when resolving {s}?",
    ("resolved_by", "verified_by"): "How is the fix for {s} verified?",
    ("degrades", "measured_by"): "Which counter measures the KPI degraded by {s}?",
}


# phrases that rank causes or actions; the graph documents which causes a symptom can indicate,
# never which is more likely, so a realized sample must not contain them
RANKING_RE = re.compile(
    r"\b(?:most|more|less|least)\s+(?:likely|probable|common|frequent)\b"
    r"|\b(?:main|primary|principal|leading|top|first|usual|dominant)\s+(?:root\s+)?causes?\b"
    r"|\bthe\s+(?:likely|probable)\s+(?:root\s+)?cause\b"
    r"|\b(?:likeliest|best|first)\s+(?:fix|action|cause)\b",
    re.IGNORECASE,
)


def ranking_phrases(text: str) -> list[str]:
    """Ranking phrases in the text (none is supported by the graph)."""
    return [m.group(0) for m in RANKING_RE.finditer(text)]


def fmt_input(value: float) -> str:
    """An input value written in full, so the question states exactly what the truth used."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


def missing_inputs(question: str, payload: dict[str, Any]) -> list[str]:
    """Symbols of a maths plan whose value the question does not state."""
    return [
        k
        for k, v in payload["inputs"].items()
        if not re.search(rf"\({re.escape(k)}\) = {re.escape(fmt_input(v))}(?!\d|\.\d)", question)
    ]


def _short_description(text: str) -> str:
    """A description without its parenthetical remarks (value lists, notes), for a question."""
    return re.sub(r"\s*\([^()]*\)", "", text).strip().rstrip(".")


@dataclass
class Candidate:
    question: str
    answer: str
    steps: list[str] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)  # context item keys, e.g. "fact:12"
    raw_text: str = ""


def _fmt_number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.4g}"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}".replace(",", "")


def _join(items: list[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


class TemplateRealizer(QASource):
    """Turns a plan into one grounded QA candidate. As a QA source it writes from the plan
    alone (the context is retrieved for its question afterwards), seeded by the request."""

    name = "kg-template"
    reads_context: ClassVar[bool] = False

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def realize(self, plan_type: str, payload: dict[str, Any]) -> Candidate:
        return getattr(self, f"_{plan_type}")(payload)

    def write(self, request: QARequest, ctx: CallContext) -> list[Candidate | str]:
        self.rng.seed(request.seed)
        return [self.realize(request.plan_type, request.payload)]

    def _factual(self, p: dict[str, Any]) -> Candidate:
        f = p["fact"]
        questions, answer = FACT_TEMPLATES.get(
            f["predicate"], (("How is {s} related to {o}?",), "{s} is related to {o}.")
        )
        values = {
            "s": f["subject"],
            "o": f["object"],
            "st": f["subject_type"].lower(),
            "ot": f["object_type"].lower(),
        }
        question = self.rng.choice(questions).format(**values)
        others = [a for a in p.get("answers", []) if a != f["object"]]
        text = answer.format(**values)
        if others:
            text += f" Other documented answers: {_join(others[:4])}."
        return Candidate(question, text, [text], [f"fact:{f['relation_id']}"])

    def _multi_hop(self, p: dict[str, Any]) -> Candidate:
        path = p["path"]
        chain = tuple(f["predicate"] for f in path)
        start, end = path[0]["subject"], path[-1]["object"]
        template = CHAIN_QUESTIONS.get(chain)
        question = (
            template.format(s=start)
            if template and self.rng.random() < 0.7
            else MULTI_HOP_TEMPLATES[0].format(
                start=start, chain=" then ".join(c.replace("_", " ") for c in chain)
            )
        )
        steps = [f"{f['subject']} {f['predicate'].replace('_', ' ')} {f['object']}." for f in path]
        answer = f"{end}. " + " ".join(steps)
        return Candidate(question, answer, steps, [f"fact:{f['relation_id']}" for f in path])

    def _troubleshooting(self, p: dict[str, Any]) -> Candidate:
        symptom = SYMPTOM_PHRASES.get(p["symptom_type"], "{s}").format(s=p["symptom"])
        question = self.rng.choice(TROUBLESHOOTING_TEMPLATES).format(
            symptom=symptom, Symptom=symptom[0].upper() + symptom[1:]
        )
        steps: list[str] = []
        causes = p["causes"]
        steps.append(f"Possible causes of {p['symptom']}: {_join([c['cause'] for c in causes])}.")
        for c in causes:
            if c["checks"]:
                reads = f", reading {_join(c['reads'])}" if c["reads"] else ""
                steps.append(f"To confirm {c['cause']}: {_join(c['checks'])}{reads}.")
            if c["actions"]:
                params = f" (adjusting {_join(c['adjusts'])})" if c["adjusts"] else ""
                steps.append(f"If {c['cause']} is confirmed: {_join(c['actions'])}{params}.")
            if c["verify"]:
                steps.append(f"Verify the fix for {c['cause']} with {_join(c['verify'])}.")
        answer = " ".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
        return Candidate(question, answer, steps)

    def _definition(self, p: dict[str, Any]) -> Candidate:
        question = self.rng.choice(DEFINITION_TEMPLATES).format(
            e=p["entity"], t=p["entity_type"].lower()
        )
        answer = f"{p['entity']} ({p['entity_type']}): {p['description']}"
        return Candidate(question, answer, [answer])

    def _maths(self, p: dict[str, Any]) -> Candidate:
        units = {k: ("" if u in NO_UNIT else u) for k, u in p["units"].items()}
        inputs = ", ".join(
            f"{_short_description(p['descriptions'].get(k) or '') or k} ({k}) = {fmt_input(v)}"
            f" {units[k]}".strip()
            for k, v in p["inputs"].items()
        )
        question = self.rng.choice(MATHS_TEMPLATES).format(
            name=p["name"],
            inputs=inputs,
            expression=p["expression"],
            symbol=p["output_symbol"] or "the result",
        )
        result = f"{_fmt_number(p['answer'])} {p['unit']}".strip()
        symbol = p["output_symbol"] or "result"
        steps = [
            f"Formula: {symbol} = {p['expression']}.",
            "Inputs: "
            + ", ".join(f"{k} = {fmt_input(v)} {units[k]}".strip() for k, v in p["inputs"].items())
            + ".",
            f"Result: {symbol} = {result}.",
        ]
        answer = f"With {symbol} = {p['expression']} and the given inputs, {symbol} = {result}."
        return Candidate(question, answer, steps)
