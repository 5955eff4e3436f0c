"""Starting and listing runs: what the command line and the terminal app both do before and
around the pipeline. Check a new run's settings and models, store it with its plans (or check
the run to resume), list the runs and a run's samples."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

from telesynth_tui.errors import TelesynthError
from telesynth_tui.pipeline import store
from telesynth_tui.pipeline.records import RunListing, Sample
from telesynth_tui.pipeline.store import TEMPLATE, RunConfig

if TYPE_CHECKING:
    from telesynth_tui.dta.runner import DtaConfig
    from telesynth_tui.project import Project

SAMPLE_FILTERS = ("all", "accepted", "rejected", "unreviewed", "reviewed")
SAMPLE_ORDERS = tuple(store.ORDERS)


def check_models(project: Project, names: Iterable[str | None]) -> None:
    """Every named model is registered (the error names the first one that is not), and a
    served one answers, before a run is created."""
    registry = project.registry()
    for name in names:
        if name:
            entry = registry.get(name)
            problem = registry.check(entry) if entry.remote else None
            if problem:
                raise TelesynthError(problem)


def check_generation(config: RunConfig) -> None:
    if not math.isfinite(config.min_quality) or not 0 <= config.min_quality <= 1:
        raise TelesynthError(f"--min-quality must be between 0 and 1, not {config.min_quality}")
    if not 1 <= config.pairs_per_context <= 100:
        raise TelesynthError(f"--pairs must be between 1 and 100, not {config.pairs_per_context}")


def start_generation(
    project: Project, conn: sqlite3.Connection, config: RunConfig | None, resume: int | None
) -> tuple[int, RunConfig, int]:
    """A new generation run stored with its plans (settings and models checked first), or the
    run to resume (not a DTA run): its id, its stored configuration and its number of plans."""
    from telesynth_tui.pipeline.runner import create_run

    if resume is not None:
        if store.run_kind(conn, resume) == "dta":
            raise TelesynthError(
                f"run {resume} is a DTA run: resume it with telesynth dta --resume"
            )
        run_id = resume
    else:
        if config is None:
            raise TelesynthError("a new run needs its settings")
        check_generation(config)
        generator = None if config.generator == TEMPLATE else config.generator
        check_models(project, (generator, config.refiner, config.judge))
        run_id = create_run(conn, config)
    stored, planned = store.load_run(conn, run_id)
    return run_id, stored, planned


def start_dta(
    project: Project, conn: sqlite3.Connection, config: DtaConfig | None, resume: int | None
) -> tuple[int, DtaConfig]:
    """A new DTA run stored with its problems (models checked first), or the DTA run to
    resume: its id and configuration."""
    from telesynth_tui.dta.runner import create_dta_run, load_dta_config

    if resume is not None:
        stored = load_dta_config(conn, resume)
        if stored is None:
            raise TelesynthError(f"no DTA run {resume} (see: telesynth runs)")
        return resume, stored
    if config is None:
        raise TelesynthError("a new DTA run needs its settings")
    roles = {config.student, *config.teachers, config.judge, config.rewriter}
    check_models(project, sorted(str(n) for n in roles - {None, "student", "solver"}))
    return create_dta_run(conn, config), config


def list_runs(
    conn: sqlite3.Connection, limit: int | None = None, newest_first: bool = False
) -> list[RunListing]:
    """The runs (all, or the latest `limit`) with their status as users should read it,
    generator, progress and sample counts: what `telesynth runs` and the dashboard show."""
    return store.list_runs(conn, limit, newest_first)


def sample_ids(
    conn: sqlite3.Connection, run_id: int, show: str = "all", order: str = "id"
) -> list[int]:
    """The ids of the run's samples that `show` selects (SAMPLE_FILTERS), in `order`
    (SAMPLE_ORDERS): the list `telesynth samples` prints and the review screen steps through."""
    if show not in SAMPLE_FILTERS:
        raise TelesynthError(f"--show must be one of {', '.join(SAMPLE_FILTERS)}, not {show!r}")
    if order not in SAMPLE_ORDERS:
        raise TelesynthError(f"--order must be one of {', '.join(SAMPLE_ORDERS)}, not {order!r}")
    store.check_run(conn, run_id)
    return store.sample_ids(conn, run_id, show, order)


def list_samples(
    conn: sqlite3.Connection,
    run_id: int,
    show: str = "all",
    order: str = "id",
    limit: int | None = None,
) -> list[Sample]:
    """The first `limit` samples of `sample_ids(conn, run_id, show, order)`."""
    if limit is not None and limit < 1:
        raise TelesynthError(f"--limit must be at least 1, not {limit}")
    return [store.sample(conn, i) for i in sample_ids(conn, run_id, show, order)[:limit]]
