"""Stage 3b and 4: a registered GGUF model writes the QA for the plan it is given, and optionally
refines it.

The plan reaches the model: its type, its facts or relation path, and for maths the formula, the
sampled inputs and the computed result. Each type has its own output schema, shaped like the
plan (a troubleshooting plan's causes with their checks, counters, actions, parameters and
verification; a multi-hop chain; a worked calculation), with the plan's entity names as enums
wherever a slot names one, so the model phrases rather than invents. Code assembles the final
question, answer and steps from the slots. The prompt is the same system text for every call,
then the plan's context, then the task, so calls on one plan share a prefix.

Schema bounds come from the model's output budget so a complete object fits. Anything unusable
becomes a recorded rejection "reason\\nraw text": an output stopped at the token limit, or a text
slot that reached its length bound, is rejected as "cut: ..."; a slot that contradicts the plan as
"generate: off plan: ..."."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import CallContext, Completion, Message, SamplingParams, TextModel
from telesynth_tui.inference.metrics import CallMetrics
from telesynth_tui.pipeline.realize import (
    NO_UNIT,
    SYMPTOM_PHRASES,
    Candidate,
    _fmt_number,
    _join,
)
from telesynth_tui.pipeline.sources import QARequest, QASource

DOCUMENT = "document"  # a plan over one section of a user's document (document-driven mode)
SYSTEM = (
    "You write questions and answers that train RAN engineers. Use only the facts you are given. "
    "Write complete sentences; never mention the facts, the plan or these instructions."
)
# how a relation reads in a sentence
PHRASES = {
    "indicates": "can indicate",
    "resolved_by": "is resolved by",
    "checked_by": "is checked by",
    "reads": "reads",
    "adjusts": "adjusts",
    "verified_by": "is verified by",
    "degrades": "degrades",
    "measured_by": "is measured by",
    "raised_by": "is raised by",
    "affects": "affects",
    "triggers": "triggers",
    "part_of": "is part of",
    "connects": "connects",
    "uses": "uses",
    "defined_in": "is defined in",
    "computes": "computes",
    "has_input": "takes as an input",
    "is_a": "is a",
    "related_to": "is related to",
}
# what a multi-hop question asks, by the chain's predicates ({s}: the chain's start)
CHAIN_INTENTS = {
    ("indicates", "resolved_by"): "Ask which action resolves a cause that {s} can indicate.",
    ("indicates", "resolved_by", "adjusts"): (
        "Ask which parameter is changed by the action that resolves a cause that {s} can indicate."
    ),
    ("indicates", "checked_by"): "Ask which check confirms a cause that {s} can indicate.",
    ("checked_by", "reads"): "Ask which KPI or counter is read by the check for {s}.",
    ("indicates", "checked_by", "reads"): (
        "Ask which KPI or counter is read when checking a cause that {s} can indicate."
    ),
    ("resolved_by", "adjusts"): "Ask which parameter is adjusted by the action that resolves {s}.",
    ("resolved_by", "verified_by"): "Ask how the fix for {s} is verified.",
    ("degrades", "measured_by"): "Ask which counter measures the KPI that {s} degrades.",
}
CHARS_PER_TOKEN = 2.5  # a cautious average for JSON text on small vocabularies
QUESTION_CHARS = 180  # a question is one sentence; longer ones are loops
REPEAT_PENALTY = 1.1  # greedy decoding of small models loops without it
MAX_PAIRS = 10  # the seed method: up to 10 QA per document section
TROUBLE_SLOTS = ("checks", "reads", "actions", "adjusts", "verify")


def _kind(entity_type: str) -> str:
    """An entity type as words: RootCause -> root cause, KPI -> KPI."""
    if entity_type.isupper():
        return entity_type
    return re.sub(r"(?<!^)(?=[A-Z])", " ", entity_type).lower() or "entity"


def phrase(predicate: str) -> str:
    return PHRASES.get(predicate, predicate.replace("_", " "))


def numbered(context: list[dict[str, Any]]) -> str:
    return "\n".join(f"[{i}] {item['text']}" for i, item in enumerate(context, 1))


def facts_block(context: list[dict[str, Any]]) -> str:
    """The context as a plain list: no numbers a model could echo into its text."""
    return "Facts:\n" + "\n".join("- " + " ".join(item["text"].split()) for item in context)


# free text: one line, no quotes, escapes, brackets or braces (no JSON or template fragments,
# no "[2]" citations); a question is one sentence that opens like a question and ends with "?"
_PLAIN = r'^[^"\\{}\[\]<>\x00-\x1f]{%d,%d}$'
_STARTS = "What|Which|How|Why|When|Where|In|For|On|If|Given"
_FREE = r'[^"\\{}\[\]<>\x00-\x1f?]'
# how each type's question opens (the model writes the rest)
OPENINGS = {
    "troubleshooting": "How do I troubleshoot|How should I troubleshoot|How can I troubleshoot|"
    "What should I check and change for|What are the possible causes of",
    "multi_hop": "Which|What",
    "factual": "Which|What",
    "definition": "What is|What does|What are",
    "maths": "What is",
}
_BOUND = re.compile(r"\{(\d+),(\d+)\}")


def _text(low: int, high: int) -> dict[str, Any]:
    """A free-text slot of `low`-`high` characters (maxLength is what cut detection reads)."""
    return {"type": "string", "pattern": _PLAIN % (low, high), "maxLength": high}


def _literal(text: str) -> str:
    """`text` as a case-insensitive regular expression for the grammar converter (spaces stay
    unescaped): a model that writes "gnss signal loss" has named "GNSS Signal Loss"."""
    out = []
    for c in text:
        if c.lower() != c.upper():
            out.append(f"[{c.lower()}{c.upper()}]")
        else:
            out.append("\\" + c if c in "^$*+()[]{}|" else c)
    return "".join(out)


def _question(low: int, high: int, must: str = "", starts: str = _STARTS) -> dict[str, Any]:
    """A question of at most `high` characters that opens with one of `starts`; with `must`,
    one that names it (the grammar lets the model write freely and only closes the question
    once the name is in it)."""
    if not must or any(c in must for c in '"\\?.') or len(must) > high // 2:
        return {
            "type": "string",
            "pattern": f"^({starts}) {_FREE}{{{low - 8},{high - 40}}}\\?$",
            "maxLength": high,
            "x-starts": starts,
            "x-body": high - 40,
        }
    head = 60
    tail = max(10, high - 40 - len(must) - head)
    pattern = f"^({starts}) {_FREE}{{0,{head}}}{_literal(must)}{_FREE}{{0,{tail}}}\\?$"
    return {
        "type": "string",
        "pattern": pattern,
        "maxLength": high,
        "x-starts": starts,
        "x-must": must,
        "x-head": head,
        "x-tail": tail,
    }


def _enum_list(names: list[str]) -> dict[str, Any]:
    names = list(dict.fromkeys(names))
    return {"type": "array", "items": {"enum": names}, "minItems": 1, "maxItems": len(names)}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def worst_chars(schema: dict[str, Any]) -> int:
    """The longest JSON text the schema admits (no whitespace), in characters."""
    if "enum" in schema:
        return max(len(json.dumps(v)) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return 2 + sum(len(json.dumps(k)) + 2 + worst_chars(v) for k, v in props.items())
    if kind == "array":
        if "prefixItems" in schema:
            return 2 + sum(worst_chars(s) + 1 for s in schema["prefixItems"])
        return 2 + int(schema.get("maxItems", 8)) * (worst_chars(schema["items"]) + 1)
    if kind == "string":
        return int(schema.get("maxLength", 200)) + 2
    if kind == "number":
        return 24
    return 12


def text_bounds(schema: dict[str, Any], path: str = "") -> list[tuple[str, int]]:
    """(slot path, maxLength) of every free-text slot."""
    out: list[tuple[str, int]] = []
    if schema.get("type") == "string" and "maxLength" in schema:
        out.append((path, int(schema["maxLength"])))
    for key, sub in schema.get("properties", {}).items():
        out += text_bounds(sub, f"{path}.{key}" if path else key)
    for i, sub in enumerate(schema.get("prefixItems", [])):
        out += text_bounds(sub, f"{path}[{i}]")
    if "items" in schema and isinstance(schema["items"], dict):
        out += text_bounds(schema["items"], f"{path}[]")
    return out


def _at_bound(schema: dict[str, Any], value: str) -> bool:
    """Whether a text slot's free part reached its upper bound (the grammar then closed it)."""
    pattern = schema.get("pattern", "")
    must = schema.get("x-must")
    opening = next((o for o in schema.get("x-starts", "").split("|") if value.startswith(o)), "")
    if "x-body" in schema:  # a question: its opening, a space, the body, "?"
        return len(value) - len(opening) - 2 >= int(schema["x-body"])
    if must:  # the name was forced in, or the text after it ran to the end of its bound
        body, must = value[len(opening) + 1 :].lower(), must.lower()
        return body.find(must) >= int(schema["x-head"]) or (
            len(body) - (body.rfind(must) + len(must)) - 1 >= int(schema["x-tail"])
        )
    bound = _BOUND.findall(pattern)
    if not bound:
        return len(value) >= int(schema["maxLength"])
    high = int(bound[-1][1])
    return len(value) >= high


