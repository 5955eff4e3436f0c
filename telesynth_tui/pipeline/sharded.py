"""A generation run sharded over Ray workers, with this process the only writer of the project.

Each Ray worker is an actor holding the run's writer (and refiner) model: a GGUF loaded on that
machine, or a client of a model server. This process (the driver) retrieves each plan's context,
hands the plan to a worker a few plans ahead of the one it stores, and finishes the plans in
plan order exactly as a local run does: filters, the accept gate, scores and one transaction per
plan. The workers only run the model calls, so a sharded run at temperature 0 stores the same
samples as a local one.

A plan is stored under its key once: a plan already marked done is never written again. A
worker that dies mid-plan is restarted by Ray and its plans are run again (Ray retries the
actor's tasks; after that the plan goes to another worker); `generate --resume RUN` continues an
interrupted sharded run like any other.

Nothing here imports Ray at module level: a run without `--ray` never loads it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from telesynth_tui.errors import TelesynthError
from telesynth_tui.inference.base import CallContext, Message, SamplingParams, TextModel
from telesynth_tui.inference.metrics import CallMetrics
from telesynth_tui.pipeline import store
from telesynth_tui.pipeline.generate_llm import DOCUMENT, LlmQA
from telesynth_tui.pipeline.realize import Candidate
from telesynth_tui.pipeline.runner import (
    TEMPLATE,
    PlanDraft,
    Progress,
    RunConfig,
    Runner,
    plan_seed,
)
from telesynth_tui.pipeline.sources import QARequest

if TYPE_CHECKING:
    from telesynth_tui.inference.registry import ModelEntry

# Ray tries these before a local cluster starts: no usage statistics, no dashboard
RAY_OFFLINE_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_IMPORT_WARNING": "1"}
ACTOR_RESTARTS = 3  # a killed worker is restarted this often, its tasks retried as often
RESUBMITS = 3  # then a plan whose worker is gone goes to another worker this often
SERVED_WORKERS = 4  # workers by default for a served model (requests in flight to its server)
CONTROL = "control"  # a worker's concurrency group of cancels, beside its one running call


class ShardError(TelesynthError):
    """A Ray cluster that cannot be reached or a worker that cannot load its model."""


@dataclass
class ModelSpec:
    """What a worker needs to load a text model on its own machine."""

    name: str
    format: str  # gguf | openai
    path: str = ""
    url: str = ""
    model_id: str = ""
    api_key_env: str = ""
    context_length: int = 0
    threads: int | None = None
    n_ctx: int = 2048
    n_batch: int = 256

    @classmethod
    def of(cls, entry: ModelEntry, threads: int | None, n_ctx: int, n_batch: int) -> ModelSpec:
        return cls(
            entry.name,
            entry.format,
            str(entry.path),
            entry.url,
            entry.model_id,
            entry.api_key_env,
            entry.context_length,
            threads,
            n_ctx,
            n_batch,
        )

    def load(self) -> TextModel:
        """The model, loaded in this process."""
        if self.format == "openai":
            from telesynth_tui.inference.remote import RemoteModel

            return RemoteModel(
                self.name, self.url, self.model_id, self.api_key_env, self.context_length
            )
        if self.format != "gguf":
            raise ShardError(f"model {self.name!r} is not a GGUF or a served model")
        path = Path(self.path)
        if not path.is_file():
            raise ShardError(f"{socket.gethostname()}: {path}: no such file (model {self.name})")
        from telesynth_tui.inference.generator import LlamaGenerator

        return LlamaGenerator(path, self.name, self.threads, self.n_ctx, self.n_batch)


class Running:
    """The calls a worker is running, by Ray task id, each with a cancel flag its model polls
    between tokens. The worker's `cancel(task)` runs in the actor's control thread beside the
    call (see `WorkerPool`), so the driver's cancel stops the running call within a token."""

    def __init__(self) -> None:
        self.flags: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def call(self) -> Iterator[Callable[[], bool]]:
        """For the block, the cancel flag of the Ray task being run."""
        import ray

        task = ray.get_runtime_context().get_task_id() or ""
        with self.lock:
            flag = self.flags.setdefault(task, threading.Event())
        try:
            yield flag.is_set
        finally:
            with self.lock:
                self.flags.pop(task, None)

    def cancel(self, task: str) -> None:
        """Stop the call of `task` (set before it starts, it stops at once)."""
        with self.lock:
            self.flags.setdefault(task, threading.Event()).set()


