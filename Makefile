# The two entry points of a fresh machine (see README.md).
PROJECT ?= telesynth-project
TS := .venv/bin/telesynth --project $(PROJECT)

.PHONY: setup setup-dev demo test lint

setup:
	scripts/setup.sh

setup-dev:
	scripts/setup.sh dev

## Set up, create a project with the bundled knowledge, show its stats and a sample retrieval.
demo: setup
	$(TS) init
	$(TS) kg stats
	$(TS) kg search "RRC setup success rate dropped after a PRACH configuration change"
	$(TS) kg pattern "Alarm -indicates-> RootCause -resolved_by-> Action -adjusts-> Parameter" --limit 5

## Set up with the test tools, check formatting and lint, run the tests.
test: setup-dev
	.venv/bin/ruff format --check telesynth_tui tests bench
	.venv/bin/ruff check telesynth_tui tests bench
	.venv/bin/python -m pytest
