"""A cancel reaches the call a Ray worker is running: the call stops within a token (not at the
end of the call) and the worker takes the next call at once. On a local Ray cluster started by
the test (`ray.init(num_cpus=2)`) with the embedded SmolLM2 on the worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from telesynth_tui.inference.base import SamplingParams
from telesynth_tui.project import Project

pytestmark = [pytest.mark.slow, pytest.mark.real_models]

MESSAGES = [{"role": "user", "content": "Explain how PRACH preambles are detected, in detail."}]


def test_a_cancel_stops_the_running_call_on_the_worker_within_a_token(
    ray_cluster: Any, bundled_template: Path
) -> None:
    from telesynth_tui.pipeline.sharded import ModelHost, ModelSpec, WorkerPool

    project = Project.open(bundled_template)
    entry = project.registry().get("smollm2-135m-instruct")
    pool = WorkerPool("auto", 1, ModelHost, ModelSpec.of(entry, 1, 2048, 256))
    try:
        long = SamplingParams(max_tokens=400, stop_at_eos=False)
        pending = pool.submit("complete", MESSAGES, long)
        started = time.monotonic()
        assert pool.result(pending, lambda: time.monotonic() - started > 1.0) is None
        text, metrics, error = ray_cluster.get(pending.ref, timeout=60)
        # the call came back cancelled, part way: a cancel between calls would have let it run
        # to its 400 tokens
        assert not error and metrics.stop_reason == "cancelled"
        assert 0 < metrics.output_tokens < 400 and text
        # the worker is free again: the next call runs to its end
        short = pool.submit("complete", MESSAGES, SamplingParams(max_tokens=4, stop_at_eos=False))
        _, after, _ = pool.result(short, lambda: False)
        assert after.stop_reason == "length" and after.output_tokens == 4
        # a cancel that arrives before its call starts stops that call at once
        queued = [pool.submit("complete", MESSAGES, long) for _ in range(2)]
        assert pool.result(queued[1], lambda: True) is None  # queued behind queued[0]
        pool.stop(queued[0])
        first = ray_cluster.get(queued[0].ref, timeout=60)[1]
        second = ray_cluster.get(queued[1].ref, timeout=60)[1]
        assert first.stop_reason == second.stop_reason == "cancelled"
        assert second.output_tokens <= 1
    finally:
        pool.close()