class Drafter:
    """The work a Ray worker does for a plan: the writer's call and the refiner's calls. Ray
    runs it as an actor (`ray.remote(Drafter)`), one plan at a time."""

    def __init__(
        self, writer: ModelSpec, refiner: ModelSpec | None, max_tokens: int, seed: int
    ) -> None:
        self.where = f"{socket.gethostname()}:{os.getpid()}"
        self.running = Running()
        self.llm = LlmQA(writer.load(), max_tokens, seed)
        self.refiner: LlmQA | None = None
        if refiner is not None:
            same = refiner.name == writer.name
            self.refiner = self.llm if same else LlmQA(refiner.load(), max_tokens)

    def facts(self) -> dict[str, Any]:
        """What the driver needs to know of the models: names and budgets."""
        return {
            "name": self.llm.name,
            "context_budget": self.llm.context_budget,
            "max_tokens": self.llm.max_tokens,
            "where": self.where,
            "refiner": self.refiner.name if self.refiner else None,
        }

    def cancel(self, task: str) -> None:
        """Stop the running call of Ray task `task` within a token."""
        self.running.cancel(task)

    def draft(self, request: QARequest) -> dict[str, Any]:
        """The writer's candidates and the refiner's result for each of them, with the metrics
        of every call."""
        with self.running.call() as cancelled:
            return self._draft(request, cancelled)

    def _draft(self, request: QARequest, cancelled: Callable[[], bool]) -> dict[str, Any]:
        ctx = CallContext(cancel=cancelled)
        found = self.llm.write(request, ctx)
        refined: list[tuple[Candidate | str, list[CallMetrics]]] = []
        if self.refiner is not None:
            for item in found:
                if isinstance(item, Candidate):
                    refine_ctx = CallContext(cancel=cancelled)
                    result = self.refiner.refine(
                        item, request.context, request.plan_type, request.payload, refine_ctx
                    )
                    refined.append((result, self._mark(refine_ctx.metrics)))
        return {
            "found": found,
            "metrics": self._mark(ctx.metrics),
            "refined": refined,
            "where": self.where,
        }

    def _mark(self, metrics: list[CallMetrics]) -> list[CallMetrics]:
        for m in metrics:
            m.extra["ray_worker"] = self.where
        return metrics


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """Refuse a Ray head that does not answer, in one line and at once (Ray itself waits for
    minutes): HOST:PORT or ray://HOST:PORT must accept a connection; 'local' and 'auto' pass."""
    if address in ("local", "auto"):
        return
    match = re.fullmatch(r"(?:ray://)?\[?([^\]\s]+?)\]?:(\d{1,5})", address.strip())
    if match is None:
        raise ShardError(f"--ray {address!r}: use local, auto, HOST:PORT or ray://HOST:PORT")
    host, port = match.group(1), int(match.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ShardError(f"--ray {address}: no Ray head answers there ({reason})") from None


class _Said:
    text = ""


@contextlib.contextmanager
def _stderr_kept() -> Iterator[_Said]:
    """What is written to file descriptor 2 meanwhile (native code included), kept aside."""
    said = _Said()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as kept:
        os.dup2(kept.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            kept.seek(0)
            said.text = kept.read().decode("utf-8", errors="replace")


@contextlib.contextmanager
def _dashboard_asks_no_cloud() -> Iterator[None]:
    """While a local Ray instance starts: its head always starts a dashboard process whose usage
    module, even with usage statistics off, asks the cloud metadata addresses
    (169.254.169.254, metadata.google.internal) which cloud it runs on, unless
    `~/ray_bootstrap_config.yaml` exists. That one process gets a home holding an empty such
    file, so it asks nothing."""
    from ray._private import ray_constants, services

    home = Path(tempfile.gettempdir()) / "telesynth-ray-home"
    home.mkdir(exist_ok=True)
    (home / "ray_bootstrap_config.yaml").write_text("{}\n")
    start = services.start_ray_process

    def start_process(command: list[str], process_type: str, *args: Any, **kwargs: Any) -> Any:
        if process_type == ray_constants.PROCESS_TYPE_DASHBOARD:
            kwargs["env_updates"] = {**(kwargs.get("env_updates") or {}), "HOME": str(home)}
        return start(command, process_type, *args, **kwargs)

    services.start_ray_process = start_process
    try:
        yield
    finally:
        services.start_ray_process = start


def ray_options() -> dict[str, Any]:
    """`ray.init` options: no dashboard, worker logs kept out of the terminal, and workers that
    import this checkout of telesynth with Ray's offline settings."""
    from telesynth_tui.config import REPO_ROOT

    os.environ.update(RAY_OFFLINE_ENV)
    return {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "runtime_env": {"env_vars": {"PYTHONPATH": str(REPO_ROOT), **RAY_OFFLINE_ENV}},
    }


def init_local_ray(**options: Any) -> None:
    """Start a Ray instance on this machine, on the loopback, with `ray_options()` (and
    `options`, such as `num_cpus`), its dashboard asking no cloud."""
    import ray

    with _dashboard_asks_no_cloud():
        ray.init(_node_ip_address="127.0.0.1", **ray_options(), **options)


@dataclass
class _Pending:
    ref: Any  # the Ray object ref of the result
    actor: int
    method: str
    args: tuple[Any, ...]
    tries: int = 0


class WorkerPool:
    """Ray actors of one class (`Drafter`, `ModelHost` or a subclass) holding `writer`, each
    built with `args`, and the work handed to them. A worker reserves the writer's llama.cpp
    threads, or no CPU when its models are served (`served`; by default: the writer is)."""

    def __init__(
        self,
        address: str,
        workers: int | None,
        worker: type,
        writer: ModelSpec,
        *args: Any,
        served: bool | None = None,
    ) -> None:
        os.environ.update(RAY_OFFLINE_ENV)
        import ray

        self.ray = ray
        if not ray.is_initialized():
            check_address(address)
            try:
                with _stderr_kept() as said:  # Ray's native client logs its retries there
                    if address == "local":
                        init_local_ray()
                    else:
                        ray.init(address=address, **ray_options())
            except Exception as exc:  # Ray raises bare Exception when its node does not start
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                if "InvalidAuthToken" in said.text:
                    first += (
                        "; the head wants its token: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN"
                    )
                verb = (
                    "start a local Ray instance" if address == "local" else "join the Ray cluster"
                )
                raise ShardError(f"--ray {address}: cannot {verb} ({first})") from None
            sys.stderr.write(said.text)
        # a GGUF worker reserves its llama.cpp threads; a server's client reserves no CPU, and
        # as many run by default as requests may be in flight to the server
        served = writer.format == "openai" if served is None else served
        threads = 0 if served else writer.threads or 1
        if workers is None:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            workers = SERVED_WORKERS if served else max(1, cpus // threads)
        # the work runs one call at a time; `cancel` runs in its own thread beside it
        actor_options: dict[str, Any] = {
            "num_cpus": threads,
            "max_restarts": ACTOR_RESTARTS,
            "max_task_retries": ACTOR_RESTARTS,
            "concurrency_groups": {CONTROL: 1},
        }
        remote: Any = ray.remote(**actor_options)(worker)
        self.actors: list[Any] = [remote.remote(writer, *args) for _ in range(workers)]
        try:
            self.facts = ray.get([a.facts.remote() for a in self.actors])
        except ray.exceptions.RayError as exc:
            self.close()
            raise ShardError(
                f"a Ray worker cannot load {writer.name}: {_first_line(exc)}"
            ) from None
        self.next_actor = 0

    def submit(self, method: str, *args: Any, tries: int = 0) -> _Pending:
        """`method(*args)` on the next worker in turn."""
        actor = self.next_actor % len(self.actors)
        self.next_actor += 1
        ref = getattr(self.actors[actor], method).remote(*args)
        return _Pending(ref, actor, method, args, tries)

    def result(self, pending: _Pending, cancel: Callable[[], bool]) -> Any:
        """The work's result (None when cancelled first); work whose worker is gone for good
        goes to another worker."""
        ray = self.ray
        while True:
            ready, _ = ray.wait([pending.ref], timeout=0.1)
            if not ready:
                if cancel():
                    self.stop(pending)
                    return None
                continue
            try:
                return ray.get(pending.ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
                if pending.tries >= RESUBMITS:
                    raise ShardError(
                        f"work failed on {RESUBMITS + 1} Ray workers: {_first_line(exc)}"
                    ) from None
                pending = self.submit(pending.method, *pending.args, tries=pending.tries + 1)
            except ray.exceptions.RayTaskError as exc:
                raise ShardError(f"a Ray worker failed: {_first_line(exc)}") from None

    def stop(self, pending: _Pending) -> None:
        """Cancel the work: its worker stops the call within a token (or as soon as it starts),
        and the work returns what it had with the stop reason `cancelled`."""
        actor = self.actors[pending.actor]
        with contextlib.suppress(self.ray.exceptions.RayError):
            actor.cancel.options(concurrency_group=CONTROL).remote(pending.ref.task_id().hex())

    def close(self) -> None:
        for actor in getattr(self, "actors", []):
            self.ray.kill(actor, no_restart=True)
        self.actors = []


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    error_lines = [line for line in lines if "Error" in line and ":" in line]
    return (error_lines[-1] if error_lines else lines[0] if lines else repr(exc))[:240]


class ShardedQA(LlmQA):
    """The writer and refiner as the driver sees them: the drafts the workers return, plan by
    plan. `current` is the plan being finished."""

    def __init__(self, pool: WorkerPool, facts: dict[str, Any], name: str) -> None:
        # no model here: the budgets are the workers' (the same model on every worker)
        self.pool = pool
        self.name = name
        self.max_tokens = int(facts["max_tokens"])
        self.context_budget = int(facts["context_budget"])
        self.drafts: dict[int, _Pending] = {}
        self.current: int | None = None
        self.refined: list[tuple[Candidate | str, list[CallMetrics]]] = []
        self.source = self  # the writer whose drafts carry this refiner's results

    def refining(self, name: str) -> ShardedQA:
        """The refiner as the driver sees it: the refinements in the writer's drafts."""
        view = ShardedQA(
            self.pool, {"max_tokens": self.max_tokens, "context_budget": self.context_budget}, name
        )
        view.source = self
        return view

    def write(self, request: QARequest, ctx: CallContext) -> list[Candidate | str]:
        pending = self.drafts.pop(self.current, None) if self.current is not None else None
        if pending is None or pending.args != (request,):  # not handed out ahead: now
            pending = self.pool.submit("draft", request)
        result = self.pool.result(pending, ctx.cancelled)
        if result is None:
            return ["generate: cancelled\n"]
        self.refined = list(result["refined"])
        ctx.metrics.extend(result["metrics"])
        return list(result["found"])

    def refine(
        self,
        candidate: Candidate,
        context: list[dict[str, Any]],
        plan_type: str = "",
        payload: dict[str, Any] | None = None,
        ctx: CallContext | None = None,
    ) -> Candidate | str:
        refined = self.source.refined
        if not refined:
            raise ShardError("a worker returned fewer refinements than candidates")
        result, metrics = refined.pop(0)
        if ctx is not None:
            ctx.metrics.extend(metrics)
        if isinstance(result, Candidate):
            result.cited = candidate.cited  # the driver fills in the citations
        return result


class ShardedRunner(Runner):
    """A runner whose model calls run on Ray workers, `lookahead` plans ahead of the plan being
    stored."""

    def adopt(self, qa: ShardedQA, refiner: ShardedQA | None, lookahead: int) -> None:
        self.llm = qa
        self.refiner = refiner
        self.qa = qa
        self.lookahead = lookahead
        self._order: dict[int, int] = {}
        self._pending: list[sqlite3.Row] = []
        self._handed = 0

    def execute(
        self,
        run_id: int,
        progress: Callable[[Progress], None] = lambda _: None,
        cancel: Callable[[], bool] = lambda: False,
        on_token: Callable[[str], None] | None = None,
        parallel: int = 1,
    ) -> dict[str, Any]:
        """The run with its plans drafted on the workers (`parallel` is the workers' count)."""
        rows = [row for row in store.plans(self.conn, run_id) if row["status"] != "done"]
        self._pending = rows
        self._order = {int(row["id"]): i for i, row in enumerate(rows)}
        self._handed = 0
        return super().execute(run_id, progress, cancel, on_token)

    def draft_plan(
        self,
        config: RunConfig,
        plan: sqlite3.Row,
        cancel: Callable[[], bool] = lambda: False,
        on_token: Callable[[str], None] | None = None,
    ) -> PlanDraft | None:
        position = self._order.get(int(plan["id"]), 0)
        self._hand_out(config, position + self.lookahead)
        self.qa.current = int(plan["id"])
        return super().draft_plan(config, plan, cancel, on_token)

    def _hand_out(self, config: RunConfig, until: int) -> None:
        """Give the workers the plans up to position `until` (their context retrieved here)."""
        while self._handed < min(until, len(self._pending)):
            row = self._pending[self._handed]
            self._handed += 1
            payload = json.loads(row["payload"])
            context = self.llm_context(config, row["type"], payload)
            if row["type"] == DOCUMENT and not context:
                continue  # refused before any model call
            seed = plan_seed(config, int(row["ordinal"]))
            request = QARequest(str(row["type"]), payload, context, seed, config.pairs_per_context)
            self.qa.drafts[int(row["id"])] = self.qa.pool.submit("draft", request)


def sharded_runner(
    project: Any,
    conn: sqlite3.Connection,
    config: RunConfig,
    address: str,
    workers: int | None = None,
) -> tuple[ShardedRunner, WorkerPool]:
    """The run's pipeline in this process and its model calls on Ray workers."""
    if config.generator == TEMPLATE:
        raise ShardError(
            "--ray needs --generator NAME: the KG-template realizer has no model calls to share out"
        )
    registry = project.registry()
    m = project.settings.models
    specs = []
    for name in filter(None, (config.generator, config.refiner)):
        entry = registry.get(name)
        if entry.format not in ("gguf", "openai"):
            raise ShardError(f"model {name!r} is not a GGUF or a served model")
        specs.append(ModelSpec.of(entry, m.llama_threads or 1, m.n_ctx, m.n_batch))
    writer, refiner = specs[0], (specs[1] if len(specs) > 1 else None)
    local = RunConfig(**{**asdict(config), "generator": TEMPLATE, "refiner": None})
    base = project.runner(conn, local)  # retriever, filters and scorer; no model loaded here
    pool = WorkerPool(address, workers, Drafter, writer, refiner, config.max_tokens, config.seed)
    runner = ShardedRunner(
        conn, base.retriever, base.filters, base.policy.scorer, gate=base.policy.gate
    )
    facts = pool.facts[0]
    qa = ShardedQA(pool, facts, facts["name"])
    refining = qa.refining(str(facts["refiner"])) if refiner is not None else None
    runner.adopt(qa, refining, lookahead=2 * len(pool.actors))
    return runner, pool


# --- one text model on Ray workers (eval --ray) -------------------------------------------------


class ModelHost:
    """A Ray worker holding one text model; it answers whole calls."""

    def __init__(self, spec: ModelSpec) -> None:
        self.where = f"{socket.gethostname()}:{os.getpid()}"
        self.running = Running()
        self.model = spec.load()

    def facts(self) -> dict[str, Any]:
        return {
            "name": self.model.name,
            "n_ctx": self.model.n_ctx,
            "n_vocab": self.model.n_vocab,
            "where": self.where,
        }

    def cancel(self, task: str) -> None:
        """Stop the running call of Ray task `task` within a token."""
        self.running.cancel(task)

    def tokenize(self, text: str) -> list[int]:
        return self.model.tokenize(text)

    def render(self, messages: list[Message]) -> str:
        return self.model.render(messages)

    def complete(
        self, messages: list[Message], params: SamplingParams
    ) -> tuple[str, CallMetrics | None, str]:
        """(text, metrics, "") or ("", None, the error's one line)."""
        try:
            with self.running.call() as cancelled:
                done = self.model.complete(messages, params, CallContext(cancel=cancelled))
        except TelesynthError as exc:
            return "", None, str(exc)
        done.metrics.extra["ray_worker"] = self.where
        return done.text, done.metrics, ""


def _call_key(messages: Sequence[Message], params: SamplingParams) -> str:
    return json.dumps([list(messages), asdict(params)], sort_keys=True, default=str)


class ShardedModel(TextModel):
    """A text model whose calls run on Ray workers. `expect()` hands the calls to come to the
    workers at once; each call then waits for its own answer."""

    local: ClassVar[bool] = False

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        facts = pool.facts[0]
        self.name = str(facts["name"])
        self._n_ctx = int(facts["n_ctx"])
        self._n_vocab = int(facts["n_vocab"])
        self.handed: dict[str, list[_Pending]] = {}

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    @property
    def n_vocab(self) -> int:
        return self._n_vocab

    def tokenize(self, text: str) -> list[int]:
        tokens: list[int] = self.pool.result(self.pool.submit("tokenize", text), lambda: False)
        return tokens

    def render(self, messages: Sequence[Message]) -> str:
        return str(self.pool.result(self.pool.submit("render", list(messages)), lambda: False))

    def expect(self, calls: Sequence[tuple[Sequence[Message], SamplingParams]]) -> None:
        for messages, params in calls:
            pending = self.pool.submit("complete", list(messages), params)
            self.handed.setdefault(_call_key(messages, params), []).append(pending)

    def execute(
        self, messages: Sequence[Message], params: SamplingParams, ctx: CallContext
    ) -> Generator[str, None, CallMetrics]:
        waiting = self.handed.get(_call_key(messages, params))
        if waiting:
            pending = waiting.pop(0)
        else:
            pending = self.pool.submit("complete", list(messages), params)
        result = self.pool.result(pending, ctx.cancelled)
        if result is None:
            return CallMetrics(self.name, "generate", stop_reason="cancelled")
        text, metrics, error = result
        if error:
            raise ShardError(error)
        if text:
            yield text
        assert metrics is not None
        return metrics

    def close(self) -> None:
        self.pool.close()


def sharded_model(
    project: Any, name: str, address: str, workers: int | None = None
) -> ShardedModel:
    """A registered text model on Ray workers (the GGUF at the same path on each worker's
    machine, or a client of its server)."""
    entry = project.registry().get(name)
    if not entry.text_model:
        raise ShardError(f"model {name!r} is not a GGUF or a served model")
    m = project.settings.models
    spec = ModelSpec.of(entry, m.llama_threads or 1, m.n_ctx, m.n_batch)
    return ShardedModel(WorkerPool(address, workers, ModelHost, spec))
