"""Real model servers on 127.0.0.1 for the tests of the OpenAI-compatible back end:
llama-cpp-python's (`python -m llama_cpp.server`) and llama.cpp's own `llama-server` (when one
is built here)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """`python -m llama_cpp.server` serving one GGUF as `alias`, started and stopped by a test."""

    def __init__(
        self, model: Path, alias: str = "served", n_ctx: int = 512, api_key: str | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.alias = alias
        self.api_key = api_key
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(n_ctx),
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            "--interrupt_requests",
            "False",
        ]
        if api_key:
            cmd += ["--api_key", api_key]
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self._wait()

    def _wait(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        request = urllib.request.Request(f"{self.url}/models")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read() if self.process.stderr else ""
                pytest.fail(f"the model server exited: {err[-800:]}")
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        self.stop()
        pytest.fail("the model server did not answer within 90 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def llama_server_binary() -> Path | None:
    """llama.cpp's own `llama-server`: the file named by TELESYNTH_LLAMA_SERVER, else the one on
    PATH (None: not built here)."""
    named = os.environ.get("TELESYNTH_LLAMA_SERVER")
    if named:
        return Path(named) if Path(named).is_file() else None
    found = shutil.which("llama-server")
    return Path(found) if found else None


class LlamaCppServer(LlamaServer):
    """llama.cpp's `llama-server` serving one GGUF as `alias` on 127.0.0.1 with `slots`
    sequences decoded together, started and stopped by a test."""

    def __init__(
        self,
        binary: Path,
        model: Path,
        alias: str = "served",
        n_ctx: int = 2048,
        slots: int = 2,
        threads: int = 1,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.alias = alias
        self.api_key = None
        cmd = [
            str(binary),
            "--model",
            str(model),
            "--alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ctx-size",
            str(n_ctx),
            "--parallel",
            str(slots),
            "--threads",
            str(threads),
            "--no-webui",
        ]
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self._wait()
