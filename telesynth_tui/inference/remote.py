"""A text model served over the OpenAI-compatible HTTP API (llama-server, llama-cpp-python's
server, vLLM, Ollama): chat completions streamed as server-sent events.

- JSON output: `response_format` of type `json_schema` first; a server that refuses it gets a
  `json_object` carrying the schema (llama.cpp's servers constrain to it), then a bare
  `json_object`. The mode that worked is remembered. Outside `json_schema` mode the answer is
  validated against the schema afterwards (`schema_valid` / `schema_errors` in the metrics).
- Streaming and cancel: `ctx.cancelled()` is polled after every streamed piece; a cancelled call
  closes its connection, which stops the server's generation.
- Metrics per call: prompt and output tokens from the server's `usage` (asked for with
  `stream_options.include_usage`), or, where a server sends none, counted (output: one token per
  streamed piece; prompt: the server's tokenizer on the plain rendering); TTFT and the decode rate
  from the stream; llama-server's `timings` when it reports them. Energy: not measured (the
  model runs elsewhere).
- Robustness: connect and read timeouts; retries with exponential backoff (and `Retry-After`)
  on connection errors, 429 and 5xx before the first piece arrives; at most `max_in_flight`
  requests per server URL at once in this process.
- Model facts, as far as the server tells them: the context size from llama-server's model
  `meta` or `/props`, vLLM's `max_model_len`, else the registered `context_length` (default 4096);
  the vocabulary size from llama-server's `meta` (0 when unknown); tokens from llama-cpp-python's
  `/extras/tokenize`, llama-server's or vLLM's `/tokenize`, else an estimate of one token per
  four bytes. `render()` cannot apply the server's chat template: it gives the messages as plain
  text, close enough to count tokens for fitting a prompt.

Where the servers differ (llama-server checked against a real one, vLLM and Ollama against
their documented answers):
- llama-server honours `json_schema`, reports `timings` and cached prompt tokens, lists its
  per-slot context and vocabulary in `/v1/models`, and answers any model name with its one
  model (so the id is checked against the list, not by a request).
- vLLM honours `json_schema` but refuses schemas its grammar back end cannot compile ("features
  not supported by xgrammar"): the call steps down to `json_object` and validates. It reports
  `max_model_len`, tokenizes at `/tokenize`, may end a dropped request with the finish reason
  `abort` (an error here), and sends stream errors as `{"error": {"message": ...}}`.
- Ollama lists models with their tag (`name:latest`; a name without a tag means that one), has
  no tokenize endpoint (estimated), sends `prompt_tokens` 0 for a cached prompt (counted here
  instead), and before structured outputs ignored `json_schema`: every schema-bound answer is
  therefore validated whatever the mode (`schema_valid`).

The API key is read from the environment variable named at registration, never stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import CallContext, Message, SamplingParams, TextModel
from telesynth_tui.inference.metrics import ENERGY_NOT_MEASURED, CallMetrics, decode_rate

DEFAULT_N_CTX = 4096
SCHEMA_MODES = ("json_schema", "json_object+schema", "json_object")
RETRY_STATUS = {408, 429, 500, 502, 503, 504}
FAILED_FINISH = ("error", "abort")  # vLLM's finish reasons of a request the engine dropped


class RemoteError(TelesynthError):
    """A model server that cannot be reached, refuses a request or answers nonsense."""


@dataclass
class ServerInfo:
    """What a server said about itself when probed."""

    url: str
    model_id: str
    served: list[str]
    n_ctx: int = 0
    n_vocab: int = 0
    tokenizer: str = ""  # "llama-cpp-python" | "llama-server" | "vllm" | "" (estimate)
    kind: str = "openai"


def normalise_url(url: str) -> str:
    """The API base URL without a trailing slash; it must be http(s)://HOST[:PORT][/path]."""
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise RemoteError(f"--url {url!r}: use http://HOST:PORT/v1")
    return url


def api_key(env_var: str) -> str | None:
    """The API key from the environment variable named (None when no variable is named)."""
    if not env_var:
        return None
    value = os.environ.get(env_var)
    if not value:
        raise RemoteError(f"--api-key-env {env_var}: the environment variable is not set")
    return value


