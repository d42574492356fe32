# Local use and CI share these targets. Only Python 3.11+ and make must be on the machine: uv comes
# from PyPI.
PYTHON ?= python3
UV_VERSION := 0.13.8
# The real LiveKit server the tests run against: the one place its version is named.
LIVEKIT_VERSION := 1.13.5
# The uv on PATH, else one this repo installs into .tools/ with pip from a venv: never into the
# system Python, which PEP 668 protects on Debian and Ubuntu.
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# Use the Python that is here; never download an interpreter.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: run run-livekit test test-fast test-deps livekit-server lint format typecheck check bench bench-smoke bench-lifecycle bench-events install uv

uv: $(UV)

.tools/bin/uv:
	@$(PYTHON) -m venv .tools || { echo "voice-gateway: '$(PYTHON) -m venv' failed;" \
		"install python3-venv (apt-get install python3-venv) or uv itself"; exit 1; }
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

## The locked dependencies into .venv; a uv.lock that no longer matches pyproject.toml fails here.
## Compiled to bytecode here, as the image's are (Dockerfile: UV_COMPILE_BYTECODE): where Python may
## not write __pycache__ (PYTHONDONTWRITEBYTECODE, a read-only tree) every start compiled the
## dependencies and src/ again, over half of `serve`'s start-up (bench/README.md, measured decisions).
install: uv
	$(UV) sync --locked --compile-bytecode
	$(UV) run --no-sync python -m compileall -q src

## The main job: the gateway on 127.0.0.1:8000 with the LiveKit stand-in on 127.0.0.1:7880.
run: install
	$(UV) run voice-gateway dev

## The real stack: the pinned livekit-server (built once with Go), the gateway in front of it
## and the example agent; prints how to get a session and join it. Ctrl-C stops all three.
run-livekit: install
	@[ -x .tools/bin/livekit-server ] || command -v go >/dev/null 2>&1 || { echo "make" \
		"run-livekit: needs Go >= 1.26 once, to build the real LiveKit server (https://go.dev/dl/)"; \
		exit 2; }
	@bash .ci/build-livekit-server $(LIVEKIT_VERSION)
	$(UV) run python examples/run_livekit.py

## Debian packages the tests use (redis-server); installed only as root without a terminal (CI).
test-deps:
	@bash .ci/test-deps

## The pinned real LiveKit server, built with Go into .tools/bin/ (skipped when already built).
livekit-server:
	@bash .ci/build-livekit-server $(LIVEKIT_VERSION)

## The whole test suite, with branch coverage (the gateway and stand-in child processes
## included); fails under [tool.coverage.report] fail_under in pyproject.toml.
test: install test-deps livekit-server
	$(UV) run pytest --cov --cov-report=term:skip-covered

## The suite without the `slow` tests (real processes, long waits), stopping at the first
## failure; no coverage floor, since part of the suite cannot reach it.
test-fast: install test-deps
	$(UV) run pytest -m "not slow" -x

## Lint and formatting, checked only (what CI runs).
lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .

## Rewrite the code as lint wants it: ruff format, then ruff's safe fixes.
format: install
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

## mypy --strict over src, tests and bench.
typecheck: install
	$(UV) run mypy

## Everything CI checks before the benchmark: lint, typecheck, the whole suite.
check: lint typecheck test

## Load benchmarks on loopback (needs wrk; installs it with apt-get when missing and allowed).
bench: install
	$(UV) run python -m bench.session_load

## The benchmark in a few seconds, no goal judged (CI): it only has to run.
bench-smoke: install
	$(UV) run python -m bench.session_load --smoke

## wait_for_agent's time to 201 (the real server and the example agent) and GET /api/voice/sessions
## at 100 and 1,000 live sessions (the stand-in); ~8 minutes. Not part of `make test`.
bench-lifecycle: install
	$(UV) run python -m bench.lifecycle

## 1,000 session events queued at once, timed until all are delivered (the stand-in); ~1 minute.
bench-events: install
	$(UV) run python -m bench.event_burst
