"""DTA Phase II, selection: agreement checks, the reflection judge, and one exemplar per problem.

Agreement: a maths answer must state the computed truth within the plan's tolerance (unit-aware)
and is credited for every other teacher whose answer it agrees with; a troubleshooting answer is
compared by embedding with the documented plan and with the other teachers' answers. The
reflection judge checks each step: the step checker verifies every value a step states for an
input or for the result (maths) or that the step is grounded in the plan's facts
(troubleshooting); a judge model, when given, marks each step correct or not. Every candidate ends
selected or rejected with its reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from telesynth_tui.dta.solutions import (
    FINAL_MAX_CHARS,
    SOLVER,
    STEP_MAX_CHARS,
    Problem,
    Solution,
)
from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import CallContext, Encoder, SamplingParams, TextModel
from telesynth_tui.units import (
    _NUMBER,
    _UNIT,
    check_numeric,
    convert,
    normalize_unit,
    quantities,
    stated_values,
)


@dataclass
class Thresholds:
    text_agreement: float = 0.75  # cosine with the documented plan (troubleshooting)
    step_grounding: float = 0.5  # cosine of a troubleshooting step with the plan's facts
    min_judge: float = 0.6  # share of steps the judge accepts
    rewrite_keeps: float = 0.85  # cosine of a text rewrite with its original


@dataclass
class Exemplar:
    """One teacher's solution on its way to selection."""

    solution: Solution
    text: str = ""  # the exemplar in the student's style
    rewrite: dict[str, Any] = field(default_factory=dict)
    value: float | None = None  # maths: the stated result in the problem's unit
    agreement: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)
    style: float = 0.0
    status: str = "rejected"
    reason: str = ""

    @property
    def score(self) -> float:
        """Ranking score: judge, agreement with the other teachers, then style."""
        share = self.agreement.get("agree_share", 0.0)
        return round(0.5 * self.judge.get("score", 0.0) + 0.3 * share + 0.2 * self.style, 4)


# --- agreement ---------------------------------------------------------------------------------


_FINAL_MARKER = re.compile(
    r"\b(?:final\s+answer|answer|result|therefore|thus|hence)\b\s*(?:is|:|=|≈)?", re.IGNORECASE
)
_UNFINISHED_END = re.compile(r"(?:[-+*/^=(,×·]|\b[A-Za-z]\w*_\w*\.?|\b(?:of|and|the|is|=))\s*$")


def stated_result(text: str, problem: Problem) -> tuple[str, str] | None:
    """The part of an answer that gives the asked quantity: the last statement of the output
    symbol ("P_PUSCH = 21.3 dBm"), otherwise what follows the last final-answer marker (or the
    whole text) with every restated input ("nf1_db = 5.08 dB") removed. None when the answer
    states no value for the asked quantity."""
    p = problem.payload
    symbol = str(p.get("output_symbol") or "")
    if symbol:
        # "SYMBOL = number [unit]", the number not a term of an expression; any unit may follow
        found = list(
            re.finditer(
                rf"(?<![\w.]){re.escape(symbol)}\s*(?:=|≈|is)\s*({_NUMBER})(?!\d|[.,]\d)"
                rf"(\s*[^\s\d.,;:()=][^\s,;:()=]*)?(?!\s*[-+*^(×·])",
                text,
            )
        )
        found = [m for m in found if not (m.group(2) or "").strip().startswith(("/", "*", "+"))]
        if found:
            value, unit = found[-1].group(1), (found[-1].group(2) or "").strip().rstrip(".")
            return f"{value} {unit}".strip(), f"{symbol} = {value} {unit}".strip()
    markers = list(_FINAL_MARKER.finditer(text))
    tail = text[markers[-1].end() :] if markers else text
    inputs = sorted(p.get("inputs", {}), key=len, reverse=True)
    if inputs:
        names = "|".join(re.escape(s) for s in inputs)
        tail = re.sub(
            rf"(?<![\w.])(?:{names})\s*=\s*{_NUMBER}(?:\s*[^\s\d.,;=][^\s,;=]*)?", " ", tail
        )
    tail = _strip_expressions(tail)
    if not quantities(tail):
        return None
    return tail, "stated after the final-answer marker" if markers else "the last number"


def _strip_expressions(text: str) -> str:
    """The text without function-call arguments ("db_to_linear(5.08)", to the end when the call
    is never closed) and without numbers that are terms of an expression ("5.08 + ...")."""
    out: list[str] = []
    depth = 0
    for i, ch in enumerate(text):
        if depth:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            continue
        if ch == "(" and i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
            depth = 1
            while out and (out[-1].isalnum() or out[-1] == "_"):
                out.pop()
            continue
        out.append(ch)
    return re.sub(rf"{_NUMBER}(?:\s*(?:{_UNIT})?\s*[-+*^×·]|\s*/)", " ", "".join(out))


