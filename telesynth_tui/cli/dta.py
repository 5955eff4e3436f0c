"""Data Trajectory Alignment runs (`dta`)."""

from __future__ import annotations

from typing import Annotated

import typer

from telesynth_tui.cli.common import (
    JsonOpt,
    ProgressLine,
    app,
    echo_json,
    open_project,
    parse_mix_option,
    print_summary,
)
from telesynth_tui.errors import TelesynthError


@app.command()
def dta(
    student: Annotated[str | None, typer.Option(help="The registered GGUF student.")] = None,
    teachers: Annotated[
        str, typer.Option(help="Registered GGUF teachers, comma-separated (the solver is added).")
    ] = "",
    n: Annotated[int, typer.Option("--n", help="Number of problems.")] = 20,
    types: Annotated[
        str, typer.Option(help="maths and/or troubleshooting, with weights (maths=0.7,...).")
    ] = "maths=0.7,troubleshooting=0.3",
    rewriter: Annotated[
        str, typer.Option(help="A registered GGUF, 'student' (default) or 'none' (layout only).")
    ] = "student",
    judge: Annotated[
        str | None, typer.Option(help="A registered GGUF reflection judge (step checker always).")
    ] = None,
    probes: Annotated[int, typer.Option(help="Probe problems for the student's style.")] = 3,
    no_solver: Annotated[
        bool, typer.Option("--no-solver", help="Leave the deterministic solver out.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the problems.")] = 0,
    resume: Annotated[int | None, typer.Option(help="Continue an interrupted DTA run.")] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Solve the problems on Ray workers: 'local' (a Ray instance on this machine), "
            "'auto' (the cluster this machine joined) or the head's HOST:PORT.",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="With --ray: workers (default: the cluster's CPUs).", min=1)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Data Trajectory Alignment: teachers solve planned problems, solutions are rewritten into the
    student's style and the best exemplar per problem is kept when answers agree and the judge
    approves; export it with telesynth export RUN."""
    from telesynth_tui.dta.runner import DtaConfig, DtaRun, DtaRunner
    from telesynth_tui.pipeline import store
    from telesynth_tui.runs import start_dta

    if workers is not None and ray is None:
        raise TelesynthError("--workers needs --ray ADDRESS")
    if ray is not None:  # a head that does not answer is refused before a run is created
        from telesynth_tui.pipeline.sharded import check_address

        check_address(ray)
    project = open_project()
    conn = project.connect()
    new = None
    if resume is None:
        if not student:
            raise TelesynthError("dta needs --student NAME")
        new = DtaConfig(
            student=student,
            teachers=[t.strip() for t in teachers.split(",") if t.strip()],
            n=n,
            mix=parse_mix_option(types) or {},
            seed=seed,
            rewriter=None if rewriter == "none" else rewriter,
            judge=judge,
            probes=probes,
            use_solver=not no_solver,
        )
    run_id, config = start_dta(project, conn, new, resume)
    progress = ProgressLine(not as_json)
    with store.writing(conn, run_id):
        pool = None
        runner: DtaRun
        if ray is not None:
            from telesynth_tui.dta.sharded import sharded_dta

            runner, pool = sharded_dta(project, conn, config, ray, workers)
        else:
            runner = DtaRunner(conn, project.dta_models(config))
        if not as_json:
            sharded = f" on {len(pool.actors)} Ray workers" if pool else ""
            typer.echo(
                f"run {run_id}: DTA for {config.student} with teachers "
                f"{', '.join(config.teacher_names())}{sharded}",
                err=True,
            )
        try:
            summary = runner.execute(run_id, progress)
        finally:
            progress.close()
            if pool is not None:
                pool.close()
    if as_json:
        echo_json(summary)
        return
    print_summary(summary)
    profile = summary["profile"]
    marker = profile.get("marker") or "(unmarked)"
    typer.echo(
        f"  student style: {profile.get('words')} words, {profile.get('steps')} steps, "
        f"{profile.get('layout')}, final answer {marker}"
    )
    typer.echo(
        f"  exemplars: {summary['problems_with_exemplar']} problems, none for "
        f"{summary['problems_without_exemplar']}; selected by teacher "
        f"{summary['selected_by_teacher']}; rewrites {summary['rewrites']}"
    )
    typer.echo(f"  export: telesynth export {run_id} --format sft (or rft)")
