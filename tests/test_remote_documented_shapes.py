"""The OpenAI-compatible back end against the answers vLLM and Ollama document, reproduced by a
STUB server on 127.0.0.1 (neither can be installed here; the real llama.cpp servers are tested
in test_remote.py and test_llama_server.py). Each stub answers in the shapes of its server's
documentation:

- vLLM: `/v1/models` entries with `owned_by: "vllm"` and `max_model_len`; `/tokenize` with
  `{"model", "prompt"}` answering `{"count", "max_model_len", "tokens"}`; `response_format` of
  type `json_schema` honoured; the usage chunk of `stream_options.include_usage` (with
  `prompt_tokens_details.cached_tokens`); no `timings`; errors as `{"error": {"message", ...}}`
  (the stream's too) and the finish reason `abort` for a request the engine dropped.
- Ollama: `/v1/models` ids with their tag (`smollm2:latest`) and `owned_by: "library"`; no
  tokenize endpoint; `usage.prompt_tokens` 0 for a prompt it had cached; versions before
  structured outputs ignore a `json_schema` response format and write free text."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from telesynth_tui.inference.base import SamplingParams
from telesynth_tui.inference.remote import RemoteError, RemoteModel

MESSAGES = [{"role": "user", "content": "Which counter counts RRC setup attempts?"}]
SCHEMA = {
    "type": "object",
    "properties": {"counter": {"enum": ["pmRrcConnEstabAtt", "pmPrbUsedDl"]}},
    "required": ["counter"],
}


class _StubServer(BaseHTTPRequestHandler):
    """A stub of a documented server: `models` is the /v1/models answer, `tokenize` the
    /tokenize answer (None: 404), `reply` builds the streamed chat events of a request."""

    models: ClassVar[dict[str, Any]] = {}
    tokenize: ClassVar[dict[str, Any] | None] = None
    requests: ClassVar[list[dict[str, Any]]] = []
    reply: ClassVar[Any] = None

    def log_message(self, *args: object) -> None:
        return None

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json(200, self.models)
        else:
            self._json(404, {"error": {"message": "not found", "type": "not_found_error"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        if self.path == "/tokenize" and self.tokenize is not None and "prompt" in body:
            self._json(200, self.tokenize)
            return
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": "not found", "type": "not_found_error"}})
            return
        type(self).requests.append(body)
        status, events = type(self).reply(body)
        if status != 200:
            self._json(status, events)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for event in events:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True


def _chunks(pieces: list[str], finish: str, usage: dict[str, Any] | None) -> list[dict]:
    events: list[dict[str, Any]] = [
        {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": p}}]}
        for p in pieces
    ]
    events.append(
        {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
        }
    )
    if usage is not None:
        events.append({"object": "chat.completion.chunk", "choices": [], "usage": usage})
    return events


@pytest.fixture
def stub() -> Iterator[tuple[type[_StubServer], str]]:
    handler = type("Stub", (_StubServer,), {"requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


# --- vLLM --------------------------------------------------------------------------------------

VLLM_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "object": "model",
            "created": 1700000000,
            "owned_by": "vllm",
            "root": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "parent": None,
            "max_model_len": 8192,
        }
    ],
}


def _vllm(body: dict[str, Any]) -> tuple[int, Any]:
    if body["model"] != "HuggingFaceTB/SmolLM2-135M-Instruct":
        message = f"The model `{body['model']}` does not exist."
        return 404, {"error": {"message": message, "type": "NotFoundError", "code": 404}}
    format_ = body.get("response_format") or {}
    if format_.get("type") == "json_schema":
        pieces = ['{"counter": ', '"pmRrcConnEstabAtt"}']
    else:
        pieces = ["pm", "Rrc", "Conn", "EstabAtt"]
    usage = None
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {
            "prompt_tokens": 23,
            "completion_tokens": len(pieces),
            "total_tokens": 23 + len(pieces),
            "prompt_tokens_details": {"cached_tokens": 16},
        }
    return 200, _chunks(pieces, "stop", usage)


def test_vllm_shapes(stub: tuple[type[_StubServer], str]) -> None:
    server, url = stub
    server.models = VLLM_MODELS
    server.tokenize = {"count": 3, "max_model_len": 8192, "tokens": [11, 12, 13]}
    server.reply = staticmethod(_vllm)
    model = RemoteModel("v", url, "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert (model.info.kind, model.info.tokenizer, model.n_ctx) == ("vllm", "vllm", 8192)
    assert model.tokenize("RRC setup") == [11, 12, 13]
    done = model.complete(MESSAGES, SamplingParams(max_tokens=16, json_schema=SCHEMA))
    assert json.loads(done.text) == {"counter": "pmRrcConnEstabAtt"}
    sent = server.requests[-1]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
    assert sent["stream_options"] == {"include_usage": True} and sent["stream"] is True
    m = done.metrics
    assert (m.prompt_tokens, m.output_tokens, m.stop_reason) == (23, 2, "eos")
    assert m.extra["tokens_from"] == "server" and m.extra["cached_prompt_tokens"] == 16
    assert m.extra["json_mode"] == "json_schema" and m.extra["schema_valid"] is True
    assert "server_timings" not in m.extra and m.decode_tok_s is not None
    with pytest.raises(RemoteError, match="no model 'Qwen' there"):
        RemoteModel("v", url, "Qwen")


def test_vllm_errors_in_the_stream_and_dropped_requests(
    stub: tuple[type[_StubServer], str],
) -> None:
    server, url = stub
    server.models = VLLM_MODELS
    model = RemoteModel("v", url, "HuggingFaceTB/SmolLM2-135M-Instruct")
    error = {"error": {"message": "Engine loop has died", "type": "InternalServerError"}}
    server.reply = staticmethod(lambda body: (200, [error]))
    with pytest.raises(RemoteError, match=r"stopped with: Engine loop has died$"):
        model.complete(MESSAGES, SamplingParams(max_tokens=8))
    server.reply = staticmethod(lambda body: (200, _chunks(["pm"], "abort", None)))
    with pytest.raises(RemoteError, match=r"gave up on the answer \(abort\)"):
        model.complete(MESSAGES, SamplingParams(max_tokens=8))


def test_vllm_schema_features_it_cannot_compile_fall_back_to_a_json_object(
    stub: tuple[type[_StubServer], str],
) -> None:
    """vLLM refuses a schema its grammar back end cannot compile with a 400 naming the schema;
    the call steps down to a JSON object and validates the answer."""
    server, url = stub
    server.models = VLLM_MODELS

    def reply(body: dict[str, Any]) -> tuple[int, Any]:
        if body["response_format"]["type"] == "json_schema":
            message = "The provided JSON schema contains features not supported by xgrammar."
            return 400, {"error": {"message": message, "type": "BadRequestError", "code": 400}}
        return 200, _chunks(['{"counter": "pmPrbUsedDl"}'], "stop", None)

    server.reply = staticmethod(reply)
    model = RemoteModel("v", url, "HuggingFaceTB/SmolLM2-135M-Instruct")
    done = model.complete(MESSAGES, SamplingParams(max_tokens=16, json_schema=SCHEMA))
    assert model.schema_mode == "json_object+schema"
    assert done.metrics.extra["schema_valid"] is True
    assert [r["response_format"]["type"] for r in server.requests] == ["json_schema", "json_object"]


# --- Ollama ------------------------------------------------------------------------------------

OLLAMA_MODELS = {
    "object": "list",
    "data": [
        {"id": "smollm2:latest", "object": "model", "created": 1700000000, "owned_by": "library"},
        {"id": "qwen2.5:0.5b", "object": "model", "created": 1700000000, "owned_by": "library"},
    ],
}


def test_ollama_shapes(stub: tuple[type[_StubServer], str]) -> None:
    server, url = stub
    server.models = OLLAMA_MODELS
    server.tokenize = None  # Ollama has no tokenize endpoint

    def reply(body: dict[str, Any]) -> tuple[int, Any]:
        # an Ollama before structured outputs: the json_schema format is ignored
        usage = {"prompt_tokens": 0, "completion_tokens": 3, "total_tokens": 3}
        return 200, _chunks(["It is ", "pmRrcConnEstabAtt", "."], "stop", usage)

    server.reply = staticmethod(reply)
    model = RemoteModel("o", url, "smollm2")  # the name without its tag, as Ollama takes it
    assert model.model_id == "smollm2:latest" and model.info.tokenizer == ""
    assert model.n_ctx == 4096  # nothing said: the registered or default context
    done = model.complete(MESSAGES, SamplingParams(max_tokens=16, json_schema=SCHEMA))
    assert server.requests[-1]["model"] == "smollm2:latest"
    m = done.metrics
    assert done.text == "It is pmRrcConnEstabAtt." and m.output_tokens == 3
    assert m.prompt_tokens > 0  # 0 from a cached prompt is not taken: counted here
    assert m.extra["tokens_from"] == "server output, counted prompt"
    assert m.extra["schema_valid"] is False and m.extra["schema_errors"][0].startswith("not JSON")
    with pytest.raises(RemoteError, match="no model 'llama3' there"):
        RemoteModel("o", url, "llama3")
