"""Fakes of the model interfaces for unit tests of the core. Each subclasses the real interface
(`TextModel`, `Encoder`, `Scorer`, `QASource`), so a fake that drifts from it fails to
instantiate or to type-check, and the code under test drives it through the same calls
(`complete()`, `stream()`, `embed()` with a `CallContext`) as a real back end."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np

from telesynth_tui.inference.base import (
    CallContext,
    Encoder,
    Message,
    SamplingParams,
    TextModel,
)
from telesynth_tui.inference.metrics import CallMetrics
from telesynth_tui.pipeline.realize import Candidate
from telesynth_tui.pipeline.scoring import Scorer
from telesynth_tui.pipeline.sources import QARequest, QASource

Reply = Callable[[Sequence[Message], SamplingParams], str]
Figures = Callable[[str, int], dict[str, Any]]


def default_figures(text: str, pieces: int) -> dict[str, Any]:
    return {"prompt_tokens": 100, "output_tokens": len(text) // 3}


class FakeModel(TextModel):
    """A text model whose answer is scripted: `reply(messages, params)`, or a fixed text. The
    answer streams in pieces of `piece_chars` characters (whole when 0), `delay` seconds apart,
    and stops before the next piece once the call is cancelled. Each call's metrics are
    `figures(text, pieces streamed)` with `stop` as the stop reason. A token is a word."""

    def __init__(
        self,
        reply: Reply | str,
        name: str = "fake",
        *,
        n_ctx: int = 4096,
        stop: str = "eos",
        piece_chars: int = 0,
        delay: float = 0.0,
        figures: Figures = default_figures,
    ) -> None:
        self.reply = reply
        self.name = name
        self._n_ctx = n_ctx
        self.stop = stop
        self.piece_chars = piece_chars
        self.delay = delay
        self.figures = figures
        self.calls: list[tuple[list[Message], SamplingParams]] = []
        self.produced = 0  # pieces streamed by the latest call so far
        self.closed = False

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    @property
    def n_vocab(self) -> int:
        return 32_000

    def tokenize(self, text: str) -> list[int]:
        return [len(word) for word in text.split()]

    def render(self, messages: Sequence[Message]) -> str:
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"

    @property
    def schemas(self) -> list[dict[str, Any] | None]:
        """The JSON schema of every call, in order."""
        return [params.json_schema for _, params in self.calls]

    def execute(
        self, messages: Sequence[Message], params: SamplingParams, ctx: CallContext
    ) -> Generator[str, None, CallMetrics]:
        self.calls.append((list(messages), params))
        text = self.reply(messages, params) if callable(self.reply) else self.reply
        size = self.piece_chars or max(1, len(text))
        stop = self.stop
        self.produced = 0
        for start in range(0, len(text), size):
            if ctx.cancelled():
                stop = "cancelled"
                break
            if self.delay:
                time.sleep(self.delay)
            self.produced += 1
            yield text[start : start + size]
        return CallMetrics(
            self.name, "generate", stop_reason=stop, **self.figures(text, self.produced)
        )

    def close(self) -> None:
        self.closed = True


def by_role(replies: dict[str, Any], roles: list[str] | None = None) -> Reply:
    """A reply chosen by the first key found in the system prompt: a text, or a function of the
    last message. Each role answered is appended to `roles`."""

    def reply(messages: Sequence[Message], params: SamplingParams) -> str:
        role = next(k for k in replies if k in messages[0]["content"])
        if roles is not None:
            roles.append(role)
        answer = replies[role]
        return str(answer(messages[-1]["content"]) if callable(answer) else answer)

    return reply


class RoleModel(FakeModel):
    """A fake GGUF answering by role, recognised from the system prompt (`by_role`); `roles`
    lists the roles it answered, in order."""

    def __init__(self, name: str, replies: dict[str, Any]) -> None:
        self.roles: list[str] = []
        super().__init__(by_role(replies, self.roles), name, stop="", figures=self._figures)

    @staticmethod
    def _figures(text: str, pieces: int) -> dict[str, Any]:
        return {
            "prompt_tokens": 10,
            "output_tokens": len(text.split()),
            "wall_s": 0.01,
            "energy_j": 0.1,
            "energy_source": "estimate",
        }


class HashEncoder(Encoder):
    """A deterministic bag-of-words encoder (64 hashed word counts, L2-normalised): enough to
    test the dense path end to end. `features` is the sentence vector, or with `ends_cleanly`
    one column: 1.0 when the text ends with . ? or ! (for `EndsCleanlyHead`). It reports no
    call metrics (a fake costs nothing), so a run with it records only its text models' calls;
    `calls` counts the embedding calls."""

    def __init__(self, model_id: str = "fake-hash-64", ends_cleanly: bool = False) -> None:
        self.model_id = model_id
        self.ends_cleanly = ends_cleanly
        self.calls = 0

    def embed(self, texts: Sequence[str], ctx: CallContext | None = None) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out

    def features(self, texts: Sequence[str], ctx: CallContext | None = None) -> np.ndarray:
        if not self.ends_cleanly:
            return self.embed(texts, ctx)
        return np.array([[1.0 if t.rstrip().endswith((".", "?", "!")) else 0.0] for t in texts])


def filter_encoder() -> HashEncoder:
    """The encoder the filter tests use: hashed words, and an ending feature."""
    return HashEncoder("fake", ends_cleanly=True)


class EndsCleanlyHead:
    """A classifier head over `HashEncoder(ends_cleanly=True)` features: a text that does not end
    cleanly is unfinished."""

    threshold = 0.5

    def probability(self, features: np.ndarray) -> np.ndarray:
        return 1.0 - features[:, 0]


class FixedScorer(Scorer):
    """Fast-mode score keys with fixed values, without ragas."""

    name = "fixed"

    def score(
        self,
        question_vec: np.ndarray,
        answer_vec: np.ndarray,
        answer: str,
        contexts: list[str],
        references: list[str],
        question: str = "",
        ctx: CallContext | None = None,
    ) -> dict[str, Any]:
        return {
            "answer_relevancy": 0.9,
            "faithfulness": 0.8,
            "context_precision": 1.0,
            "context_recall": 1.0,
        }


class CopyingSource(QASource):
    """An LLM-like QA source that writes the same definition three times for every plan and
    reports one model call."""

    name = "copying"
    context_budget = 900

    def write(self, request: QARequest, ctx: CallContext) -> list[Candidate | str]:
        entity = next(c for c in request.context if c["kind"] == "entity")
        name, description = entity["text"].split(": ", 1)
        pair = Candidate(
            f"What is {name}?", f"{name}: {description}", [], [entity["key"]], raw_text="{...}"
        )
        ctx.metrics.append(CallMetrics(self.name, "generate"))
        return [pair, Candidate(**vars(pair)), Candidate(**vars(pair))]
