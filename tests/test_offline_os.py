"""Offline at the operating-system level: the CLI runs init, generate, export and eval in a
network namespace with no network (`unshare -n`), traced by strace: no process (native code
included, such as onnxruntime's telemetry) may even try an AF_INET/AF_INET6 connection.

The Python-level socket block of the other tests cannot see native code, so this test starts the
CLI without it, and without the CI variables that would switch onnxruntime's telemetry off on
their own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SHIPPED_GGUF

CI_VARIABLES = (
    "CI",
    "TF_BUILD",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "CODEBUILD_BUILD_ID",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "APPVEYOR",
    "BITBUCKET_BUILD_NUMBER",
    "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
    "ORT_RUNNING_UNIT_TESTS",
)
INET = re.compile(r"(connect|sendto|sendmsg)\(.*sa_family=AF_INET6?\b")

pytestmark = pytest.mark.slow


def _isolation() -> list[str]:
    """The command prefix that cuts the network and traces connections, or skip."""
    unshare, strace = shutil.which("unshare"), shutil.which("strace")
    if unshare is None or strace is None:
        pytest.skip("unshare and strace are needed to cut and watch the network at the OS level")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n is not permitted here: {probe.stderr.decode().strip()}")
    return [
        unshare,
        "-n",
        strace,
        "-f",
        "-qq",
        "-e",
        "signal=none",
        "-e",
        "trace=connect,sendto,sendmsg",
    ]


def _run(prefix: list[str], log: Path, project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in CI_VARIABLES and not k.startswith(("TELESYNTH_", "ORT_"))
    }
    env.pop("PYTHONPATH", None)  # no Python-level socket block: the OS is the only guard
    cmd = [
        *prefix,
        "-o",
        str(log),
        sys.executable,
        "-m",
        "telesynth_tui.cli",
        "--project",
        str(project),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def _attempts(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if INET.search(line)]


def test_init_generate_export_never_touch_the_network(tmp_path: Path) -> None:
    prefix = _isolation()
    project = tmp_path / "p"
    steps = [
        ("init",),
        ("generate", "--n", "16", "--types", "maths=0.5,definition=0.5"),  # ~30 s: past the
        ("export", "1", "--format", "rft"),  # delay after which onnxruntime reported
    ]
    for number, args in enumerate(steps):
        log = tmp_path / f"trace{number}.txt"
        result = _run(prefix, log, project, *args)
        assert result.returncode == 0, (args, result.stderr[-2000:])
        assert _attempts(log) == [], (args, _attempts(log)[:5])
    assert (project / "exports" / "run1-rft.jsonl").stat().st_size > 0


def _llama_works() -> bool:
    code = (
        "from llama_cpp import Llama\n"
        f"m = Llama({str(SHIPPED_GGUF)!r}, n_ctx=128, verbose=False)\n"
        "m('hello', max_tokens=2)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.mark.real_models
def test_eval_never_touches_the_network(tmp_path: Path) -> None:
    prefix = _isolation()
    if not _llama_works():
        pytest.skip("llama.cpp cannot decode with the shipped GGUF on this machine")
    project = tmp_path / "p"
    for number, args in enumerate(
        [
            ("init",),
            ("generate", "--n", "6", "--types", "maths"),
            ("export", "1", "--format", "rft"),
        ]
    ):
        assert _run(prefix, tmp_path / f"setup{number}.txt", project, *args).returncode == 0
    log = tmp_path / "eval.txt"
    result = _run(
        prefix,
        log,
        project,
        "eval",
        "--student",
        "tiny-telesynth",
        "--set",
        str(project / "exports" / "run1-rft.jsonl"),
        "--limit",
        "3",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _attempts(log) == [], _attempts(log)[:5]