def unfinished(solution: Solution) -> str | None:
    """Why a solution is cut off or unfinished (never an exemplar), or None."""
    if solution.metrics.get("stop_reason") == "length":
        return "cut at the token limit"
    final = solution.final.strip()
    if not final:
        return "no final answer"
    if solution.teacher != SOLVER and len(final) >= FINAL_MAX_CHARS:
        return f"final answer cut at the schema's {FINAL_MAX_CHARS}-character bound"
    if solution.teacher != SOLVER and any(len(s) >= STEP_MAX_CHARS for s in solution.steps):
        return f"a step cut at the schema's {STEP_MAX_CHARS}-character bound"
    for text in [*solution.steps, final]:
        if text.count("(") > text.count(")"):
            return f"unbalanced parenthesis in {_tail(text)!r}"
    if _UNFINISHED_END.search(final):
        return f"final answer ends mid-expression: {_tail(final)!r}"
    return None


def _tail(text: str) -> str:
    return text if len(text) <= 40 else "..." + text[-37:]


def numeric_value(text: str, problem: Problem) -> tuple[float | None, str]:
    """The value an answer gives for the asked quantity, in the problem's unit, checked against
    the truth; an input the answer restates is never taken for its result."""
    assert problem.truth is not None
    found = stated_result(text, problem)
    if found is None:
        return None, "no value stated for the asked quantity"
    check = check_numeric(
        found[0],
        problem.truth,
        problem.unit,
        rel_tol=0.0,
        abs_tol=float(problem.payload["tolerance"]),
    )
    return check.value, check.detail


def agree_numeric(problem: Problem, candidates: list[Exemplar]) -> None:
    tolerance = float(problem.payload["tolerance"])
    for c in candidates:
        c.value, c.agreement["detail"] = numeric_value(c.solution.final, problem)
    for c in candidates:
        others = [o for o in candidates if o is not c and o.value is not None]
        agree = [
            o.solution.teacher
            for o in others
            if c.value is not None and o.value is not None and abs(o.value - c.value) <= tolerance
        ]
        c.agreement.update(
            {
                "truth": c.value is not None
                and abs(c.value - float(problem.truth or 0)) <= tolerance,
                "value": c.value,
                "agree_with": agree,
                "agree_share": len(agree) / len(others) if others else 1.0,
            }
        )


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def agree_text(
    problem: Problem, candidates: list[Exemplar], encoder: Encoder, thresholds: Thresholds
) -> None:
    texts = [problem.reference] + [c.solution.text for c in candidates]
    vectors = np.asarray(encoder.embed(texts))
    reference, own = vectors[0], vectors[1:]
    for i, c in enumerate(candidates):
        to_reference = _cos(own[i], reference)
        others = [j for j in range(len(candidates)) if j != i]
        agree = [
            candidates[j].solution.teacher
            for j in others
            if _cos(own[i], own[j]) >= thresholds.text_agreement
        ]
        c.agreement.update(
            {
                "truth": to_reference >= thresholds.text_agreement,
                "cosine_to_reference": round(to_reference, 4),
                "agree_with": agree,
                "agree_share": len(agree) / len(others) if others else 1.0,
                "detail": f"cosine {to_reference:.2f} with the documented plan",
            }
        )


# --- reflection judge --------------------------------------------------------------------------


def check_steps(
    problem: Problem, steps: list[str], final: str, encoder: Encoder, thresholds: Thresholds
) -> dict[str, Any]:
    """The step checker: a verdict per step (and the final answer), score = share correct."""
    verdicts: list[dict[str, Any]] = []
    if problem.type == "maths":
        p = problem.payload
        truth_symbol = p.get("output_symbol") or ""
        units = {**p["units"], truth_symbol: p["unit"]}
        expected = {**p["inputs"], truth_symbol: float(p["answer"])}
        tolerance = {k: max(abs(v) * 0.01, 1e-6) for k, v in p["inputs"].items()}
        tolerance[truth_symbol] = float(p["tolerance"])
        for step in [*steps, final]:
            wrong = []
            for symbol, q in stated_values(step, set(expected) - {""}):
                value = q.value
                if q.unit and normalize_unit(q.unit) != normalize_unit(units.get(symbol, "")):
                    value = convert(q.value, q.unit, units.get(symbol, "")) or value
                if abs(value - expected[symbol]) > tolerance[symbol]:
                    wrong.append(f"{symbol} = {q.value:g} {q.unit}".strip())
            verdicts.append(
                {"ok": not wrong, "note": "wrong: " + ", ".join(wrong) if wrong else ""}
            )
        final_value, detail = numeric_value(final, problem)
        verdicts[-1] = {
            "ok": verdicts[-1]["ok"]
            and final_value is not None
            and abs(final_value - float(p["answer"])) <= float(p["tolerance"]),
            "note": detail,
        }
    else:
        facts = [c["text"] for c in problem.context] + [problem.reference]
        vectors = np.asarray(encoder.embed([*steps, *facts]))
        for i in range(len(steps)):
            best = max(_cos(vectors[i], v) for v in vectors[len(steps) :])
            ok = best >= thresholds.step_grounding
            verdicts.append({"ok": ok, "note": "" if ok else f"not grounded (cosine {best:.2f})"})
    score = sum(v["ok"] for v in verdicts) / len(verdicts) if verdicts else 0.0
    return {"by": "step-check", "score": round(score, 4), "steps": verdicts}


