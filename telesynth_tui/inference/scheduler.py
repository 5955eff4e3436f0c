"""Continuous batching: model calls from several threads decoded together in one llama.cpp
context.

On CPU, decoding one token reads every weight once; a joint step of N sequences reads them once
for N tokens, so the aggregate tokens/s grows with N. A `BatchScheduler` owns a context of
`n_seq` sequence slots and a thread that admits waiting calls into free slots (prefill, reusing
the KV cache of the longest prompt prefix a slot still holds), decodes every active sequence in
one step, samples each with its own sampler and JSON constraint, and streams the pieces back to
the calling thread. A call ends at end-of-generation, its token budget, or its own cancel
(polled at every step, so within a token). `BatchedModel` is the `TextModel` face of it: the
pipeline's code calls `complete()` as it would on the model itself.

Metrics of a batched call are attributed per sequence: its own prompt, reused prefix and output
tokens; TTFT and wall time from its submission (time spent waiting for a slot included); decode
tokens/s over its own first-to-last token times; CPU time and energy of each llama.cpp step
shared out among the sequences in it (a prefill belongs to its sequence alone, a joint step in
equal parts), and so is the steps' wall time (`extra["busy_s"]`: summed over a run's calls, the
time llama.cpp was busy). `extra` also holds the mean number of sequences its steps shared.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil

from telesynth_tui.inference.base import (
    CallContext,
    Completion,
    Message,
    SamplingParams,
    TextModel,
)
from telesynth_tui.inference.generator import GeneratorError, LlamaGenerator, _quiet_stderr
from telesynth_tui.inference.json_grammar import TokenMask
from telesynth_tui.inference.metrics import CallMetrics, decode_rate

_END = object()


@dataclass
class _Call:
    prompt: list[int]
    params: SamplingParams
    cancel: Callable[[], bool] | None
    pieces: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    t_submit: float = field(default_factory=time.perf_counter)
    slot: int = -1
    sampler: Any = None
    mask: TokenMask | None = None
    out: list[int] = field(default_factory=list)
    reused: int = 0
    t_first: float | None = None
    t_last: float | None = None
    stop: str = ""
    cpu_s: float = 0.0
    busy_s: float = 0.0  # its share of the llama.cpp steps' wall time
    energy_j: float = 0.0
    energy_detail: str = ""
    prefill_s: float = 0.0
    steps: int = 0
    step_sizes: int = 0
    error: BaseException | None = None
    metrics: CallMetrics | None = None
    decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))


class BatchScheduler:
    """Up to `n_seq` concurrent calls on the weights of `generator`'s model, in a context of
    their own (`n_ctx_seq` tokens per sequence). `lock`, when given, is held during every
    llama.cpp step, so that work guarded by the same lock (the encoder) never runs beside it."""

    def __init__(
        self,
        generator: LlamaGenerator,
        n_seq: int,
        n_ctx_seq: int | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        import llama_cpp

        if n_seq < 1:
            raise GeneratorError(f"--parallel must be at least 1, not {n_seq}")
        self.generator = generator
        self.n_seq = n_seq
        self.n_ctx_seq = n_ctx_seq or generator.n_ctx
        self.n_batch = max(256, n_seq)
        self.lock = lock or threading.Lock()
        # the generator's own context settings (attention kernel, KV types, RoPE), so that a
        # sequence decodes as it would alone; only the size and the sequence count differ
        params = llama_cpp.llama_context_params()
        ctypes.pointer(params)[0] = generator.llm.context_params
        params.n_ctx = self.n_ctx_seq * n_seq
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = n_seq
        params.n_threads = params.n_threads_batch = generator.threads
        params.kv_unified = False  # a KV stream per sequence: its attention sees only its own cells
        with _quiet_stderr():
            self.ctx = llama_cpp.llama_init_from_model(generator.llm._model.model, params)
        if not self.ctx:
            raise GeneratorError(f"llama.cpp cannot create a context for {n_seq} sequences")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        llama_cpp.llama_memory_clear(self.memory, True)
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.n_vocab = generator.llm.n_vocab()
        self.vocab = generator.llm._model.vocab
        self.slots: list[_Call | None] = [None] * n_seq
        self.cached: list[list[int]] = [[] for _ in range(n_seq)]  # tokens each slot's KV holds
        self._waiting: deque[_Call] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="batch-scheduler", daemon=True)
        self._thread.start()

    # --- the callers' side ----------------------------------------------------------------

    def model(
        self, waiting: Callable[[], AbstractContextManager[Any]] | None = None
    ) -> BatchedModel:
        """A text model whose calls go through this scheduler; `waiting()` is entered while a
        call waits for its pieces (a caller's turn released, say)."""
        return BatchedModel(self, waiting)

    def submit(
        self, prompt: list[int], params: SamplingParams, cancel: Callable[[], bool] | None
    ) -> _Call:
        if len(prompt) >= self.n_ctx_seq:
            raise GeneratorError(
                f"prompt of {len(prompt)} tokens does not fit the {self.n_ctx_seq}-token context"
            )
        call = _Call(list(prompt), params, cancel)
        with self._wake:
            if self._closed:
                raise GeneratorError("the batch scheduler is closed")
            self._waiting.append(call)
            self._wake.notify()
        return call

    def close(self) -> None:
        import llama_cpp

        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()
        if self.ctx:
            llama_cpp.llama_batch_free(self.batch)
            llama_cpp.llama_free(self.ctx)
            self.ctx = None

    def __enter__(self) -> BatchScheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the scheduler thread -------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed and not self._waiting and not any(self.slots):
                    self._wake.wait()
                if self._closed:
                    for call in [*self._waiting, *filter(None, self.slots)]:
                        call.error = GeneratorError("the batch scheduler was closed")
                        self._end(call)
                    return
                admitted = []
                while self._waiting and None in self.slots:
                    call = self._waiting.popleft()
                    if call.cancel is not None and call.cancel():
                        call.stop = "cancelled"
                        self._end(call)
                        continue
                    call.slot = self._best_slot(call.prompt)
                    self.slots[call.slot] = call
                    admitted.append(call)
            for call in admitted:
                try:
                    self._prefill(call)
                except Exception as exc:  # this call fails; the others go on
                    call.error = exc
            active = [c for c in self.slots if c is not None and not (c.stop or c.error)]
            if active:
                try:
                    self._step(active)
                except Exception as exc:  # a failed step fails the calls in it
                    for call in active:
                        call.error = call.error or exc
            for call in [c for c in self.slots if c is not None and (c.stop or c.error)]:
                self._end(call)

    def _best_slot(self, prompt: list[int]) -> int:
        """The free slot whose cached tokens share the longest prefix with `prompt`."""
        free = [i for i, c in enumerate(self.slots) if c is None]
        return max(free, key=lambda i: (_common_prefix(self.cached[i], prompt), -i))

    def _decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (token, position, slot, wants logits) entries."""
        import llama_cpp

        b = self.batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(entries)
        rc = llama_cpp.llama_decode(self.ctx, b)
        if rc != 0:
            raise GeneratorError(f"llama.cpp could not decode the batch (code {rc})")

    def _measured(self, calls: Sequence[_Call], work: Callable[[], None]) -> None:
        """Run one llama.cpp step under the lock; share its CPU time and energy out."""
        energy = self.generator.energy
        with self.lock:
            energy.start()
            cpu0, t0 = time.process_time(), time.perf_counter()
            try:
                work()
            finally:
                cpu = time.process_time() - cpu0
                wall = time.perf_counter() - t0
                reading = energy.stop(wall, cpu)
                for call in calls:
                    call.cpu_s += cpu / len(calls)
                    call.busy_s += wall / len(calls)
                    call.energy_j += reading.joules / len(calls)
                    call.energy_detail = reading.detail
                    call.steps += 1
                    call.step_sizes += len(calls)

    def _prefill(self, call: _Call) -> None:
        """Evaluate the prompt in the call's slot, keeping the prefix the slot already holds
        (all but the last prompt token, which is evaluated again for fresh logits)."""
        import llama_cpp

        gen = self.generator
        p = call.params
        call.mask = gen._token_mask(p.json_schema) if p.json_schema is not None else None
        call.sampler = gen._sampler(p)
        slot, prompt = call.slot, call.prompt
        keep = min(_common_prefix(self.cached[slot], prompt), len(prompt) - 1)
        if not p.reuse_prompt_cache:
            keep = 0
        if not llama_cpp.llama_memory_seq_rm(self.memory, slot, keep, -1):
            keep = 0
            llama_cpp.llama_memory_seq_rm(self.memory, slot, -1, -1)
        call.reused = keep
        self.cached[slot] = prompt[:keep]

        def run() -> None:
            last = 0
            for start in range(keep, len(prompt), self.n_batch):
                chunk = prompt[start : start + self.n_batch]
                final = start + len(chunk) == len(prompt)
                entries = [
                    (t, start + k, slot, final and k == len(chunk) - 1) for k, t in enumerate(chunk)
                ]
                self._decode(entries)
                self.cached[slot] += chunk
                last = len(chunk) - 1
            self._accept(call, self._sample(call, last))

        t0 = time.perf_counter()
        self._measured([call], run)
        call.prefill_s = time.perf_counter() - t0

    def _step(self, active: list[_Call]) -> None:
        def run() -> None:
            self._decode(
                [(c.out[-1], len(c.prompt) + len(c.out) - 1, c.slot, True) for c in active]
            )
            for j, call in enumerate(active):
                self.cached[call.slot].append(call.out[-1])
                try:
                    self._accept(call, self._sample(call, j))
                except Exception as exc:  # this call fails; the others go on
                    call.error = exc

        self._measured(active, run)
        for call in active:
            if not call.stop and call.cancel is not None and call.cancel():
                call.stop = "cancelled"

    def _sample(self, call: _Call, idx: int) -> int:
        import llama_cpp

        token = llama_cpp.llama_sampler_sample(call.sampler.sampler, self.ctx, idx)
        mask = call.mask
        if mask is not None and not mask.allows(token):
            logits = llama_cpp.llama_get_logits_ith(self.ctx, idx)
            mask.restrict(np.ctypeslib.as_array(logits, shape=(self.n_vocab,)))
            token = llama_cpp.llama_sampler_sample(call.sampler.sampler, self.ctx, idx)
            if not mask.allows(token):
                raise GeneratorError(f"JSON constraint: no allowed token ({mask.error})")
        return token

    def _accept(self, call: _Call, token: int) -> None:
        import llama_cpp

        now = time.perf_counter()
        call.t_first = call.t_first or now
        if call.params.stop_at_eos and llama_cpp.llama_vocab_is_eog(self.vocab, token):
            call.stop = "eos"
            return
        call.t_last = now
        call.out.append(token)
        piece = call.decoder.decode(self.generator.llm.detokenize([token], special=False))
        if piece:
            call.pieces.put(piece)
        room = self.n_ctx_seq - len(call.prompt)
        if len(call.out) >= min(call.params.max_tokens, room):
            call.stop = "length"
        elif call.mask is not None and call.mask.done:
            call.stop = "eos"
        elif call.cancel is not None and call.cancel():
            call.stop = "cancelled"

    def _end(self, call: _Call) -> None:
        """Free the call's slot, fill its metrics and wake its caller."""
        if call.slot >= 0 and self.slots[call.slot] is call:
            self.slots[call.slot] = None
        if call.sampler is not None:
            call.sampler.close()
            call.sampler = None
        tail = call.decoder.decode(b"", final=True)
        if tail:
            call.pieces.put(tail)
        gen = self.generator
        m = CallMetrics(gen.name, "generate", prompt_tokens=len(call.prompt))
        m.output_tokens = len(call.out)
        m.ttft_s = (call.t_first - call.t_submit) if call.t_first else None
        m.decode_tok_s = decode_rate(len(call.out), call.t_first, call.t_last)
        evaluated = len(call.prompt) - call.reused
        m.prefill_tok_s = evaluated / call.prefill_s if call.prefill_s > 0 else None
        m.wall_s = time.perf_counter() - call.t_submit
        m.cpu_s = call.cpu_s
        m.energy_j = call.energy_j
        m.energy_source = gen.energy.source
        m.energy_detail = call.energy_detail
        m.peak_rss_mb = psutil.Process().memory_info().rss / 1e6
        m.stop_reason = call.stop or "length"
        m.extra = {
            "batched": True,
            "batch_slots": self.n_seq,
            "mean_batch_size": round(call.step_sizes / call.steps, 2) if call.steps else None,
            "prefix_reused_tokens": call.reused,
            "busy_s": round(call.busy_s, 4),
            "threads": gen.threads,
            "json_schema": call.params.json_schema is not None,
            "json_engine": "llguidance" if call.mask is not None else None,
        }
        call.metrics = m
        call.pieces.put(_END)


class BatchedModel(TextModel):
    """A `TextModel` whose calls are decoded by a `BatchScheduler`, together with the calls
    other threads make at the same time. Safe to use from several threads."""

    supports_schema = True

    def __init__(
        self,
        scheduler: BatchScheduler,
        waiting: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.generator = scheduler.generator
        self.name = scheduler.generator.name
        self._waiting = waiting or contextlib.nullcontext

    @property
    def n_ctx(self) -> int:
        return self.scheduler.n_ctx_seq

    @property
    def n_vocab(self) -> int:
        return self.scheduler.n_vocab

    def tokenize(self, text: str) -> list[int]:
        return self.generator.tokenize(text)

    def render(self, messages: Sequence[Message]) -> str:
        return self.generator.render(messages)

    def execute(
        self, messages: Sequence[Message], params: SamplingParams, ctx: CallContext
    ) -> Generator[str, None, CallMetrics]:
        prompt = self.tokenize(self.render(messages))
        call = self.scheduler.submit(prompt, params, ctx.cancel)
        while True:
            with self._waiting():
                piece = call.pieces.get()
            if piece is _END:
                break
            yield piece
        if call.error is not None:
            raise call.error
        assert call.metrics is not None
        return call.metrics


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n


def complete_together(
    model: TextModel, conversations: Sequence[Sequence[Message]], params: SamplingParams
) -> list[Completion]:
    """Every conversation completed from a thread of its own, at the same time (on a
    `BatchedModel`, decoded together); results in the order given."""
    results: list[Completion | BaseException | None] = [None] * len(conversations)

    def work(i: int) -> None:
        try:
            results[i] = model.complete(conversations[i], params)
        except BaseException as exc:  # re-raised in the caller's thread below
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(conversations))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done: list[Completion] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        assert result is not None
        done.append(result)
    return done
