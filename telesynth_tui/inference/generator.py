"""Text model over llama-cpp-python: chat template from the GGUF, token streaming,
JSON-schema-constrained output, cancellation between tokens, and metrics for every call."""

from __future__ import annotations

import codecs
import contextlib
import os
import time
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import (
    CallContext,
    Completion,
    Message,
    SamplingParams,
    TextModel,
    stream_calls,
)
from telesynth_tui.inference.energy import EnergyMeter
from telesynth_tui.inference.gguf_header import GGUFHeader, read_gguf_header
from telesynth_tui.inference.json_grammar import TokenMask, llama_tokenizer, schema_to_gbnf
from telesynth_tui.inference.metrics import CallMeter, CallMetrics, decode_rate

# llama.cpp's CPU threads wait for each other at every operation. Spinning there (OpenMP's
# default) makes decoding collapse when any other process wants a core (measured on 2 busy
# cores: 2 threads 0.7-0.9 tok/s spinning against 14.6-17.1 sleeping, 1 thread 10-12); sleeping
# threads make every core safe to use. Set before llama.cpp's OpenMP runtime loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class GeneratorError(TelesynthError):
    """A generator model that cannot be loaded or run."""


def check_memory(header: GGUFHeader, n_ctx: int) -> int:
    """Bytes the model needs (weights + f16 KV cache); refuse it if free memory is short."""
    meta = header.metadata
    arch = header.architecture
    layers = int(meta.get(f"{arch}.block_count", 0))
    dim = int(meta.get(f"{arch}.embedding_length", 0))
    heads = int(meta.get(f"{arch}.attention.head_count", 1)) or 1
    kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads)) or heads
    kv_bytes = 2 * layers * n_ctx * (dim // heads) * kv_heads * 2
    needed = header.file_size + kv_bytes
    available = psutil.virtual_memory().available
    if needed > 0.9 * available:
        raise GeneratorError(
            f"{header.path}: needs about {needed / 2**30:.1f} GiB with a {n_ctx}-token context, "
            f"only {available / 2**30:.1f} GiB is free"
        )
    return needed


def new_llama(**kwargs: Any) -> Any:
    """A llama_cpp.Llama with llama.cpp's extra CPU weight buffers (AMX, repacking) off: on
    virtual machines that report AMX, llama.cpp's AMX matrix multiply crashes the process
    (SIGSEGV in ggml_backend_amx_mul_mat, measured with llama-cpp-python 0.3.36)."""
    import llama_cpp
    from llama_cpp import llama as llama_module

    default = llama_cpp.llama_model_default_params

    def params() -> Any:
        p = default()
        p.use_extra_bufts = False
        return p

    llama_module.llama_cpp.llama_model_default_params = params
    try:
        return llama_cpp.Llama(**kwargs)
    finally:
        llama_module.llama_cpp.llama_model_default_params = default


def auto_threads() -> int:
    """Threads for llama.cpp when none are set: every core this process may run on. The
    pipeline never runs the encoder while the generator decodes, so nothing competes."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class LlamaGenerator(TextModel):
    """One GGUF model loaded in llama.cpp. `threads=None` uses every core (`auto_threads`).
    Consecutive calls reuse the KV cache of their longest common prompt prefix."""

    llm: Any = None  # the llama_cpp.Llama (None once closed)

    def __init__(
        self,
        path: Path,
        name: str | None = None,
        threads: int | None = None,
        n_ctx: int = 2048,
        n_batch: int = 256,
        seed: int = 0,
        energy: EnergyMeter | None = None,
    ) -> None:
        self.header = read_gguf_header(path)
        self.path = path
        self.name = name or path.stem
        self.energy = energy or EnergyMeter()
        # "llguidance" (token masks) or "llama-grammar" (llama.cpp's GBNF, kept as the reference
        # that bench/constrained.py and `models bench` measure it against)
        self.json_engine = "llguidance"
        self._lltokenizer: Any = None
        self.threads_auto = threads is None
        self.threads = auto_threads() if threads is None else threads
        trained = self.header.context_length or n_ctx
        self._n_ctx = min(n_ctx, trained)
        check_memory(self.header, self.n_ctx)
        try:
            with _quiet_stderr():
                self.llm = new_llama(
                    model_path=str(path),
                    n_ctx=self.n_ctx,
                    n_batch=n_batch,
                    n_threads=self.threads,
                    n_threads_batch=self.threads,
                    seed=seed,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise GeneratorError(f"{path}: llama.cpp cannot load the model: {exc}") from None
        self._formatter = self._chat_formatter()

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    @property
    def n_vocab(self) -> int:
        return int(self.llm.n_vocab())

    def _chat_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.header.chat_template
        if not template:
            return None
        vocab = self.llm
        return Jinja2ChatFormatter(
            template=template,
            eos_token=vocab.detokenize([vocab.token_eos()], special=True).decode(errors="ignore"),
            bos_token=vocab.detokenize([vocab.token_bos()], special=True).decode(errors="ignore"),
        )

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text of chat messages under the model's own template."""
        if self._formatter is None:
            parts = [f"{m['role']}: {m['content']}" for m in messages]
            return "\n".join(parts) + "\nassistant:"
        return str(self._formatter(messages=list(messages)).prompt)

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def execute(
        self, messages: Sequence[Message], params: SamplingParams, ctx: CallContext
    ) -> Generator[str, None, CallMetrics]:
        prompt = self.tokenize(self.render(messages))
        return (yield from self.execute_tokens(prompt, params, ctx))

    def complete_tokens(
        self, prompt: list[int], params: SamplingParams, ctx: CallContext | None = None
    ) -> Completion:
        """`complete()` for a prompt given as tokens (benchmarks that fix the prompt length)."""
        ctx = ctx if ctx is not None else CallContext()
        text = "".join(stream_calls(self.execute_tokens(prompt, params, ctx), ctx))
        return Completion(text, ctx.metrics[-1])

    def execute_tokens(
        self, prompt: list[int], params: SamplingParams, ctx: CallContext
    ) -> Generator[str, None, CallMetrics]:
        """`execute()` for a prompt given as tokens."""
        import llama_cpp

        if len(prompt) >= self.n_ctx:
            raise GeneratorError(
                f"prompt of {len(prompt)} tokens does not fit the {self.n_ctx}-token context"
            )
        max_tokens = min(params.max_tokens, self.n_ctx - len(prompt))
        schema = params.json_schema
        gbnf = schema_to_gbnf(schema) if schema and self.json_engine == "llama-grammar" else None
        mask = self._token_mask(schema) if schema and gbnf is None else None
        metrics = CallMetrics(self.name, "generate", prompt_tokens=len(prompt))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        vocab = self.llm._model.vocab
        t_first: float | None = None
        t_last: float | None = None
        n_out = 0
        stop = "length"
        llama_cpp.llama_perf_context_reset(self.llm.ctx)
        if not params.reuse_prompt_cache:
            self.llm.reset()  # forget the evaluated tokens so no prefix is reused
        reused = self.shared_prefix(prompt)
        with CallMeter(self.energy) as meter:
            if mask is not None:
                tokens = self._masked(prompt, params, mask)
            elif gbnf is None:
                # llama-cpp-python's generate reuses the same shared prefix (kv_cache_seq_rm)
                tokens = self.llm.generate(
                    prompt,
                    top_k=params.top_k,
                    top_p=params.top_p,
                    temp=params.temperature,
                    repeat_penalty=params.repeat_penalty,
                    reset=True,
                )
            else:
                tokens = self._constrained(prompt, params, gbnf)
            for token in tokens:
                now = time.perf_counter()
                if t_first is None:
                    t_first = now
                    metrics.ttft_s = now - meter.t0
                if params.stop_at_eos and llama_cpp.llama_vocab_is_eog(vocab, token):
                    stop = "eos"
                    break
                t_last = now
                n_out += 1
                piece = decoder.decode(self.llm.detokenize([token], special=False))
                if piece:
                    yield piece
                if ctx.cancelled():
                    stop = "cancelled"
                    break
                if n_out >= max_tokens:
                    break
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
        metrics.output_tokens = n_out
        metrics.decode_tok_s = decode_rate(n_out, t_first, t_last)
        metrics.stop_reason = stop
        perf = llama_cpp.llama_perf_context(self.llm.ctx)
        if perf.t_p_eval_ms > 0:
            metrics.prefill_tok_s = perf.n_p_eval / (perf.t_p_eval_ms / 1000)
        elif metrics.ttft_s:
            metrics.prefill_tok_s = len(prompt) / metrics.ttft_s
        metrics.extra = {
            "llama_prefill_tokens": perf.n_p_eval,
            "llama_prefill_ms": round(perf.t_p_eval_ms, 3),
            "llama_decode_tokens": perf.n_eval,
            "llama_decode_ms": round(perf.t_eval_ms, 3),
            "llama_decode_tok_s": (perf.n_eval / (perf.t_eval_ms / 1000))
            if perf.t_eval_ms > 0
            else None,
            "json_schema": params.json_schema is not None,
            "json_engine": self.json_engine if params.json_schema is not None else None,
            "prefix_reused_tokens": reused,
            "threads": self.threads,
        }
        return meter.fill(metrics)

    def shared_prefix(self, prompt: Sequence[int]) -> int:
        """Tokens at the start of `prompt` whose KV cache the last call left in place (at most
        all but the last, which is evaluated again to produce fresh logits)."""
        llm = self.llm
        n = min(llm.n_tokens, len(prompt) - 1)
        if n <= 0:
            return 0
        cached = llm.input_ids[:n]
        differ = np.flatnonzero(cached != np.asarray(prompt[:n], dtype=cached.dtype))
        return int(differ[0]) if differ.size else n

    def prefill(self, prompt: Sequence[int]) -> int:
        """Evaluate `prompt`, reusing the KV cache of its shared prefix with the tokens evaluated
        before (system text, then context, then task: a plan's calls and plans with the same
        context share most of their prompt). Returns the reused token count."""
        llm = self.llm
        n = self.shared_prefix(prompt)
        if n > 0 and llm._ctx.kv_cache_seq_rm(-1, n, -1):
            llm.n_tokens = n
        else:
            n = 0
            llm.reset()
        llm.eval(list(prompt[n:]))
        return n

    def _token_mask(self, schema: dict[str, Any]) -> TokenMask:
        if self._lltokenizer is None:
            self._lltokenizer = llama_tokenizer(self.llm._model.vocab)
        return TokenMask(self._lltokenizer, schema, self.llm.n_vocab())

    def _sampler(self, params: SamplingParams) -> Any:
        from llama_cpp._internals import LlamaSampler

        chain = LlamaSampler()
        if params.repeat_penalty != 1.0:
            chain.add_penalties(self.llm.n_vocab(), 64, params.repeat_penalty, 0.0, 0.0)
        if params.temperature <= 0:
            chain.add_greedy()
        else:
            chain.add_top_k(params.top_k)
            chain.add_top_p(params.top_p, 1)
            chain.add_temp(params.temperature)
            chain.add_dist(params.extra.get("seed", 0))
        return chain

    def _masked(self, prompt: list[int], params: SamplingParams, mask: TokenMask) -> Iterator[int]:
        """Constrained sampling, mask last: sample as usual and let the constraint check that
        one token; only when it is refused mask the whole vocabulary's logits (in llama.cpp's
        own buffer) and sample again. Greedy output equals sampling from the fully masked
        logits; with temperature a refused draw advances the random state once more. Once the
        JSON value is complete the end-of-generation token follows."""
        import llama_cpp

        chain = self._sampler(params)
        ctx = self.llm._ctx.ctx
        n_vocab = self.llm.n_vocab()
        eos = self.llm.token_eos()
        try:
            self.prefill(prompt)
            while True:
                token = llama_cpp.llama_sampler_sample(chain.sampler, ctx, -1)
                if not mask.allows(token):
                    logits = llama_cpp.llama_get_logits_ith(ctx, -1)
                    mask.restrict(np.ctypeslib.as_array(logits, shape=(n_vocab,)))
                    token = llama_cpp.llama_sampler_sample(chain.sampler, ctx, -1)
                    if not mask.allows(token):
                        raise GeneratorError(f"JSON constraint: no allowed token ({mask.error})")
                yield token
                if mask.done:
                    yield eos
                    return
                self.llm.eval([token])
        finally:
            chain.close()

    def _constrained(self, prompt: list[int], params: SamplingParams, gbnf: str) -> Iterator[int]:
        """Grammar-constrained sampling, grammar last: sample as usual, let the grammar check
        that one token, and only when it is rejected apply the grammar to the whole vocabulary
        and sample again (as llama.cpp's own sampler does). Applying the grammar to every
        candidate at every step costs most on large vocabularies."""
        import ctypes

        import llama_cpp
        from llama_cpp._internals import LlamaTokenDataArray

        model = self.llm._model
        chain = self._sampler(params)
        grammar = llama_cpp.llama_sampler_init_grammar(model.vocab, gbnf.encode(), b"root")
        if not grammar:
            chain.close()
            raise GeneratorError("llama.cpp rejected the grammar of the JSON schema")
        single_data = (llama_cpp.llama_token_data * 1)()
        single = llama_cpp.llama_token_data_array(
            data=single_data, size=1, selected=-1, sorted=False
        )
        full = LlamaTokenDataArray(n_vocab=self.llm.n_vocab())
        ctx = self.llm._ctx.ctx
        try:
            self.prefill(prompt)
            while True:
                token = llama_cpp.llama_sampler_sample(chain.sampler, ctx, -1)
                single_data[0].id, single_data[0].logit, single_data[0].p = token, 0.0, 0.0
                single.size, single.selected = 1, -1
                llama_cpp.llama_sampler_apply(grammar, ctypes.byref(single))
                if single_data[0].logit == float("-inf"):
                    logits = llama_cpp.llama_get_logits_ith(ctx, -1)
                    full.copy_logits(np.ctypeslib.as_array(logits, shape=(full.n_vocab,)))
                    llama_cpp.llama_sampler_apply(grammar, ctypes.byref(full.candidates))
                    llama_cpp.llama_sampler_apply(chain.sampler, ctypes.byref(full.candidates))
                    token = int(full.candidates_data.id[full.candidates.selected])
                llama_cpp.llama_sampler_accept(grammar, token)
                yield token
                self.llm.eval([token])
        finally:
            llama_cpp.llama_sampler_free(grammar)
            chain.close()

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None

    def __enter__(self) -> LlamaGenerator:
        return self


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """llama.cpp prints load logs to fd 2 even with verbose=False; keep the terminal clean."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
