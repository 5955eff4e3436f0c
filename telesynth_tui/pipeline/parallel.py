"""Several plans in flight at once, so that their model calls decode together.

Each plan runs in two parts: `draft` (retrieval and the model calls that write and refine its
candidates) and `finish` (filters, the accept policy and storing the plan). Up to `n` worker
threads draft plans; the calling thread finishes them one at a time in plan order, so a run's
samples, duplicates and rejections are the same as with one plan at a time. Only one thread runs
pipeline code at any moment (the `Turn`); a thread waiting for the model lets the next one run,
and the batch scheduler takes the same turn for every llama.cpp step, so the encoder never runs
while the generator decodes.

A cancel stops workers from starting plans and the model calls within a token; plans drafted but
not finished are not stored and run again on resume. A worker's error is raised in the calling
thread when its plan's turn to finish comes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

P = TypeVar("P")  # a plan
D = TypeVar("D")  # a drafted plan
R = TypeVar("R")  # a finished plan's outcome


class Turn:
    """One thread at a time runs pipeline code. `with turn:` takes it; `turn.released()` lets
    other threads run while this one waits (for the model)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __enter__(self) -> Turn:
        self.lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()

    @contextmanager
    def released(self) -> Iterator[None]:
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()


@dataclass
class PlanSteps(Generic[P, D, R]):
    """How a run processes a plan: `draft` it (None: cancelled), then `finish` it (None:
    cancelled before storing), with `workers` plans drafted at once (1: one after another, in
    the calling thread) under `turn`."""

    draft: Callable[[P], D | None]
    finish: Callable[[P, D], R | None]
    workers: int = 1
    turn: Turn = field(default_factory=lambda: Turn())

    @classmethod
    def single(cls, process: Callable[[P], R | None]) -> PlanSteps[P, Any, R]:
        """Steps of a plan processed in one go, one plan at a time."""
        return PlanSteps(lambda plan: plan, lambda plan, _: process(plan))

    def run(
        self, plans: Sequence[P], on_finished: Callable[[P, R], None], cancel: Callable[[], bool]
    ) -> None:
        """Process `plans` in order until one is cancelled; `on_finished` sees each outcome."""

        def finish(plan: P, draft: D) -> bool:
            outcome = self.finish(plan, draft)
            if outcome is None:
                return False
            on_finished(plan, outcome)
            return True

        if self.workers > 1:
            run_in_parallel(plans, self.workers, self.turn, self.draft, finish, cancel)
            return
        for plan in plans:
            if cancel():
                return
            draft = self.draft(plan)
            if draft is None or not finish(plan, draft):
                return


class _Drafts(Generic[P, D]):
    """Drafts by plan position, handed from the workers to the finishing thread."""

    def __init__(self, plans: Sequence[P], n: int, lookahead: int) -> None:
        self.plans = plans
        self.next_plan = 0  # the next plan a worker takes
        self.finished = 0  # plans finished so far (the next to finish)
        self.lookahead = lookahead
        self.results: dict[int, tuple[D | None, BaseException | None]] = {}
        self.stopped = False
        self.busy = n  # workers still running
        self.cond = threading.Condition()

    def take(self, cancel: Callable[[], bool]) -> int | None:
        with self.cond:
            while not self.stopped and self.next_plan - self.finished >= self.lookahead:
                self.cond.wait(0.5)
            if self.stopped or self.next_plan >= len(self.plans) or cancel():
                return None
            self.next_plan += 1
            return self.next_plan - 1

    def put(self, index: int, draft: D | None, error: BaseException | None) -> None:
        with self.cond:
            self.results[index] = (draft, error)
            self.cond.notify_all()

    def wait_for(self, index: int) -> tuple[D | None, BaseException | None] | None:
        """The draft of plan `index`, or None once no worker will draft it (stopped)."""
        with self.cond:
            while index not in self.results:
                if index >= self.next_plan and (self.stopped or self.busy == 0):
                    return None
                self.cond.wait(0.5)
            return self.results.pop(index)

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


def run_in_parallel(
    plans: Sequence[P],
    n: int,
    turn: Turn,
    draft: Callable[[P], D | None],
    finish: Callable[[P, D], bool],
    cancel: Callable[[], bool],
) -> int:
    """Draft `plans` on `n` worker threads and finish them in order in this thread. `draft`
    returns None when cancelled; `finish` returns False to stop the run. Returns the number of
    plans finished (a prefix of `plans`)."""
    drafts: _Drafts[P, D] = _Drafts(plans, n, lookahead=2 * n)

    def worker() -> None:
        try:
            while (index := drafts.take(cancel)) is not None:
                try:
                    with turn:
                        result = draft(plans[index])
                except BaseException as exc:  # raised in the finishing thread
                    drafts.put(index, None, exc)
                    return
                drafts.put(index, result, None)
                if result is None:
                    return
        finally:
            with drafts.cond:
                drafts.busy -= 1
                drafts.cond.notify_all()

    threads = [threading.Thread(target=worker, name=f"plan-{i}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    try:
        for index, plan in enumerate(plans):
            got = drafts.wait_for(index)
            if got is None:
                break
            result, error = got
            if error is not None:
                raise error
            if result is None:
                break
            with turn:
                keep_going = finish(plan, result)
            with drafts.cond:
                drafts.finished = index + 1
                drafts.cond.notify_all()
            if not keep_going:
                break
        return drafts.finished
    finally:
        drafts.stop()
        for t in threads:
            t.join()
