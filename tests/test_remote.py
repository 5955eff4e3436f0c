"""The OpenAI-compatible back end against a real llama-cpp-python server on 127.0.0.1 serving the
shipped tiny GGUF: a streamed generation with its metrics, a schema-constrained JSON output,
cancel, a stopped server, the API key, and `models add --url` from the command line. Retries and
the bound on requests in flight are checked against a small scripted HTTP server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from telesynth_tui.inference.base import CallContext, SamplingParams
from telesynth_tui.inference.remote import RemoteError, RemoteModel, RetryPolicy, validate

from .conftest import SHIPPED_GGUF, run_cli
from .servers import LlamaServer, free_port

pytestmark = pytest.mark.real_models

KEY_ENV = "TS_TEST_SERVER_KEY"
KEY = "test-key-7f3a9"
MESSAGES = [{"role": "user", "content": "What does a low RRC setup success rate indicate?"}]
# free text as the pipeline's schemas bound it: no control characters, quotes or braces
# (llama.cpp's schema grammar otherwise lets raw newlines into strings)
PLAIN = r'^[^"\\{}\[\]<>\x00-\x1f]{1,%d}$'
SCHEMA = {
    "type": "object",
    "properties": {
        "cause": {"enum": ["PRACH collision", "uplink interference", "overload"]},
        "check": {"type": "string", "pattern": PLAIN % 40, "maxLength": 40},
        "steps": {
            "type": "array",
            "items": {"type": "string", "pattern": PLAIN % 20, "maxLength": 20},
            "maxItems": 2,
        },
    },
    "required": ["cause", "check", "steps"],
}


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    srv = LlamaServer(SHIPPED_GGUF, alias="tiny-served", api_key=KEY)
    yield srv
    srv.stop()


@pytest.fixture
def model(server: LlamaServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[RemoteModel]:
    monkeypatch.setenv(KEY_ENV, KEY)
    m = RemoteModel("tiny-remote", server.url, "tiny-served", KEY_ENV, n_ctx=512)
    yield m
    m.close()


def test_loopback_is_the_only_address_tests_may_reach() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(RuntimeError):
        sock.connect(("10.255.255.1", 80))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(RuntimeError):
        sock.connect(("192.0.2.1", 443))


def test_generation_streams_pieces_and_reports_metrics(model: RemoteModel) -> None:
    assert model.info.kind == "llama-cpp-python" and model.local is False
    assert model.n_ctx == 512
    pieces: list[str] = []
    ctx = CallContext(on_token=pieces.append)
    done = model.complete(MESSAGES, SamplingParams(max_tokens=24), ctx)
    assert done.text and "".join(pieces) == done.text and len(pieces) > 1
    m = done.metrics
    assert ctx.metrics == [m]
    assert 0 < m.output_tokens <= 24 and m.prompt_tokens > 5
    assert m.ttft_s is not None and m.ttft_s > 0 and m.wall_s >= m.ttft_s
    assert m.stop_reason in ("eos", "length")
    assert m.energy_source == "not measured" and m.joules_per_token is None
    assert m.extra["remote_model"] == "tiny-served"
    # the server's tokenizer: the same text gives the same tokens the model sees
    assert model.tokenize("RRC setup") == model.tokenize("RRC setup") != []


def test_greedy_generation_is_repeatable(model: RemoteModel) -> None:
    params = SamplingParams(max_tokens=16, temperature=0.0)
    assert model.complete(MESSAGES, params).text == model.complete(MESSAGES, params).text


def test_schema_constrained_json(model: RemoteModel) -> None:
    done = model.complete(MESSAGES, SamplingParams(max_tokens=160, json_schema=SCHEMA))
    assert validate(done.text, SCHEMA) == [], done.text
    data = json.loads(done.text)
    assert data["cause"] in SCHEMA["properties"]["cause"]["enum"]  # type: ignore[index]
    # llama-cpp-python's server has no json_schema response format: the schema goes in
    # json_object, and the answer is validated
    assert model.schema_mode == "json_object+schema"
    assert done.metrics.extra["json_mode"] == "json_object+schema"
    assert done.metrics.extra["schema_valid"] is True


def test_cancel_stops_within_a_token(model: RemoteModel) -> None:
    pieces: list[str] = []
    ctx = CallContext(cancel=lambda: len(pieces) >= 2, on_token=pieces.append)
    params = SamplingParams(max_tokens=200, stop_at_eos=False)
    done = model.complete(MESSAGES, params, ctx)
    assert done.cancelled and len(pieces) == 2


def test_wrong_key_and_wrong_model_are_one_line_errors(
    server: LlamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "not-the-key")
    with pytest.raises(RemoteError, match="refused the API key") as info:
        RemoteModel("x", server.url, api_key_env=KEY_ENV)
    assert "\n" not in str(info.value)
    monkeypatch.setenv(KEY_ENV, KEY)
    with pytest.raises(RemoteError, match="no model 'nope' there \\(served: tiny-served\\)"):
        RemoteModel("x", server.url, "nope", KEY_ENV)
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(RemoteError, match="environment variable is not set"):
        RemoteModel("x", server.url, api_key_env=KEY_ENV)


def test_a_stopped_server_is_refused_in_one_line() -> None:
    srv = LlamaServer(SHIPPED_GGUF, alias="short-lived")
    model = RemoteModel("gone", srv.url, retry=RetryPolicy(retries=2, backoff_s=0.05))
    assert model.complete(MESSAGES, SamplingParams(max_tokens=4)).text is not None
    srv.stop()
    with pytest.raises(RemoteError, match="cannot reach the model server") as info:
        model.complete(MESSAGES, SamplingParams(max_tokens=4))
    assert "\n" not in str(info.value) and len(model.retry.waits) == 2
    with pytest.raises(RemoteError, match="connection refused"):
        RemoteModel("gone", srv.url)


def test_models_add_url_from_the_command_line(
    server: LlamaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = tmp_path / "p"
    run_cli("init", "--empty", project=proj, check=True)
    monkeypatch.setenv(KEY_ENV, KEY)  # run_cli passes the environment on
    added = run_cli(
        "models",
        "add",
        "--url",
        server.url,
        "--name",
        "srv",
        "--role",
        "generator,judge",
        "--api-key-env",
        KEY_ENV,
        "--n-ctx",
        "512",
        project=proj,
    )
    assert added.returncode == 0, added.stderr
    assert "registered srv: tiny-served at" in added.stdout
    manifest = (proj / "models.toml").read_text()
    assert 'format = "openai"' in manifest and f'api_key_env = "{KEY_ENV}"' in manifest
    assert KEY not in manifest and not any(
        KEY in p.read_text(errors="ignore") for p in proj.iterdir() if p.is_file()
    )
    listed = run_cli("models", "list", "--json", project=proj, check=True)
    entry = next(e for e in json.loads(listed.stdout) if e["name"] == "srv")
    assert entry["url"] == server.url and entry["model_id"] == "tiny-served"
    assert run_cli("models", "verify", project=proj).stdout.count("ok   srv") == 1
    port = free_port()
    refused = run_cli(
        "models",
        "add",
        "--url",
        f"http://127.0.0.1:{port}/v1",
        "--name",
        "x",
        "--role",
        "generator",
        project=proj,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0
    assert "cannot reach the model server (connection refused)" in refused.stderr
    wrong = run_cli(
        "models",
        "add",
        "--url",
        server.url,
        "--name",
        "y",
        "--role",
        "generator",
        "--api-key-env",
        KEY_ENV,
        "--model",
        "nope",
        project=proj,
    )
    assert wrong.returncode == 2 and "no model 'nope' there" in wrong.stderr
    bad_role = run_cli(
        "models", "add", "--url", server.url, "--name", "z", "--role", "encoder", project=proj
    )
    assert bad_role.returncode == 2 and "for a served model" in bad_role.stderr


# two multiple-choice items in TeleQnA's layout
TELEQNA = {
    "question 1": {
        "question": "Which channel carries the random access preamble?",
        "option 1": "PRACH",
        "option 2": "PDSCH",
        "option 3": "PBCH",
        "answer": "option 1: PRACH",
        "category": "Lexicon",
    },
    "question 2": {
        "question": "Which counter rises when RRC setup attempts fail?",
        "option 1": "pmRrcConnEstabFail",
        "option 2": "pmPrbUsedDl",
        "answer": "option 1: pmRrcConnEstabFail",
        "category": "Lexicon",
    },
}


def test_eval_and_a_stopped_server_from_the_command_line(tmp_path: Path) -> None:
    """eval runs on a served student; once its server stops, a run refuses to start in one line
    and creates nothing."""
    items = tmp_path / "teleqna.json"
    items.write_text(json.dumps(TELEQNA))
    srv = LlamaServer(SHIPPED_GGUF, alias="student")
    proj = tmp_path / "p"
    try:
        run_cli("init", "--empty", project=proj, check=True)
        run_cli(
            "models",
            "add",
            "--url",
            srv.url,
            "--name",
            "srv",
            "--role",
            "generator,student",
            "--n-ctx",
            "512",
            project=proj,
            check=True,
        )
        done = run_cli(
            "eval",
            "--student",
            "srv",
            "--set",
            str(items),
            "--format",
            "teleqna",
            "--max-tokens",
            "8",
            "--json",
            project=proj,
        )
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["items"] == 2 and summary["output_tokens"] > 0
        assert summary["energy_source"] == "not measured"
        assert summary["joules_per_output_token"] is None
    finally:
        srv.stop()
    refused = run_cli("generate", "--n", "2", "--generator", "srv", project=proj)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "srv: " in refused.stderr and "cannot reach the model server" in refused.stderr
    runs = run_cli("runs", "--json", project=proj, check=True)
    assert json.loads(runs.stdout) == []


# --- retries and requests in flight, against a scripted server ---------------------------------


class _Script(BaseHTTPRequestHandler):
    """/v1/models lists "m"; chat completions answer 429 and 503 first (once each, per
    `failures`), then stream "a", "b" slowly while counting requests in flight."""

    failures: ClassVar[list[int]] = []
    in_flight = 0
    peak = 0
    cut_off = False  # end the stream without a finish reason
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        body = json.dumps({"data": [{"id": "m"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if not self.path.endswith("/chat/completions"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.failures:
            status = self.failures.pop(0)
            self.send_response(status)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.peak = max(cls.peak, cls.in_flight)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ("a", "b"):
            time.sleep(0.05)
            event = {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        if not type(self).cut_off:
            end = {"choices": [{"delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(end)}\n\n".encode())
        usage = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}
        self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
        with cls.lock:
            cls.in_flight -= 1
        self.close_connection = True


@pytest.fixture
def scripted() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Script)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_retries_with_backoff_on_429_and_503(scripted: str) -> None:
    _Script.failures = [429, 503]
    model = RemoteModel("m", scripted, retry=RetryPolicy(retries=3, backoff_s=0.01))
    done = model.complete(MESSAGES, SamplingParams(max_tokens=8))
    assert done.text == "ab" and done.metrics.extra["retries"] == 2
    assert len(model.retry.waits) == 2 and model.retry.waits[1] > model.retry.waits[0]
    assert done.metrics.output_tokens == 2 and done.metrics.prompt_tokens == 7
    assert done.metrics.extra["tokens_from"] == "server"
    _Script.failures = [503] * 3
    few = RemoteModel("m", scripted, retry=RetryPolicy(retries=1, backoff_s=0.01))
    with pytest.raises(RemoteError, match="HTTP 503"):
        few.complete(MESSAGES, SamplingParams(max_tokens=8))
    _Script.failures = []


def test_an_answer_cut_off_by_the_server_is_an_error(scripted: str) -> None:
    _Script.cut_off = True
    try:
        model = RemoteModel("m", scripted)
        with pytest.raises(RemoteError, match="without a finish reason"):
            model.complete(MESSAGES, SamplingParams(max_tokens=8))
    finally:
        _Script.cut_off = False


def test_requests_in_flight_are_bounded(scripted: str) -> None:
    _Script.peak = 0
    url = scripted.replace("/v1", "/v1/")  # another spelling of the same server shares the bound
    models = [RemoteModel("m", scripted, max_in_flight=2), RemoteModel("m", url, max_in_flight=2)]
    texts: list[str] = []

    def call(i: int) -> None:
        texts.append(models[i % 2].complete(MESSAGES, SamplingParams(max_tokens=8)).text)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert texts == ["ab"] * 8
    assert _Script.peak == 2


def test_validate_names_what_breaks_the_schema() -> None:
    assert validate('{"cause": "overload", "check": "x", "steps": []}', SCHEMA) == []
    errors = validate('{"cause": "rain", "steps": ["' + "x" * 30 + '", "{"]}', SCHEMA)
    assert "$.cause: 'rain' is not one of the allowed values" in errors
    assert "$: missing check" in errors and "$.steps[0]: longer than 20 characters" in errors
    assert "$.steps[1]: does not match its pattern" in errors
    assert validate("{", SCHEMA)[0].startswith("not JSON")
