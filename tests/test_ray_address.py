"""A Ray head that does not answer, or an address that is not one, is refused in one line before
a run is created (Ray itself would wait for minutes)."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import run_cli
from .servers import free_port


def test_a_ray_head_that_does_not_answer_is_refused_before_the_run(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    run_cli("init", "--empty", project=proj, check=True)
    port = free_port()
    for address, message in (
        (f"127.0.0.1:{port}", f"--ray 127.0.0.1:{port}: no Ray head answers there"),
        ("nonsense", "use local, auto, HOST:PORT or ray://HOST:PORT"),
    ):
        result = run_cli(
            "generate",
            "--n",
            "2",
            "--generator",
            "tiny-telesynth",
            "--ray",
            address,
            project=proj,
            timeout=60,
        )
        assert result.returncode == 2 and message in result.stderr
        assert result.stderr.count("\n") == 1
    workers = run_cli("generate", "--workers", "2", project=proj)
    assert workers.returncode == 2 and "--workers needs --ray" in workers.stderr
    runs = run_cli("runs", "--json", project=proj, check=True)
    assert json.loads(runs.stdout) == []
