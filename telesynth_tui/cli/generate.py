"""Generate QA samples (`generate`), new or resumed."""

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
from telesynth_tui.pipeline.gate import DEFAULT_MIN_QUALITY


@app.command()
def generate(
    n: Annotated[
        int | None,
        typer.Option("--n", help="Question plans (100); with --from-docs: sections (all)."),
    ] = None,
    types: Annotated[
        str | None,
        typer.Option(
            help="Types and weights: troubleshooting,multi_hop,maths,factual,definition "
            "(e.g. 'troubleshooting=0.5,maths=0.5')."
        ),
    ] = None,
    generator: Annotated[
        str | None,
        typer.Option(help="A registered GGUF generator; default: the KG-template realizer."),
    ] = None,
    refiner: Annotated[str | None, typer.Option(help="A registered GGUF refiner.")] = None,
    judge: Annotated[str | None, typer.Option(help="A registered GGUF judge (LLM RAGAS).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the plans and phrasings.")] = 0,
    pairs: Annotated[
        int, typer.Option(help="QA pairs per document section with --from-docs (at most 10).")
    ] = 10,
    from_docs: Annotated[
        bool,
        typer.Option(
            "--from-docs",
            help="Plans from your imported documents (every one that is not bundled knowledge, "
            "or those of --docs), up to --pairs QA per section.",
        ),
    ] = False,
    docs: Annotated[
        str | None,
        typer.Option(
            help="With --from-docs: a file or folder you imported, or document ids '3,7'."
        ),
    ] = None,
    min_quality: Annotated[
        float, typer.Option(help="Drop samples scoring below this.")
    ] = DEFAULT_MIN_QUALITY,
    resume: Annotated[int | None, typer.Option(help="Continue an interrupted run.")] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            help="Plans a GGUF generator decodes together (default: [models] parallel, 1).",
            min=1,
            max=64,
        ),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Run the model calls on Ray workers: 'local' (a Ray instance on this machine), "
            "'auto' (the cluster this machine joined) or the head's HOST:PORT.",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="With --ray: workers (default: the cluster's CPUs).", min=1)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate QA samples: plan, retrieve, generate, refine, filter, score; every step stored."""
    from telesynth_tui.pipeline import store
    from telesynth_tui.pipeline.store import TEMPLATE, RunConfig
    from telesynth_tui.runs import start_generation

    if workers is not None and ray is None:
        raise TelesynthError("--workers needs --ray ADDRESS")
    if ray is not None:  # a head that does not answer is refused before a run is created
        from telesynth_tui.pipeline.sharded import check_address

        check_address(ray)
        if parallel is not None:
            raise TelesynthError("--parallel and --ray: the Ray workers are the parallelism")
    project = open_project()
    conn = project.connect()
    config = None
    if resume is None:
        if not 1 <= pairs <= 10:
            raise TelesynthError("--pairs must be between 1 and 10")
        config = RunConfig(
            n=100 if n is None else n,
            seed=seed,
            generator=generator or TEMPLATE,
            refiner=refiner,
            judge=judge,
            pairs_per_context=pairs,
            min_quality=min_quality,
        )
        if docs is not None and not from_docs:
            raise TelesynthError("--docs needs --from-docs")
        if from_docs:
            from telesynth_tui.pipeline.documents import select_documents

            config.documents = select_documents(conn, docs or "", project.settings.bundled_kg)
            config.n = 1_000_000 if n is None else n
        mix = parse_mix_option(types)
        if mix:
            config.mix = mix
    run_id, stored, planned = start_generation(project, conn, config, resume)
    if config is not None and planned < stored.n:
        typer.echo(
            f"note: the knowledge graph allows {planned} of {config.n} plans "
            "(import more knowledge for more)",
            err=True,
        )
    config = stored
    progress = ProgressLine(not as_json)
    with store.writing(conn, run_id):
        pool = None
        if ray is not None:
            from telesynth_tui.pipeline.sharded import sharded_runner

            runner, pool = sharded_runner(project, conn, config, ray, workers)
        else:
            runner = project.runner(conn, config)
        if not as_json:
            refining = f", refining with {config.refiner}" if config.refiner else ""
            sharded = f" on {len(pool.actors)} Ray workers" if pool else ""
            typer.echo(
                f"run {run_id}: generating with {config.generator}{refining}{sharded}", err=True
            )
        try:
            summary = runner.execute(
                run_id,
                progress,
                parallel=1 if pool else parallel or project.settings.models.parallel,
            )
        finally:
            progress.close()
            if pool is not None:
                pool.close()
    if as_json:
        echo_json(summary)
    else:
        print_summary(summary)
