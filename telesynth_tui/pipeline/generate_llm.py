"""Stage 3b and 4: QA pairs written by a registered GGUF model from the retrieved context, and
the optional refinement of answers into step-by-step plans or worked solutions.

Output is constrained to a JSON schema; anything the model writes that still cannot be used
becomes a recorded rejection carrying the raw text ("reason\\nraw text")."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.generator import Generator, SamplingParams
from telesynth_tui.pipeline.realize import Candidate

SYSTEM = (
    "You write training data for RAN engineers. Use only the numbered context. Every answer must "
    "be correct, complete and grounded; cite the context items you used by their numbers."
)
STYLE = {
    "troubleshooting": "Questions describe a symptom; answers are troubleshooting plans: likely "
    "causes, checks with the KPIs and counters to read, actions with parameter changes, "
    "verification.",
    "maths": "Questions ask for a computed value; answers show the formula, the inputs and the "
    "result with its unit.",
    "multi_hop": "Questions need two or three facts of the context combined.",
    "factual": "Questions ask for one fact of the context.",
    "definition": "Questions ask what a term means.",
}


def pairs_schema(max_pairs: int, max_tokens: int) -> dict[str, Any]:
    """Bounded so that a complete JSON object fits in `max_tokens` (about 2.5 characters a
    token for small vocabularies): fewer pairs and shorter fields for short outputs."""
    pairs = max(1, min(max_pairs, max_tokens // 128))
    chars = int(max_tokens * 2.5 / pairs) - 40
    step = max(20, chars // 8)
    return {
        "type": "object",
        "properties": {
            "pairs": {
                "type": "array",
                "minItems": 1,
                "maxItems": pairs,
                "items": {
                    "type": "object",
                    "properties": {
                        "question": {"type": "string", "minLength": 8, "maxLength": chars // 4},
                        "answer": {"type": "string", "minLength": 2, "maxLength": chars // 2},
                        "steps": {
                            "type": "array",
                            "maxItems": 2,
                            "items": {"type": "string", "maxLength": step},
                        },
                        "cited": {"type": "array", "maxItems": 4, "items": {"type": "integer"}},
                    },
                    "required": ["question", "answer", "steps", "cited"],
                },
            }
        },
        "required": ["pairs"],
    }


REFINE_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 1200},
        "steps": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 240}},
        "cited": {"type": "array", "maxItems": 8, "items": {"type": "integer"}},
    },
    "required": ["answer", "steps", "cited"],
}


def numbered(context: list[dict[str, Any]]) -> str:
    return "\n".join(f"[{i}] {item['text']}" for i, item in enumerate(context, 1))


def _keys(numbers: Any, context: list[dict[str, Any]]) -> list[str]:
    keys = []
    for n in numbers if isinstance(numbers, list) else []:
        if isinstance(n, int) and 1 <= n <= len(context):
            keys.append(context[n - 1]["key"])
    return keys


class LlmQA:
    """One generator model used to write or refine QA pairs."""

    def __init__(self, generator: Generator, max_tokens: int = 512, seed: int = 0) -> None:
        self.generator = generator
        self.name = generator.name
        n_ctx = int(getattr(generator, "n_ctx", 4096))
        self.max_tokens = min(max_tokens, n_ctx // 2)
        # context budget in our token estimate, with room for instructions and a safety margin
        self.context_budget = max(64, int((n_ctx - self.max_tokens - 200) * 0.7))
        self.seed = seed
        self.on_token: Callable[[str], None] | None = None  # sees each piece as it is decoded
        self.cancel: Callable[[], bool] | None = None  # checked between tokens

    def call_json(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> tuple[str, dict]:
        params = SamplingParams(max_tokens=self.max_tokens, temperature=0.0, json_schema=schema)
        pieces = []
        for piece in self.generator.stream(messages, params, self.cancel):
            pieces.append(piece)
            if self.on_token is not None:
                self.on_token(piece)
        text = "".join(pieces)
        metrics = self.generator.last_metrics
        return text, metrics.to_dict() if metrics else {}

    def fit(self, build: Any, context: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Messages whose prompt leaves room for the answer: drop trailing context items."""
        items = list(context)
        messages = build(items)
        tokenize = getattr(self.generator, "tokenize", None)
        render = getattr(self.generator, "render", None)
        n_ctx = int(getattr(self.generator, "n_ctx", 0))
        if tokenize is None or render is None or not n_ctx:
            return messages
        while len(items) > 1 and len(tokenize(render(messages))) + self.max_tokens > n_ctx:
            items.pop()
            messages = build(items)
        return messages

    def generate_pairs(
        self, context: list[dict[str, Any]], max_pairs: int, plan_type: str
    ) -> tuple[list[Candidate | str], dict[str, Any]]:
        def build(items: list[dict[str, Any]]) -> list[dict[str, str]]:
            request = (
                f"Context:\n{numbered(items)}\n\nWrite up to {max_pairs} question-answer pairs "
                f"as JSON. {STYLE.get(plan_type, '')}"
            )
            return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": request}]

        messages = self.fit(build, context)
        try:
            text, metrics = self.call_json(messages, pairs_schema(max_pairs, self.max_tokens))
        except TelesynthError as exc:
            return [f"generate: {exc}\n"], {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            limit = metrics.get("stop_reason") == "length"
            cut = " (output cut at the token limit)" if limit else ""
            return [f"generate: invalid JSON{cut}: {exc.msg} at {exc.pos}\n{text}"], metrics
        found: list[Candidate | str] = []
        for pair in data.get("pairs", []) if isinstance(data, dict) else []:
            question = str(pair.get("question", "")).strip()
            answer = str(pair.get("answer", "")).strip()
            if not question or not answer:
                found.append(f"generate: empty question or answer\n{json.dumps(pair)}")
                continue
            steps = [str(s) for s in pair.get("steps", []) if str(s).strip()]
            found.append(
                Candidate(question, answer, steps, _keys(pair.get("cited"), context), raw_text=text)
            )
        if not found:
            found.append(f"generate: no QA pairs in the output\n{text}")
        return found, metrics

    def refine(
        self, candidate: Candidate, context: list[dict[str, Any]]
    ) -> tuple[Candidate | str, dict[str, Any]]:
        def build(items: list[dict[str, Any]]) -> list[dict[str, str]]:
            request = (
                f"Context:\n{numbered(items)}\n\nQuestion: {candidate.question}\n"
                f"Draft answer: {candidate.answer}\n\nRewrite the answer as a step-by-step "
                "troubleshooting plan or worked solution grounded in the context, keeping the "
                "citations. Reply as JSON."
            )
            return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": request}]

        messages = self.fit(build, context)
        try:
            text, metrics = self.call_json(messages, REFINE_SCHEMA)
        except TelesynthError as exc:
            return f"refine: {exc}\n", {}
        try:
            data = json.loads(text)
            answer = str(data["answer"]).strip()
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            return f"refine: unusable output ({type(exc).__name__})\n{text}", metrics
        if not answer:
            return f"refine: empty answer\n{text}", metrics
        cited = _keys(data.get("cited"), context) or candidate.cited
        steps = [str(s) for s in data.get("steps", []) if str(s).strip()] or candidate.steps
        return Candidate(candidate.question, answer, steps, cited, raw_text=text), metrics
