"""Shared fixtures. Every test runs with the network blocked (here and in subprocesses)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from telesynth_tui.config import REPO_ROOT
from telesynth_tui.graph.importer import import_paths
from telesynth_tui.project import Project

OFFLINE_DIR = Path(__file__).parent / "offline"
BUNDLED_KG = REPO_ROOT / "kg"
MODELS = REPO_ROOT / "models"
SHIPPED_GGUF = MODELS / "tiny-telesynth-q8_0.gguf"
ENCODER_DIR = MODELS / "build" / "encoder"


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    original = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        if self.family == getattr(socket, "AF_UNIX", None) or _loopback(self, address):
            return original(self, address)
        raise RuntimeError(f"network access attempted in a test: {address!r}")

    socket.socket.connect = connect  # type: ignore[method-assign]
    yield
    socket.socket.connect = original  # type: ignore[method-assign]


def _loopback(sock: socket.socket, address: object) -> bool:
    """127.0.0.1 only: the model servers the tests start themselves listen there."""
    return sock.family == socket.AF_INET and isinstance(address, tuple) and address[0] == LOOPBACK


LOOPBACK = "127.0.0.1"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "proj")


@pytest.fixture(scope="session")
def bundled_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with the bundled knowledge imported once per test session."""
    path = tmp_path_factory.mktemp("bundled") / "proj"
    proj = Project.create(path)
    conn = proj.connect()
    report = import_paths(conn, [BUNDLED_KG], proj.settings.ingest)
    assert not [i for i in report.issues if i.severity == "error"], report.issues[:5]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def copy_project(template: Path, tmp_path: Path, name: str) -> Project:
    """A private copy of a project folder, opened."""
    target = tmp_path / name
    shutil.copytree(template, target)
    return Project.open(target)


@pytest.fixture
def bundled(bundled_template: Path, tmp_path: Path) -> Project:
    """A private copy of the bundled-knowledge project."""
    return copy_project(bundled_template, tmp_path, "bundled")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local Ray instance of 2 CPUs for a test module (skipped without Ray)."""
    ray = pytest.importorskip("ray")
    from telesynth_tui.pipeline.sharded import init_local_ray

    init_local_ray(num_cpus=2)
    yield ray
    ray.shutdown()


def extracted(markdown: str, budget: int = 300) -> dict[tuple[str, str, str], str]:
    """The structure-aware extractor on a Markdown document (titled by its first heading):
    (subject, predicate, object) -> the rule that stated it."""
    from telesynth_tui.graph.chunking import chunk_markdown, markdown_title
    from telesynth_tui.graph.extraction import extract

    title = markdown_title(markdown, "Notes")
    out = extract(chunk_markdown(markdown, title, budget), title)
    return {(t.subject.name, t.predicate, t.object.name): t.rule for t in out.triples}


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: no TELESYNTH_ settings, the network blocked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELESYNTH_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(OFFLINE_DIR), env.get("PYTHONPATH")]))
    return env


def run_cli(
    *args: str, project: Path | None = None, check: bool = False, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real `telesynth` entry point in a subprocess with the network blocked."""
    cmd = [sys.executable, "-m", "telesynth_tui.cli"]
    if project is not None:
        cmd += ["--project", str(project)]
    result = subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=cli_env(), timeout=timeout
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result
