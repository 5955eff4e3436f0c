# The two entry points of a fresh machine (see README.md).
PROJECT ?= telesynth-project
TS := .venv/bin/telesynth --project $(PROJECT)

.PHONY: setup setup-dev models demo lint test test-fast

setup:
	scripts/setup.sh build

setup-dev:
	scripts/setup.sh dev build ray

## Build the embedded models (the ONNX encoder; the tiny GGUF generator is shipped).
models:
	$(TS) models build

## Set up, build the models, create a project with the bundled knowledge, show it, generate
## 100 QA samples on the embedded defaults and export them (SFT and RFT with dataset cards), then
## a short run of the embedded SmolLM2-135M-Instruct writing 6 plans, exported beside it.
demo: setup models
	$(TS) init
	$(TS) kg stats
	$(TS) kg search "RRC setup success rate dropped after a PRACH configuration change"
	$(TS) models list
	$(TS) generate --n 100
	$(TS) export 1 --format sft
	$(TS) export 1 --format rft
	$(TS) generate --n 6 --generator smollm2-135m-instruct
	$(TS) export 2 --format sft
	$(TS) export 2 --format csv

## Format check, lint, layer contracts (import-linter) and the type checker over the core.
lint: setup-dev
	.venv/bin/ruff format --check telesynth_tui tests bench models
	.venv/bin/ruff check telesynth_tui tests bench models
	.venv/bin/lint-imports
	.venv/bin/mypy

## Set up with the test tools, build the models, run the checks and the whole test suite.
test: lint models
	.venv/bin/python -m pytest

## The quick loop: checks and the tests not marked slow or real_models.
test-fast: lint models
	.venv/bin/python -m pytest -m "not slow and not real_models"
