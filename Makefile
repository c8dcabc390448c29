# One place for every command a developer or CI runs. `make evals` and `make test` work on a fresh machine.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: setup evals test browser lint format typecheck check bench clean quickstart versions

setup:  ## install uv (if missing) and the locked environment in .venv
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode

evals: setup  ## run the project's eval suites offline (the main job)
	$(UV) run pytest evals/

browser:  ## Debian's Chromium, for the HTML report's browser test (needs root; skipped if present)
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo 'chromium missing: the browser test will skip (install it with apt-get install chromium)'; }

test: setup browser  ## run evaltrace's own tests
	$(UV) run pytest tests/ -n 2

quickstart: setup  ## the README's quickstart and `evaltrace init`, each in a fresh project and venv, on the built wheel
	$(UV) run python -m tests.readme_quickstart

versions: setup  ## a fast subset of the tests on the oldest and the newest dependency versions pyproject allows
	bash .ci/versions

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .

format:
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

typecheck:
	$(UV) run pyright

check: setup lint typecheck  ## lint and type-check, as CI does

bench: setup  ## benchmarks (print ratios measured side by side)
	$(UV) run python bench/bench_overhead.py

clean:
	rm -rf .evaltrace .pytest_cache .ruff_cache
