"""Batched decoding: several sequences decoded together in one llama.cpp context, each with its own
sampler and JSON constraint. On CPU, decoding one token reads every weight once; a batch of N
sequences reads them once for N tokens, so the aggregate tokens/s grows with N.

Metrics of a batched call are attributed per sequence: its own prompt and output tokens; TTFT
from the start of the batch to its first token (the prompts are prefilled one after another, then
every sequence decodes in joint steps); decode tokens/s over its own first-to-last token times;
wall time from the start of the batch to its last token; the batch's CPU time and energy shared
out in proportion to each sequence's tokens (prompt + output). `extra` holds the batch figures:
size, wall time and the aggregate decode rate (tokens after each sequence's first ÷ the time of
the joint steps).
"""

from __future__ import annotations

import codecs
import ctypes
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from telesynth_tui.inference.base import CallContext, Completion, SamplingParams
from telesynth_tui.inference.generator import GeneratorError, LlamaGenerator, _quiet_stderr
from telesynth_tui.inference.json_grammar import TokenMask
from telesynth_tui.inference.metrics import CallMeter, CallMetrics, decode_rate


@dataclass
class _Seq:
    index: int
    prompt: list[int]
    params: SamplingParams
    ctx: CallContext
    sampler: Any
    mask: TokenMask | None
    out: list[int] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    t_first: float | None = None
    t_last: float | None = None
    stop: str = ""
    decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))