def _root(url: str) -> str:
    """The server root of an API base URL (http://h:p/v1 -> http://h:p)."""
    return re.sub(r"/v1$", "", url)


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "ConnectError" in type(exc).__name__:
        return "connection refused" if "refused" in text.lower() else text
    return text.splitlines()[0][:160]


class _Slots:
    """A bounded number of requests in flight per server URL, shared by every model in this
    process that talks to it."""

    _lock = threading.Lock()
    _by_url: ClassVar[dict[str, threading.BoundedSemaphore]] = {}

    @classmethod
    def get(cls, url: str, size: int) -> threading.BoundedSemaphore:
        with cls._lock:
            if url not in cls._by_url:
                cls._by_url[url] = threading.BoundedSemaphore(max(1, size))
            return cls._by_url[url]


@dataclass
class RetryPolicy:
    retries: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 10.0
    waits: list[float] = field(default_factory=list)  # what was waited, for tests and metrics

    def wait(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff_s * 2**attempt * (1 + random.random() * 0.25)
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, float(retry_after))
        delay = min(delay, self.max_wait_s)
        self.waits.append(delay)
        time.sleep(delay)


class RemoteModel(TextModel):
    """A chat model behind an OpenAI-compatible server."""

    local: ClassVar[bool] = False
    supports_schema: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        url: str,
        model_id: str = "",
        api_key_env: str = "",
        n_ctx: int = 0,
        max_in_flight: int = 4,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        check: bool = True,
    ) -> None:
        self.name = name
        self.url = normalise_url(url)
        self.api_key_env = api_key_env
        self.retry = retry or RetryPolicy()
        headers = {"Accept": "application/json"}
        key = api_key(api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max(1, max_in_flight) + 2),
            trust_env=False,  # never a proxy from the environment: the URL is the server
        )
        self._slots = _Slots.get(self.url, max_in_flight)
        self.max_in_flight = max_in_flight
        self.schema_mode = SCHEMA_MODES[0]
        self.info = ServerInfo(self.url, model_id, [model_id] if model_id else [])
        self._n_ctx_setting = n_ctx
        if check:
            self.info = probe(self._client, self.url, model_id)
        self.model_id = self.info.model_id

    # --- model facts ----------------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        return self._n_ctx_setting or self.info.n_ctx or DEFAULT_N_CTX

    @property
    def n_vocab(self) -> int:
        return self.info.n_vocab

    def render(self, messages: Sequence[Message]) -> str:
        """The messages as plain text (the server applies its own chat template)."""
        return "".join(f"<{m['role']}>\n{m['content']}\n" for m in messages) + "<assistant>\n"

    def tokenize(self, text: str) -> list[int]:
        kind = self.info.tokenizer
        root = _root(self.url)
        try:
            if kind == "llama-cpp-python":
                data = self._post_json(f"{root}/extras/tokenize", {"input": text})
                return [int(t) for t in data["tokens"]]
            if kind == "llama-server":
                body = {"content": text, "add_special": False, "parse_special": True}
                data = self._post_json(f"{root}/tokenize", body)
                return [int(t) if isinstance(t, int) else int(t["id"]) for t in data["tokens"]]
            if kind == "vllm":
                body = {"model": self.model_id, "prompt": text, "add_special_tokens": False}
                data = self._post_json(f"{root}/tokenize", body)
                return [int(t) for t in data["tokens"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteError(f"{self.url}: unusable tokenize answer ({exc})") from None
        return [0] * max(1, len(text.encode("utf-8")) // 4)  # estimate: 4 bytes a token

    def _post_json(self, url: str, body: dict[str, Any]) -> Any:
        try:
            response = self._client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise RemoteError(f"{url}: cannot reach the model server ({_describe(exc)})") from None
        if response.status_code != 200:
            raise RemoteError(f"{url}: HTTP {response.status_code}: {response.text[:160]}")
        return response.json()

    # --- one call -------------------------------------------------------------------------

    def _request(self, messages: Sequence[Message], params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": [dict(m) for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p if params.temperature > 0 else 1.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.temperature > 0:
            body["top_k"] = params.top_k
        if params.repeat_penalty != 1.0:
            body["repeat_penalty"] = params.repeat_penalty  # llama.cpp's servers
            body["repetition_penalty"] = params.repeat_penalty  # vLLM's
        if "seed" in params.extra:
            body["seed"] = int(params.extra["seed"])
        if not params.stop_at_eos:
            body["ignore_eos"] = True
        schema = params.json_schema
        if schema is not None:
            if self.schema_mode == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": schema, "strict": True},
                }
            elif self.schema_mode == "json_object+schema":
                body["response_format"] = {"type": "json_object", "schema": schema}
            else:
                body["response_format"] = {"type": "json_object"}
        return body

    def _open(
        self, messages: Sequence[Message], params: SamplingParams
    ) -> tuple[httpx.Response, int]:
        """A streaming response with status 200, after retries and schema-mode fallbacks;
        with the number of retries it took."""
        url = f"{self.url}/chat/completions"
        attempt = 0
        while True:
            body = self._request(messages, params)
            request = self._client.build_request("POST", url, json=body)
            try:
                response = self._client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                if attempt >= self.retry.retries:
                    raise RemoteError(f"{url}: timed out ({_describe(exc)})") from None
                self.retry.wait(attempt, None)
                attempt += 1
                continue
            except httpx.HTTPError as exc:
                if attempt >= self.retry.retries:
                    raise RemoteError(
                        f"{self.url}: cannot reach the model server ({_describe(exc)})"
                    ) from None
                self.retry.wait(attempt, None)
                attempt += 1
                continue
            if response.status_code == 200:
                return response, attempt
            detail = response.read().decode("utf-8", errors="replace")[:300]
            response.close()
            status = response.status_code
            # a server without JSON-schema support says so about response_format (llama-cpp-
            # python's server with a 500): step down to the next mode before any retry
            if status in (400, 422, 500) and params.json_schema is not None:
                position = SCHEMA_MODES.index(self.schema_mode)
                if position + 1 < len(SCHEMA_MODES) and _about_format(detail):
                    self.schema_mode = SCHEMA_MODES[position + 1]
                    continue
            if status in RETRY_STATUS and attempt < self.retry.retries:
                self.retry.wait(attempt, response.headers.get("retry-after"))
                attempt += 1
                continue
            raise RemoteError(_status_message(self.url, self.model_id, status, detail))

    def execute(
        self, messages: Sequence[Message], params: SamplingParams, ctx: CallContext
    ) -> Generator[str, None, CallMetrics]:
        metrics = CallMetrics(self.name, "generate")
        with self._slots:
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            response, retries = self._open(messages, params)
            mode = self.schema_mode if params.json_schema is not None else None
            t_first: float | None = None
            t_last: float | None = None
            pieces: list[str] = []
            usage: dict[str, Any] = {}
            timings: dict[str, Any] = {}
            stop = "length"
            finish = ""
            try:
                for event in _events(response, self.url):
                    if event.get("usage"):
                        usage = event["usage"]
                    if event.get("timings"):
                        timings = event["timings"]
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content") or ""
                        if piece:
                            now = time.perf_counter()
                            t_first = t_first if t_first is not None else now
                            t_last = now
                            pieces.append(piece)
                            yield piece
                        finish = choice.get("finish_reason") or finish
                    if ctx.cancelled():
                        stop = "cancelled"
                        break
            finally:
                response.close()
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
        if finish in FAILED_FINISH:
            raise RemoteError(f"{self.url}: the server gave up on the answer ({finish})")
        if stop != "cancelled" and not finish:
            raise RemoteError(
                f"{self.url}: the server ended the answer without a finish reason (cut off; "
                "llama-cpp-python's server drops a request when another arrives unless it runs "
                "with --interrupt_requests False)"
            )
        if stop != "cancelled":
            stop = "length" if finish == "length" else "eos"
        text = "".join(pieces)
        counted = "server" if usage.get("completion_tokens") is not None else "counted"
        metrics.output_tokens = int(usage.get("completion_tokens") or len(pieces))
        if usage.get("prompt_tokens"):
            metrics.prompt_tokens = int(usage["prompt_tokens"])
        else:  # none sent, or Ollama's 0 for a prompt it had cached
            metrics.prompt_tokens = len(self.tokenize(self.render(messages)))
            counted = "server output, counted prompt" if counted == "server" else counted
        metrics.ttft_s = (t_first - t0) if t_first is not None else None
        metrics.decode_tok_s = decode_rate(metrics.output_tokens, t_first, t_last)
        if timings.get("prompt_per_second"):
            metrics.prefill_tok_s = float(timings["prompt_per_second"])
        metrics.wall_s = wall
        metrics.cpu_s = cpu
        metrics.energy_j = 0.0
        metrics.energy_source = ENERGY_NOT_MEASURED
        metrics.energy_detail = f"remote model at {self.url}: its energy is not measured"
        metrics.stop_reason = stop
        metrics.extra = {
            "remote_url": self.url,
            "remote_model": self.model_id,
            "tokens_from": counted,
            "retries": retries,
            "json_schema": params.json_schema is not None,
            "json_mode": mode,
        }
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and details.get("cached_tokens") is not None:
            metrics.extra["cached_prompt_tokens"] = int(details["cached_tokens"])
        if timings:
            metrics.extra["server_timings"] = timings
            if timings.get("predicted_per_second"):
                metrics.extra["server_decode_tok_s"] = float(timings["predicted_per_second"])
        # validated in every mode: a server may ignore a response format it does not know
        if params.json_schema is not None and stop == "eos":
            errors = validate(text, params.json_schema)
            metrics.extra["schema_valid"] = not errors
            if errors:
                metrics.extra["schema_errors"] = errors[:5]
        return metrics

    def close(self) -> None:
        self._client.close()


def _about_format(detail: str) -> bool:
    """Whether a 400/422/500 answer complains about the response format or its schema (vLLM:
    "The provided JSON schema contains features not supported by xgrammar", "Failed to
    transform json schema into a grammar"), not something else."""
    lowered = detail.lower()
    words = ("response_format", "json_schema", "json schema", "grammar", "structured output")
    return any(word in lowered for word in words)


def _status_message(url: str, model_id: str, status: int, detail: str) -> str:
    detail = " ".join(detail.split())[:200]
    if status in (401, 403):
        return f"{url}: the server refused the API key (HTTP {status}); check --api-key-env"
    if status == 404 and model_id:
        return f"{url}: HTTP 404 for model {model_id!r} ({detail})"
    return f"{url}: HTTP {status}: {detail}"


def _error_text(event: dict[str, Any]) -> str:
    """The message of an error event: {"error": "..."}, {"error": {"message": ...}} (vLLM,
    Ollama, llama-server) or vLLM's older {"object": "error", "message": ...}."""
    error = event.get("error", event)
    if isinstance(error, dict):
        error = error.get("message") or error
    return " ".join(str(error).split())[:200]


def _events(response: httpx.Response, url: str) -> Iterator[dict[str, Any]]:
    """The JSON events of a server-sent event stream, until `[DONE]` or its end."""
    try:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except json.JSONDecodeError:
                raise RemoteError(f"{url}: the stream sent a line that is not JSON") from None
            if isinstance(event, dict) and ("error" in event or event.get("object") == "error"):
                raise RemoteError(f"{url}: the server stopped with: {_error_text(event)}")
            if isinstance(event, dict):
                yield event
    except httpx.TimeoutException:
        raise RemoteError(f"{url}: the stream stalled (read timeout)") from None
    except httpx.HTTPError as exc:
        raise RemoteError(f"{url}: the stream broke ({_describe(exc)})") from None


# --- probing ------------------------------------------------------------------------------------


def probe(client: httpx.Client, url: str, model_id: str = "") -> ServerInfo:
    """Ask the server which models it serves (and what it says of them); refuse an unreachable
    server, a refused key or a model id it does not serve, in one line."""
    try:
        response = client.get(f"{url}/models", timeout=10.0)
    except httpx.HTTPError as exc:
        raise RemoteError(f"{url}: cannot reach the model server ({_describe(exc)})") from None
    if response.status_code != 200:
        raise RemoteError(_status_message(url, "", response.status_code, response.text))
    try:
        listed = response.json()["data"]
        served = [str(m["id"]) for m in listed]
    except (ValueError, KeyError, TypeError):
        raise RemoteError(f"{url}/models: not an OpenAI-compatible model list") from None
    if not served:
        raise RemoteError(f"{url}: the server lists no model")
    if model_id and model_id not in served and f"{model_id}:latest" in served:
        model_id = f"{model_id}:latest"  # Ollama lists a model under its default tag
    if model_id and model_id not in served:
        raise RemoteError(
            f"{url}: no model {model_id!r} there (served: {', '.join(served[:8])}); use --model"
        )
    chosen = model_id or served[0]
    entry = next(m for m in listed if str(m["id"]) == chosen)
    info = ServerInfo(url, chosen, served)
    meta = entry.get("meta") or {}
    if isinstance(meta, dict):  # llama-server
        info.n_vocab = int(meta.get("n_vocab") or 0)
        info.n_ctx = int(meta.get("n_ctx") or 0)
        info.kind = "llama-server" if meta else info.kind
    if entry.get("max_model_len"):  # vLLM
        info.n_ctx = int(entry["max_model_len"])
        info.kind = "vllm"
    if entry.get("owned_by") == "vllm":
        info.kind = "vllm"
    info.tokenizer = _find_tokenizer(client, url, chosen, info)
    if info.tokenizer == "llama-cpp-python":
        info.kind = "llama-cpp-python"
    if info.kind == "llama-server" and not info.n_ctx:
        info.n_ctx = _llama_server_n_ctx(client, url)
    return info


def _find_tokenizer(client: httpx.Client, url: str, model_id: str, info: ServerInfo) -> str:
    root = _root(url)
    tries: list[tuple[str, str, dict[str, Any]]] = [
        ("llama-cpp-python", f"{root}/extras/tokenize", {"input": "a"}),
        ("llama-server", f"{root}/tokenize", {"content": "a"}),
        ("vllm", f"{root}/tokenize", {"model": model_id, "prompt": "a"}),
    ]
    if info.kind == "vllm":
        tries = tries[2:]
    for kind, endpoint, body in tries:
        try:
            response = client.post(endpoint, json=body, timeout=10.0)
            if response.status_code == 200 and isinstance(response.json().get("tokens"), list):
                return kind
        except (httpx.HTTPError, ValueError, AttributeError):
            continue
    return ""


def _llama_server_n_ctx(client: httpx.Client, url: str) -> int:
    try:
        props = client.get(f"{_root(url)}/props", timeout=10.0).json()
        return int(props.get("default_generation_settings", {}).get("n_ctx") or 0)
    except (httpx.HTTPError, ValueError, AttributeError, TypeError):
        return 0


# --- schema validation (the subset the pipeline's schemas use) -------------------------------


def validate(text: str, schema: dict[str, Any]) -> list[str]:
    """Why `text` is not a JSON value valid under `schema` (empty when it is): type, properties,
    required, enum, items, prefixItems, min/maxItems, min/maxLength, pattern."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"not JSON: {exc.msg} at {exc.pos}"]
    errors: list[str] = []
    _check(value, schema, "$", errors)
    return errors


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def _check(value: Any, schema: dict[str, Any], path: str, errors: list[str]) -> None:
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of the allowed values")
        return
    kind = schema.get("type")
    if isinstance(kind, str) and kind in _TYPES:
        wrong_bool = isinstance(value, bool) and kind in ("integer", "number")
        if not isinstance(value, _TYPES[kind]) or wrong_bool:
            errors.append(f"{path}: expected {kind}")
            return
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing {key}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _check(value[key], sub, f"{path}.{key}", errors)
    elif isinstance(value, list):
        if len(value) < int(schema.get("minItems", 0)):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > int(schema["maxItems"]):
            errors.append(f"{path}: more than {schema['maxItems']} items")
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get("items")
            if isinstance(sub, dict):
                _check(item, sub, f"{path}[{i}]", errors)
    elif isinstance(value, str):
        if len(value) < int(schema.get("minLength", 0)):
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > int(schema["maxLength"]):
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
        pattern = schema.get("pattern")
        if pattern:
            try:
                if re.search(pattern, value) is None:
                    errors.append(f"{path}: does not match its pattern")
            except re.error:
                pass
