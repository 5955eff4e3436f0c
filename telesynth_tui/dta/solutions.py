"""DTA Phase I: problems from the planner and the teachers that solve them.

A problem is a maths or troubleshooting plan phrased as a question, with its truth: the exact
value computed by our formula code, or the troubleshooting plan the knowledge graph documents.
Teachers are registered GGUF models and the deterministic solver, which writes the worked steps
of the formula (or the documented plan) and is always right by construction.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import CallContext, TextModel
from telesynth_tui.pipeline.generate_llm import LlmQA, numbered
from telesynth_tui.pipeline.realize import NO_UNIT, TemplateRealizer, _fmt_number, fmt_input

DTA_TYPES = ("maths", "troubleshooting")
SOLVER = "solver"


@dataclass
class Problem:
    plan_id: int
    type: str  # maths | troubleshooting
    question: str
    payload: dict[str, Any]
    context: list[dict[str, Any]]  # the plan's formula or facts, as in the pipeline
    reference: str  # the documented answer (solver's text)

    @property
    def truth(self) -> float | None:
        return float(self.payload["answer"]) if self.type == "maths" else None

    @property
    def unit(self) -> str:
        return str(self.payload.get("unit", "")) if self.type == "maths" else ""


@dataclass
class Solution:
    teacher: str
    steps: list[str]
    final: str  # the sentence that states the final answer
    raw_text: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # why there is no usable solution

    @property
    def text(self) -> str:
        body = "\n".join(f"{i}. {s}" for i, s in enumerate(self.steps, 1))
        return f"{body}\nFinal answer: {self.final}".strip()


class Teacher(ABC):
    """Solves a problem (its question is already posed, unlike a QA source's plan): the worked
    steps and the final answer, with the metrics of its model call in `Solution.metrics`."""

    name: str

    @abstractmethod
    def solve(self, problem: Problem, cancel: Callable[[], bool] | None = None) -> Solution:
        """The solution; a model call polls `cancel` between tokens."""


def make_problem(
    plan_id: int, plan_type: str, payload: dict[str, Any], seed: int, context: list[dict[str, Any]]
) -> Problem:
    candidate = TemplateRealizer(seed).realize(plan_type, payload)
    return Problem(plan_id, plan_type, candidate.question, payload, context, candidate.answer)


def _substitute(expression: str, inputs: dict[str, float]) -> str:
    """The expression with each input symbol replaced by its value (longest symbols first)."""
    symbols = sorted(inputs, key=len, reverse=True)
    if not symbols:
        return expression
    pattern = re.compile(r"\b(" + "|".join(re.escape(s) for s in symbols) + r")\b")
    return pattern.sub(lambda m: fmt_input(inputs[m.group(1)]), expression)


class SolverTeacher(Teacher):
    """The deterministic teacher: formula, substitution and result for maths; the documented
    causes, checks, actions and verification for troubleshooting."""

    name = SOLVER

    def solve(self, problem: Problem, cancel: Callable[[], bool] | None = None) -> Solution:
        p = problem.payload
        if problem.type == "maths":
            units = {k: ("" if u in NO_UNIT else u) for k, u in p["units"].items()}
            symbol = p["output_symbol"] or "result"
            given = ", ".join(
                f"{k} = {fmt_input(v)} {units[k]}".strip() for k, v in p["inputs"].items()
            )
            result = f"{_fmt_number(p['answer'])} {p['unit']}".strip()
            steps = [
                f"Use {p['name']}: {symbol} = {p['expression']}.",
                f"Given {given}.",
                f"Substitute: {symbol} = {_substitute(p['expression'], p['inputs'])}.",
            ]
            return Solution(self.name, steps, f"{symbol} = {result}")
        steps = TemplateRealizer(0).realize(problem.type, p).steps
        return Solution(self.name, steps[1:] or steps, steps[0].rstrip("."))


FINAL_MAX_CHARS = 100  # the schema's bounds: a final answer or step this long was cut by it
STEP_MAX_CHARS = 160
SOLUTION_SCHEMA = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": 6,
            "items": {"type": "string", "minLength": 2, "maxLength": STEP_MAX_CHARS},
        },
        "final_answer": {"type": "string", "minLength": 1, "maxLength": FINAL_MAX_CHARS},
    },
    "required": ["steps", "final_answer"],
}
TEACHER_SYSTEM = (
    "You are a senior RAN engineer. Solve the problem step by step using the reference, then "
    "state the final answer (for calculations: the value with its unit)."
)


class ModelTeacher(Teacher):
    """A registered GGUF model writing a JSON solution (steps + final answer)."""

    def __init__(self, generator: TextModel, max_tokens: int = 512) -> None:
        self.llm = LlmQA(generator, max_tokens)
        self.name = generator.name

    def solve(self, problem: Problem, cancel: Callable[[], bool] | None = None) -> Solution:
        def build(items: list[dict[str, Any]]) -> list[dict[str, str]]:
            request = (
                f"Reference:\n{numbered(items)}\n\nProblem: {problem.question}\nReply as JSON."
            )
            return [
                {"role": "system", "content": TEACHER_SYSTEM},
                {"role": "user", "content": request},
            ]

        try:
            messages = self.llm.fit(build, problem.context)
            done = self.llm.call_json(messages, SOLUTION_SCHEMA, CallContext(cancel=cancel))
        except TelesynthError as exc:
            return Solution(self.name, [], "", error=f"teacher failed: {exc}")
        text, metrics = done.text, done.metrics.to_dict()
        try:
            data = json.loads(text)
            steps = [str(s).strip() for s in data["steps"] if str(s).strip()]
            final = str(data["final_answer"]).strip()
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            cut = " (cut at the token limit)" if done.stop_reason == "length" else ""
            return Solution(
                self.name, [], "", text, metrics, f"unusable output{cut}: {type(exc).__name__}"
            )
        if not steps or not final:
            return Solution(self.name, [], "", text, metrics, "empty steps or final answer")
        return Solution(self.name, steps, final, text, metrics)