def cut_slot(schema: dict[str, Any], data: Any, path: str = "") -> str | None:
    """The first free-text slot whose value reached its bound: the grammar closed the string
    there, so the text was cut mid-way."""
    if schema.get("type") == "string" and isinstance(data, str) and "maxLength" in schema:
        if _at_bound(schema, data):
            return f"{path} reached its {schema['maxLength']}-character bound"
        return None
    if isinstance(data, dict):
        for key, sub in schema.get("properties", {}).items():
            found = cut_slot(sub, data.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
    if isinstance(data, list):
        prefix = schema.get("prefixItems", [])
        for i, value in enumerate(data):
            sub = prefix[i] if i < len(prefix) else schema.get("items")
            if isinstance(sub, dict):
                found = cut_slot(sub, value, f"{path}[{i}]")
                if found:
                    return found
    return None


class Writer:
    """Per-type prompt, schema and assembly of a plan's QA. `schema(scale)` gives the schema
    with its free-text bounds multiplied by `scale`."""

    def __init__(self, plan_type: str, payload: dict[str, Any], pairs: int) -> None:
        self.type = plan_type
        self.p = payload
        self.pairs = max(1, min(pairs, MAX_PAIRS))

    # --- the task ---------------------------------------------------------------------------

    def task(self) -> str:
        return str(getattr(self, f"_task_{self.type}")())

    def _task_troubleshooting(self) -> str:
        p = self.p
        lines = []
        for c in p["causes"]:
            parts = [f"possible cause: {c['cause']}"]
            if c["checks"]:
                parts.append(f"checks: {'; '.join(c['checks'])}")
            if c["reads"]:
                parts.append(f"KPIs/counters to read: {'; '.join(c['reads'])}")
            if c["actions"]:
                parts.append(f"actions: {'; '.join(c['actions'])}")
            if c["adjusts"]:
                parts.append(f"parameters changed: {'; '.join(c['adjusts'])}")
            if c["verify"]:
                parts.append(f"verify with: {'; '.join(c['verify'])}")
            lines.append("- " + " | ".join(parts))
        symptom = SYMPTOM_PHRASES.get(p["symptom_type"], "{s}").format(s=p["symptom"])
        return (
            "The troubleshooting plan (the causes are not ranked):\n" + "\n".join(lines) + "\n\n"
            f"Ask how to troubleshoot {symptom} on a cell, then give the plan cause by cause. "
            "Reply as JSON."
        )

    def _task_multi_hop(self) -> str:
        path = self.p["path"]
        chain = "\n".join(f"- {f['subject']} {phrase(f['predicate'])} {f['object']}" for f in path)
        start = path[0]["subject"]
        intent = CHAIN_INTENTS.get(tuple(f["predicate"] for f in path))
        if intent is None:
            steps = ", then ".join(phrase(f["predicate"]) for f in path)
            end_kind = _kind(path[-1]["object_type"])
            intent = f"Ask which {end_kind} is reached from {{s}} by: {steps}."
        return (
            f"Known relations, in order:\n{chain}\n\n{intent.format(s=start)} Do not name "
            f"{path[-1]['object']} in the question. Then give the relations step by step and the "
            "answer. Reply as JSON."
        )

    def _task_maths(self) -> str:
        p = self.p
        symbol = p["output_symbol"] or "the result"
        unit = p["unit"] or "its unit"
        return (
            f"Formula ({p['name']}): {symbol} = {p['expression']}\n"
            f"Inputs: {self._inputs_text()}\n"
            f"Computed result: {symbol} = {_fmt_number(p['answer'])} {p['unit']}\n\n"
            f"Ask: what is the {p['name']} {symbol} in {unit}? (The "
            "inputs are stated before the question.) Then give the inputs and the final value with "
            "its unit. Reply as JSON."
        )

    def _task_factual(self) -> str:
        f = self.p["fact"]
        others = [a for a in self.p.get("answers", []) if a != f["object"]]
        also = f"\nOther correct answers: {'; '.join(others)}" if others else ""
        return (
            f"The fact: {f['subject']} {phrase(f['predicate'])} {f['object']}{also}\n\n"
            f"Ask which {_kind(f['object_type'])} {f['subject']} {phrase(f['predicate'])}. Do not "
            f"name {f['object']} in the question. Then give the answer. Reply as JSON."
        )

    def _task_definition(self) -> str:
        p = self.p
        return (
            f"{p['entity']}: {p['description']}\n\n"
            f"Ask what the {_kind(p['entity_type'])} {p['entity']} is. Reply as JSON."
        )

    def _task_document(self) -> str:
        p = self.p
        where = f"the section '{p['heading']}' of " if p.get("heading") else ""
        return (
            f"The facts above are {where}the document '{p['title']}'.\n\nWrite up to "
            f"{self.pairs} different question-answer pairs that this text answers. Each question "
            "names what it is about and is answerable from the text alone; each answer is "
            "complete, in one to three sentences, using only the text. Reply as JSON."
        )

    def subject(self) -> str:
        """The name the question must contain ("" when free)."""
        if self.type == "troubleshooting":
            return str(self.p["symptom"])
        if self.type == "multi_hop":
            return str(self.p["path"][0]["subject"])
        if self.type == "factual":
            return str(self.p["fact"]["subject"])
        if self.type == "definition":
            return str(self.p["entity"])
        return ""

    def _inputs_text(self) -> str:
        p = self.p
        units = {k: "" if u in NO_UNIT else u for k, u in p["units"].items()}
        return _join(
            [
                f"{(p['descriptions'].get(k) or k).rstrip('.')} {k} = {_fmt_number(v)} "
                f"{units.get(k, '')}".rstrip()
                for k, v in p["inputs"].items()
            ]
        )

    # --- the schema -------------------------------------------------------------------------

    def schema(self, scale: float = 1.0) -> dict[str, Any]:
        def text(low: int, high: int) -> dict[str, Any]:
            return _text(low, max(low + 8, int(high * scale)))

        high = max(40, int(QUESTION_CHARS * scale))
        question = _question(15, high, self.subject(), OPENINGS.get(self.type, _STARTS))
        if self.type == "troubleshooting":
            causes = []
            for c in self.p["causes"]:
                item: dict[str, Any] = {"cause": {"enum": [c["cause"]]}}
                for key in TROUBLE_SLOTS:
                    if c[key]:
                        item[key] = _enum_list(c[key])
                causes.append(_object(item))
            n = len(causes)
            return _object(
                {
                    "question": question,
                    "causes": {
                        "type": "array",
                        "prefixItems": causes,
                        "minItems": n,
                        "maxItems": n,
                    },
                }
            )
        if self.type == "multi_hop":
            path = self.p["path"]
            names = list(dict.fromkeys([path[0]["subject"], *(f["object"] for f in path)]))
            hops = [
                _object(
                    {
                        "from": {"enum": [f["subject"]]},
                        "relation": {"enum": [phrase(f["predicate"])]},
                        "to": {"enum": [f["object"]]},
                    }
                )
                for f in path
            ]
            n = len(path)
            return _object(
                {
                    "question": question,
                    "chain": {"type": "array", "prefixItems": hops, "minItems": n, "maxItems": n},
                    "answer": {"enum": names[1:]},
                }
            )
        if self.type == "maths":
            inputs = [
                _object({"symbol": {"enum": [k]}, "value": {"enum": [v]}})
                for k, v in self.p["inputs"].items()
            ]
            props: dict[str, Any] = {
                "question": question,
                "inputs": {
                    "type": "array",
                    "prefixItems": inputs,
                    "minItems": len(inputs),
                    "maxItems": len(inputs),
                },
                "value": {"enum": [float(_fmt_number(self.p["answer"]).replace(",", ""))]},
            }
            if self.p["unit"]:
                props["unit"] = {"enum": [self.p["unit"]]}
            return _object(props)
        if self.type == "factual":
            return _object({"question": question, "answer": {"enum": self.p["answers"]}})
        if self.type == "definition":
            return _object({"question": question})
        if self.type == DOCUMENT:
            pair = _object({"question": _question(15, high), "answer": text(10, 480)})
            return _object(
                {"pairs": {"type": "array", "items": pair, "minItems": 1, "maxItems": self.pairs}}
            )
        raise TelesynthError(f"no output schema for plan type {self.type!r}")

    def fitted_schema(self, max_tokens: int) -> dict[str, Any] | None:
        """The schema with the widest text bounds whose complete object fits `max_tokens`;
        for documents fewer pairs first. None when even the narrowest does not fit."""
        budget = max_tokens * CHARS_PER_TOKEN
        while True:
            scale = 1.0
            while scale >= 0.3:
                schema = self.schema(scale)
                if worst_chars(schema) <= budget:
                    return schema
                scale *= 0.85
            if self.type != DOCUMENT or self.pairs == 1:
                return None
            self.pairs -= 1

    # --- assembly ---------------------------------------------------------------------------

    def assemble(self, data: dict[str, Any]) -> list[Candidate | str]:
        return list(getattr(self, f"_assemble_{self.type}")(data))

    @staticmethod
    def _names(question: str, must: str, must_not: tuple[str, ...] = ()) -> str | None:
        """Why the question is off its plan: it does not name its subject, or gives an answer
        away."""
        q = question.lower()
        if must and must.lower() not in q:
            return f"generate: off plan: the question does not name {must}"
        for name in must_not:
            if name and name.lower() in q and name.lower() not in must.lower():
                return f"generate: off plan: the question gives the answer away ({name})"
        return None

    def _assemble_troubleshooting(self, data: dict[str, Any]) -> list[Candidate | str]:
        question = data["question"].strip()
        off = self._names(question, self.p["symptom"])
        if off:
            return [off]
        causes = [c["cause"] for c in data["causes"]]
        steps = [f"Possible causes of {self.p['symptom']}: {_join(causes)}."]
        for c in data["causes"]:
            cause = c["cause"]
            if c.get("checks"):
                reads = f", reading {_join(c['reads'])}" if c.get("reads") else ""
                steps.append(f"To confirm {cause}: {_join(c['checks'])}{reads}.")
            if c.get("actions"):
                params = f" (adjusting {_join(c['adjusts'])})" if c.get("adjusts") else ""
                steps.append(f"If {cause} is confirmed: {_join(c['actions'])}{params}.")
            if c.get("verify"):
                steps.append(f"Verify the fix for {cause} with {_join(c['verify'])}.")
        answer = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
        return [Candidate(question, answer, steps)]

    def _assemble_multi_hop(self, data: dict[str, Any]) -> list[Candidate | str]:
        path = self.p["path"]
        question = data["question"].strip()
        end = path[-1]["object"]
        off = self._names(question, path[0]["subject"], (end,))
        if off:
            return [off]
        steps = []
        for i, (hop, fact) in enumerate(zip(data["chain"], path, strict=True), 1):
            said = (hop["from"], hop["relation"], hop["to"])
            truth = (fact["subject"], phrase(fact["predicate"]), fact["object"])
            if said != truth:
                return [
                    f"generate: off plan: step {i} of the chain says '{' '.join(said)}', "
                    f"the graph has '{' '.join(truth)}'"
                ]
            steps.append(f"{' '.join(truth)}.")
        if data["answer"] != end:
            return [
                f"generate: off plan: the answer slot names {data['answer']}, the chain ends "
                f"at {end}"
            ]
        answer = f"{end}. " + " ".join(steps)
        return [Candidate(question, answer, steps)]

    def _assemble_maths(self, data: dict[str, Any]) -> list[Candidate | str]:
        p = self.p
        for given in data["inputs"]:
            want = float(p["inputs"][given["symbol"]])
            if not math.isclose(float(given["value"]), want, rel_tol=1e-6, abs_tol=1e-12):
                return [
                    f"generate: off plan: input {given['symbol']} = {given['value']}, the "
                    f"plan samples {_fmt_number(want)}"
                ]
        symbol = p["output_symbol"] or "result"
        unit = p["unit"]
        units = {k: "" if u in NO_UNIT else u for k, u in p["units"].items()}
        inputs = ", ".join(
            f"{k} = {_fmt_number(v)} {units.get(k, '')}".rstrip() for k, v in p["inputs"].items()
        )
        # the question states every input: the model's question, led by the inputs
        stem = data["question"].strip()
        question = f"Given {self._inputs_text()}: {stem[0].lower()}{stem[1:]}"
        result = f"{_fmt_number(float(data['value']))} {unit}".rstrip()
        # the worked solution is written by code: formula, inputs, substitution, result (the
        # 135M model's own worked steps were garbage in 6 of 7 accepted maths samples)
        substituted = substitute(p["expression"], p["inputs"])
        steps = [
            f"Formula: {symbol} = {p['expression']}.",
            f"Inputs: {inputs}.",
            f"Substituting: {symbol} = {substituted}.",
        ]
        steps.append(f"Result: {symbol} = {result}.")
        answer = f"With {symbol} = {p['expression']} and {inputs}: {symbol} = {result}."
        return [Candidate(question, answer, steps)]

    def _assemble_factual(self, data: dict[str, Any]) -> list[Candidate | str]:
        f = self.p["fact"]
        question = data["question"].strip()
        chosen = data["answer"]
        off = self._names(question, f["subject"], (chosen, *self.p.get("answers", [])))
        if off:
            return [off]
        answer = f"{f['subject']} {phrase(f['predicate'])} {chosen}."
        others = [a for a in self.p.get("answers", []) if a != chosen]
        if others:
            answer += f" Other documented answers: {_join(others[:4])}."
        return [Candidate(question, answer, [answer])]

    def _assemble_definition(self, data: dict[str, Any]) -> list[Candidate | str]:
        question = data["question"].strip()
        off = self._names(question, self.p["entity"])
        if off:
            return [off]
        answer = f"{self.p['entity']}: {self.p['description']}"
        return [Candidate(question, answer, [answer])]

    def _assemble_document(self, data: dict[str, Any]) -> list[Candidate | str]:
        return [
            Candidate(pair["question"].strip(), pair["answer"].strip(), [])
            for pair in data["pairs"]
        ]


def substitute(expression: str, inputs: dict[str, float]) -> str:
    """The expression with each input symbol replaced by its value."""
    return re.sub(
        r"\b[A-Za-z_]\w*\b",
        lambda m: _fmt_number(float(inputs[m.group()])) if m.group() in inputs else m.group(),
        expression,
    )


def plan_names(plan_type: str, payload: dict[str, Any]) -> list[str]:
    """The entity names a plan's answer is built from (what a refinement must keep)."""
    names: list[str] = []
    if plan_type == "troubleshooting":
        names.append(payload["symptom"])
        for c in payload["causes"]:
            names.append(c["cause"])
            for key in TROUBLE_SLOTS:
                names += c[key]
    elif plan_type == "multi_hop":
        names += [payload["path"][0]["subject"], *(f["object"] for f in payload["path"])]
    elif plan_type == "factual":
        names += [payload["fact"]["subject"], *payload.get("answers", [])]
    elif plan_type == "definition":
        names.append(payload["entity"])
    return list(dict.fromkeys(n for n in names if n))


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")


def dropped_facts(
    plan_type: str, payload: dict[str, Any], draft: Candidate, refined: Candidate
) -> list[str]:
    """Plan entities and numbers the draft states that the refinement no longer does."""
    before = " ".join([draft.answer, *draft.steps]).lower()
    after = " ".join([refined.answer, *refined.steps]).lower()
    lost = [
        n for n in plan_names(plan_type, payload) if n.lower() in before and n.lower() not in after
    ]
    numbers = {float(x) for x in _NUMBER.findall(after)}
    lost += [x for x in dict.fromkeys(_NUMBER.findall(before)) if float(x) not in numbers]
    return lost


class LlmQA(QASource):
    """One text model used to write or refine the QA of plans (the LLM writer)."""

    def __init__(self, generator: TextModel, max_tokens: int = 512, seed: int = 0) -> None:
        self.generator = generator
        self.name = generator.name
        n_ctx = generator.n_ctx
        self.max_tokens = min(max_tokens, n_ctx // 2)
        # context budget in our token estimate, with room for instructions and a safety margin
        self.context_budget = max(64, int((n_ctx - self.max_tokens - 300) * 0.7))
        self.seed = seed
        self.repeat_penalty = REPEAT_PENALTY

    def call_json(
        self, messages: list[Message], schema: dict[str, Any], ctx: CallContext | None = None
    ) -> Completion:
        params = SamplingParams(
            max_tokens=self.max_tokens,
            temperature=0.0,
            json_schema=schema,
            repeat_penalty=self.repeat_penalty,
        )
        return self.generator.complete(messages, params, ctx)

    def fit(
        self, build: Callable[[list[dict[str, Any]]], list[Message]], context: list[dict[str, Any]]
    ) -> list[Message]:
        """Messages whose prompt leaves room for the answer: drop trailing context items."""
        items = list(context)
        messages = build(items)
        while len(items) > 1 and not self.generator.fits(messages, self.max_tokens):
            items.pop()
            messages = build(items)
        return messages

    @staticmethod
    def messages(context: list[dict[str, Any]], task: str) -> list[Message]:
        """System text, then the plan's context, then the task: one shared prefix per plan."""
        return [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{facts_block(context)}\n\n{task}"},
        ]

    def _not_run(self, reason: str, ctx: CallContext | None) -> str:
        """The rejection of a call the model could not make; the call is still recorded (no
        figures, the reason in `extra`), so every plan's writing shows in the run's calls."""
        if ctx is not None:
            ctx.metrics.append(CallMetrics(self.name, "generate", extra={"not_run": reason}))
        return f"{reason}\n"

    def _parse(self, stage: str, done: Completion) -> dict[str, Any] | str:
        text = done.text
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if done.stop_reason == "length":
                return f"cut: the output stopped at the {self.max_tokens}-token limit\n{text}"
            # valid so far, it just stops (an unterminated string runs to the end)
            if exc.pos >= len(text.rstrip()) - 1 or exc.msg.startswith("Unterminated string"):
                return f"cut: the output ends before its JSON object is complete\n{text}"
            return f"{stage}: invalid JSON: {exc.msg} at {exc.pos}\n{text}"
        if not isinstance(data, dict):
            return f"{stage}: the output is not a JSON object\n{text}"
        return data

    def write(self, request: QARequest, ctx: CallContext) -> list[Candidate | str]:
        """The plan's QA written by the model (candidates), or recorded rejections."""
        plan_type = request.plan_type
        writer = Writer(plan_type, request.payload, request.pairs)
        schema = writer.fitted_schema(self.max_tokens)
        if schema is None:
            reason = (
                f"generate: the {self.max_tokens}-token output budget cannot hold a "
                f"complete answer to this {plan_type} plan"
            )
            return [self._not_run(reason, ctx)]
        task = writer.task()
        messages = self.fit(lambda items: self.messages(items, task), request.context)
        try:
            done = self.call_json(messages, schema, ctx)
        except TelesynthError as exc:
            return [self._not_run(f"generate: {exc}", ctx)]
        text = done.text
        data = self._parse("generate", done)
        if isinstance(data, str):
            return [data]
        cut = cut_slot(schema, data)
        if cut:
            return [f"cut: {cut}\n{text}"]
        try:
            found = writer.assemble(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return [f"generate: output does not match the schema ({exc!r})\n{text}"]
        for i, item in enumerate(found):
            if isinstance(item, Candidate):
                item.raw_text = text
            else:
                found[i] = f"{item}\n{text}"
        if not found:
            found.append(f"generate: no QA pairs in the output\n{text}")
        return found

    def refine(
        self,
        candidate: Candidate,
        context: list[dict[str, Any]],
        plan_type: str = "",
        payload: dict[str, Any] | None = None,
        ctx: CallContext | None = None,
    ) -> Candidate | str:
        """The answer rewritten as clearer steps, keeping every fact of the draft; a rewrite that
        drops one is rejected (the caller keeps the draft). The call's metrics go to `ctx`."""
        payload = payload or {}
        draft = "\n".join([candidate.answer, *(f"- {s}" for s in candidate.steps)])
        task = (
            f"Task: rewrite this answer as clear, complete steps in plain sentences. Keep every "
            f"name, number and unit it states and add nothing that is not in the facts.\n"
            f"Question: {candidate.question}\nAnswer:\n{draft}\nReply as JSON."
        )
        n_steps = max(2, min(10, len(candidate.steps) + 1))
        budget = int(self.max_tokens * CHARS_PER_TOKEN)
        step_len = max(60, min(300, (budget // 2 - 60) // n_steps))
        schema = _object(
            {
                "answer": _text(10, max(80, min(1200, budget // 2 - 40))),
                "steps": {
                    "type": "array",
                    "items": _text(5, step_len),
                    "minItems": 1,
                    "maxItems": n_steps,
                },
            }
        )
        messages = self.fit(lambda items: self.messages(items, task), context)
        try:
            done = self.call_json(messages, schema, ctx)
        except TelesynthError as exc:
            return self._not_run(f"refine: {exc}", ctx)
        text = done.text
        data = self._parse("refine", done)
        if isinstance(data, str):
            return data
        cut = cut_slot(schema, data)
        if cut:
            return f"cut: refinement {cut}\n{text}"
        try:
            answer = str(data["answer"]).strip()
            steps = [str(s).strip() for s in data["steps"] if str(s).strip()]
        except (KeyError, TypeError) as exc:
            return f"refine: unusable output ({type(exc).__name__})\n{text}"
        if not answer:
            return f"refine: empty answer\n{text}"
        refined = Candidate(
            candidate.question, answer, steps or candidate.steps, candidate.cited, raw_text=text
        )
        lost = dropped_facts(plan_type, payload, candidate, refined)
        if lost:
            return f"refine: dropped facts of the draft: {_join(lost[:6])}\n{text}"
        return refined