STEP_CHECK_SYSTEM = (
    "You check worked solutions step by step. Be strict: a step with an error is wrong."
)


def step_marks_schema(n_steps: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "minItems": n_steps,
                "maxItems": n_steps,
                "items": {"type": "boolean"},
            },
            "comment": {"type": "string", "maxLength": 120},
        },
        "required": ["steps", "comment"],
    }


class ModelStepChecker:
    """The reflection judge's model: a registered GGUF that marks each step of a solution
    correct or wrong (`check_steps` is the rule-based step checker beside it)."""

    def __init__(self, generator: TextModel, max_tokens: int = 160) -> None:
        self.generator = generator
        self.name = generator.name
        self.max_tokens = max_tokens

    def check(
        self, problem: Problem, steps: list[str], final: str, ctx: CallContext | None = None
    ) -> dict[str, Any]:
        """A verdict per step, score = share marked correct (or an error); the model call's
        metrics go to `ctx`."""
        items = [*steps, f"Final answer: {final}"]
        verified = (
            f"\nThe verified result is {problem.truth:g} {problem.unit}.".rstrip()
            if problem.truth is not None
            else f"\nThe documented plan: {problem.reference}"
        )
        request = (
            f"Problem: {problem.question}{verified}\n\nSteps:\n"
            + "\n".join(f"{i}. {s}" for i, s in enumerate(items, 1))
            + "\n\nFor each step, is it correct? Reply as JSON."
        )
        messages = [
            {"role": "system", "content": STEP_CHECK_SYSTEM},
            {"role": "user", "content": request},
        ]
        params = SamplingParams(
            max_tokens=self.max_tokens, json_schema=step_marks_schema(len(items))
        )
        try:
            text = self.generator.complete(messages, params, ctx).text
        except TelesynthError as exc:
            return {"by": self.name, "error": str(exc)}
        try:
            data = json.loads(text)
            marks = [bool(x) for x in data["steps"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            return {"by": self.name, "error": f"unusable output: {type(exc).__name__}", "raw": text}
        if len(marks) != len(items):
            return {
                "by": self.name,
                "error": f"{len(marks)} verdicts for {len(items)} steps",
                "raw": text,
            }
        verdicts = [{"ok": m, "note": ""} for m in marks]
        verdicts[-1]["note"] = str(data.get("comment", ""))
        return {"by": self.name, "score": round(sum(marks) / len(marks), 4), "steps": verdicts}


# --- selection -----------------------------------------------------------------------------------


def select(candidates: list[Exemplar], thresholds: Thresholds) -> Exemplar | None:
    """Gate by agreement and judge, then keep the best; every candidate gets its reason."""
    survivors = []
    for c in candidates:
        if c.solution.error:
            c.reason = f"teacher: {c.solution.error}"
        elif (cut := unfinished(c.solution)) is not None:
            c.reason = f"cut: {cut}"
        elif not c.agreement.get("truth"):
            c.reason = f"agreement: {c.agreement.get('detail', 'disagrees with the truth')}"
        elif c.judge.get("score", 0.0) < thresholds.min_judge:
            bad = [
                f"step {i}: {v['note'] or 'wrong'}"
                for i, v in enumerate(c.judge.get("steps", []), 1)
                if not v["ok"]
            ]
            c.reason = (
                f"judge ({c.judge.get('by')}): {c.judge.get('score', 0.0):.2f} below "
                f"{thresholds.min_judge:.2f}; " + "; ".join(bad[:3])
            )
        else:
            survivors.append(c)
    if not survivors:
        return None
    # ties go to the verified solver, then to the first listed teacher
    best = max(survivors, key=lambda c: (c.score, c.solution.teacher == SOLVER))
    best.status, best.reason = "accepted", ""
    for c in survivors:
        if c is not best:
            c.reason = (
                f"not selected: {best.solution.teacher}'s exemplar scored higher "
                f"({best.score:.2f} vs {c.score:.2f})"
            )
    return best
