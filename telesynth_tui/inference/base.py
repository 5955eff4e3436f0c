"""The model interfaces every back end implements.

A text model (a GGUF in llama.cpp, an OpenAI-compatible server, a test fake) is one small
abstract `execute()` plus the facts callers need about it (context size, tokenizer, chat
template, vocabulary size) and capability flags. `complete()` and `stream()` are written once
here on top of `execute()`; callers never read metrics from the model afterwards, they get them
in the `Completion` or through the `CallContext` they pass.

An encoder embeds texts into L2-normalised rows; its call metrics go to the context too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from telesynth_tui.inference.metrics import CallMetrics

Message = dict[str, str]

STOP_REASONS = ("eos", "length", "cancelled")


@dataclass
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy
    top_k: int = 40
    top_p: float = 0.95
    repeat_penalty: float = 1.0
    json_schema: dict[str, Any] | None = None
    stop_at_eos: bool = True  # False only for benchmarks that need a fixed token count
    reuse_prompt_cache: bool = True  # False: prefill the whole prompt (cold TTFT)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallContext:
    """What a caller hands one model call: `cancel` is polled between tokens, `on_token` sees
    each decoded piece, and the call's metrics are appended to `metrics` when it ends."""

    cancel: Callable[[], bool] | None = None
    on_token: Callable[[str], None] | None = None
    metrics: list[CallMetrics] = field(default_factory=list)

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel()


@dataclass
class Completion:
    text: str
    metrics: CallMetrics

    @property
    def stop_reason(self) -> str:
        return self.metrics.stop_reason

    @property
    def cancelled(self) -> bool:
        return self.metrics.stop_reason == "cancelled"


class TextModel(ABC):
    """A chat model. Subclasses implement `execute()` and the model facts below."""

    name: str
    # in-process (energy and memory are this process's); False for a remote server
    local: ClassVar[bool] = True
    # honours SamplingParams.json_schema (every output valid under the schema)
    supports_schema: ClassVar[bool] = True

    @property
    @abstractmethod
    def n_ctx(self) -> int:
        """Context size in tokens (prompt plus output)."""

    @property
    @abstractmethod
    def n_vocab(self) -> int:
        """Vocabulary size."""

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` (no BOS added; special tokens parsed)."""

    @abstractmethod
    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text of chat messages under the model's own chat template."""

    def fits(self, messages: Sequence[Message], max_tokens: int) -> bool:
        """Whether the rendered prompt leaves room for `max_tokens` of answer in the context."""
        return len(self.tokenize(self.render(messages))) + max_tokens <= self.n_ctx

    @abstractmethod
    def execute(
        self, messages: Sequence[Message], params: SamplingParams, ctx: CallContext
    ) -> Generator[str, None, CallMetrics]:
        """Yield the decoded pieces of the answer, stopping within a token once
        `ctx.cancelled()`; return the call's metrics (with `stop_reason` set)."""

    def stream(
        self,
        messages: Sequence[Message],
        params: SamplingParams,
        ctx: CallContext | None = None,
    ) -> Iterator[str]:
        """Yield the answer's pieces; the metrics go to `ctx.metrics` when the call ends."""
        ctx = ctx if ctx is not None else CallContext()
        return stream_calls(self.execute(messages, params, ctx), ctx)

    def complete(
        self,
        messages: Sequence[Message],
        params: SamplingParams,
        ctx: CallContext | None = None,
    ) -> Completion:
        """The whole answer with its metrics (also appended to `ctx.metrics`)."""
        ctx = ctx if ctx is not None else CallContext()
        text = "".join(self.stream(messages, params, ctx))
        return Completion(text, ctx.metrics[-1])

    def expect(self, calls: Sequence[tuple[Sequence[Message], SamplingParams]]) -> None:
        """The calls that will follow, in order: a model that runs calls elsewhere (Ray workers)
        may start them now. Default: nothing."""
        return None

    def close(self) -> None:
        """Release the model (memory, connections). Safe to call twice."""
        return None

    def __enter__(self) -> TextModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream_calls(call: Generator[str, None, CallMetrics], ctx: CallContext) -> Iterator[str]:
    """Drive one `execute()`-style call: each piece to `ctx.on_token` and on to the caller, the
    returned metrics appended to `ctx.metrics` when the call ends."""
    while True:
        try:
            piece = next(call)
        except StopIteration as end:
            ctx.metrics.append(end.value)
            return
        if ctx.on_token is not None:
            ctx.on_token(piece)
        yield piece


class Encoder(ABC):
    """Embeds texts into L2-normalised vectors (one row per text)."""

    model_id: str
    local: ClassVar[bool] = True

    @abstractmethod
    def embed(self, texts: Sequence[str], ctx: CallContext | None = None) -> np.ndarray:
        """Sentence vectors; the call's metrics go to `ctx.metrics`."""

    def features(self, texts: Sequence[str], ctx: CallContext | None = None) -> np.ndarray:
        """Features for classifier heads (by default the sentence vectors)."""
        return self.embed(texts, ctx)