class BatchDecoder:
    """Up to `n_seq` sequences at a time on the weights of `generator`'s model, in a context of
    their own (`n_ctx_seq` tokens per sequence)."""

    def __init__(self, generator: LlamaGenerator, n_seq: int, n_ctx_seq: int | None = None) -> None:
        import llama_cpp

        if n_seq < 1:
            raise GeneratorError(f"--parallel must be at least 1, not {n_seq}")
        self.generator = generator
        self.n_seq = n_seq
        self.n_ctx_seq = n_ctx_seq or generator.n_ctx
        self.n_batch = max(256, n_seq)
        # the generator's own context settings (attention kernel, KV types, RoPE), so that a
        # sequence decodes as it would alone; only the size and the sequence count differ
        params = llama_cpp.llama_context_params()
        ctypes.pointer(params)[0] = generator.llm.context_params
        params.n_ctx = self.n_ctx_seq * n_seq
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = n_seq
        params.n_threads = params.n_threads_batch = generator.threads
        params.kv_unified = True
        with _quiet_stderr():
            self.ctx = llama_cpp.llama_init_from_model(generator.llm._model.model, params)
        if not self.ctx:
            raise GeneratorError(f"llama.cpp cannot create a context for {n_seq} sequences")
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.n_vocab = generator.llm.n_vocab()

    def close(self) -> None:
        import llama_cpp

        if self.ctx:
            llama_cpp.llama_batch_free(self.batch)
            llama_cpp.llama_free(self.ctx)
            self.ctx = None

    def __enter__(self) -> BatchDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (token, position, sequence, wants logits) entries."""
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

    def _sample(self, seq: _Seq, idx: int) -> int:
        import llama_cpp

        token = llama_cpp.llama_sampler_sample(seq.sampler.sampler, self.ctx, idx)
        if seq.mask is not None and not seq.mask.allows(token):
            logits = llama_cpp.llama_get_logits_ith(self.ctx, idx)
            seq.mask.restrict(np.ctypeslib.as_array(logits, shape=(self.n_vocab,)))
            token = llama_cpp.llama_sampler_sample(seq.sampler.sampler, self.ctx, idx)
            if not seq.mask.allows(token):
                raise GeneratorError(f"JSON constraint: no allowed token ({seq.mask.error})")
        return token

    def run(
        self,
        prompts: Sequence[list[int]],
        params: Sequence[SamplingParams],
        contexts: Sequence[CallContext] | None = None,
    ) -> list[Completion]:
        """Decode every prompt (at most `n_seq` of them) to completion together. Sequence i has
        its own call context `contexts[i]`: its `on_token` sees the sequence's pieces, its
        `cancel` stops that sequence within a token, and its metrics go to its `metrics`."""
        import llama_cpp

        if len(prompts) > self.n_seq:
            raise GeneratorError(f"{len(prompts)} prompts for a batch of {self.n_seq}")
        if contexts is None:
            contexts = [CallContext() for _ in prompts]
        gen = self.generator
        vocab = gen.llm._model.vocab
        seqs = []
        for i, (prompt, p, ctx) in enumerate(zip(prompts, params, contexts, strict=True)):
            if len(prompt) >= self.n_ctx_seq:
                limit = self.n_ctx_seq
                raise GeneratorError(
                    f"prompt of {len(prompt)} tokens does not fit the {limit}-token context"
                )
            mask = gen._token_mask(p.json_schema) if p.json_schema is not None else None
            seqs.append(_Seq(i, prompt, p, ctx, gen._sampler(p), mask))
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
        meter = CallMeter(gen.energy)
        try:
            with meter:
                for seq in seqs:  # prefill, then the first token of each sequence
                    for start in range(0, len(seq.prompt), self.n_batch):
                        chunk = seq.prompt[start : start + self.n_batch]
                        last = start + len(chunk) == len(seq.prompt)
                        self._decode([(t, start + k, seq.index, last and k == len(chunk) - 1)
                                      for k, t in enumerate(chunk)])  # fmt: skip
                    self._accept(seq, self._sample(seq, len(chunk) - 1), vocab)
                while True:
                    active = [s for s in seqs if not s.stop]
                    if not active:
                        break
                    self._decode([(s.out[-1], len(s.prompt) + len(s.out) - 1, s.index, True)
                                  for s in active])  # fmt: skip
                    for j, seq in enumerate(active):
                        self._accept(seq, self._sample(seq, j), vocab)
                    for seq in active:
                        if not seq.stop and seq.ctx.cancelled():
                            seq.stop = "cancelled"
        finally:
            for seq in seqs:
                seq.sampler.close()
        return self._results(seqs, meter)

    def _accept(self, seq: _Seq, token: int, vocab: Any) -> None:
        import llama_cpp

        now = time.perf_counter()
        seq.t_first = seq.t_first or now
        if seq.params.stop_at_eos and llama_cpp.llama_vocab_is_eog(vocab, token):
            seq.stop = "eos"
            return
        seq.t_last = now
        seq.out.append(token)
        piece = seq.decoder.decode(self.generator.llm.detokenize([token], special=False))
        seq.text.append(piece)
        if piece and seq.ctx.on_token is not None:
            seq.ctx.on_token(piece)
        room = self.n_ctx_seq - len(seq.prompt)
        if len(seq.out) >= min(seq.params.max_tokens, room):
            seq.stop = "length"
        elif seq.mask is not None and seq.mask.done:
            seq.stop = "eos"

    def _results(self, seqs: list[_Seq], meter: CallMeter) -> list[Completion]:
        total = sum(len(s.prompt) + len(s.out) for s in seqs) or 1
        batch = CallMetrics(self.generator.name, "generate")
        meter.fill(batch)
        # every prefill (and each sequence's first token) comes before the joint decode steps
        firsts = [s.t_first for s in seqs if s.t_first]
        lasts = [s.t_last for s in seqs if s.t_last]
        span = (max(lasts) - max(firsts)) if firsts and lasts else 0.0
        outputs = sum(max(0, len(s.out) - 1) for s in seqs)
        results = []
        for s in seqs:
            share = (len(s.prompt) + len(s.out)) / total
            m = CallMetrics(self.generator.name, "generate", prompt_tokens=len(s.prompt))
            m.output_tokens = len(s.out)
            m.ttft_s = (s.t_first - meter.t0) if s.t_first else None
            m.decode_tok_s = decode_rate(len(s.out), s.t_first, s.t_last)
            m.wall_s = ((s.t_last or s.t_first or meter.t0) - meter.t0) if s.t_first else 0.0
            m.cpu_s = batch.cpu_s * share
            m.energy_j = batch.energy_j * share
            m.energy_source, m.energy_detail = batch.energy_source, batch.energy_detail
            m.peak_rss_mb = batch.peak_rss_mb
            m.stop_reason = s.stop or "length"
            m.extra = {
                "batch_size": len(seqs),
                "batch_wall_s": round(batch.wall_s, 3),
                "batch_decode_tok_s": round(outputs / span, 2) if span > 0 else None,
                "threads": self.generator.threads,
                "json_schema": s.params.json_schema is not None,
                "json_engine": "llguidance" if s.mask is not None else None,
            }
            text = "".join(s.text) + s.decoder.decode(b"", final=True)
            s.ctx.metrics.append(m)
            results.append(Completion(text, m))
        return results
