"""Plans drafted on worker threads and finished in order, one thread at a time."""

from __future__ import annotations

import random
import threading
import time

import pytest

from telesynth_tui.pipeline.parallel import Turn, run_in_parallel


class Recorder:
    """Drafts that wait for a 'model' with the turn released, and checks the turn is exclusive."""

    def __init__(self, turn: Turn, fail_at: int | None = None) -> None:
        self.turn = turn
        self.inside = 0
        self.most_inside = 0
        self.finished: list[int] = []
        self.drafted: list[int] = []
        self.fail_at = fail_at
        self.lock = threading.Lock()
        self.rng = random.Random(0)

    def enter(self) -> None:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1

    def draft(self, plan: int) -> str | None:
        self.enter()
        if plan == self.fail_at:
            self.leave()
            raise ValueError(f"plan {plan} failed")
        self.leave()
        with self.turn.released():  # the model call
            time.sleep(self.rng.random() * 0.01)
        self.enter()
        with self.lock:
            self.drafted.append(plan)
        self.leave()
        return f"draft {plan}"

    def finish(self, plan: int, draft: str) -> bool:
        self.enter()
        assert draft == f"draft {plan}"
        self.finished.append(plan)
        self.leave()
        return True


@pytest.mark.parametrize("n", [1, 3, 8])
def test_plans_finish_in_order_with_one_thread_in_the_pipeline(n: int) -> None:
    turn = Turn()
    rec = Recorder(turn)
    done = run_in_parallel(list(range(40)), n, turn, rec.draft, rec.finish, lambda: False)
    assert done == 40
    assert rec.finished == list(range(40))
    assert rec.most_inside == 1
    assert sorted(rec.drafted) == list(range(40))


def test_a_cancel_finishes_a_prefix_of_the_plans() -> None:
    turn = Turn()
    rec = Recorder(turn)
    stop = threading.Event()

    def finish(plan: int, draft: str) -> bool:
        if plan == 9:
            stop.set()
        return rec.finish(plan, draft)

    done = run_in_parallel(list(range(40)), 4, turn, rec.draft, finish, stop.is_set)
    assert 10 <= done < 40
    assert rec.finished == list(range(done))


def test_a_draft_cancelled_mid_plan_is_not_finished() -> None:
    turn = Turn()
    rec = Recorder(turn)

    def draft(plan: int) -> str | None:
        return None if plan == 5 else rec.draft(plan)

    done = run_in_parallel(list(range(20)), 3, turn, draft, rec.finish, lambda: False)
    assert done == 5 and rec.finished == [0, 1, 2, 3, 4]


def test_a_worker_error_is_raised_when_its_plan_comes() -> None:
    turn = Turn()
    rec = Recorder(turn, fail_at=6)
    with pytest.raises(ValueError, match="plan 6 failed"):
        run_in_parallel(list(range(20)), 3, turn, rec.draft, rec.finish, lambda: False)
    assert rec.finished == [0, 1, 2, 3, 4, 5]


def test_finish_can_stop_the_run() -> None:
    turn = Turn()
    rec = Recorder(turn)

    def finish(plan: int, draft: str) -> bool:
        rec.finish(plan, draft)
        return plan < 2

    assert run_in_parallel(list(range(20)), 4, turn, rec.draft, finish, lambda: False) == 3
    assert rec.finished == [0, 1, 2]
