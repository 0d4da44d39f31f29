# Everyday targets. Each installs uv with pip if it is missing and syncs the locked environment,
# so they work on a fresh machine with python3, pip and make.
PYTHON ?= python3
UV = $(PYTHON) -m uv
CHECKED = platform tenants tests bench migrations providers docs/examples docs/gen
EXAMPLE = docs/examples/billplane-example-provider

# This machine sets PYTHONDONTWRITEBYTECODE: each Python process then compiles every module it
# imports (2 s of a test suite's worker, a server, a CLI call). The caches are git-ignored.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test lint typecheck pytest docs sync uv clean

uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv

sync: uv
	@$(UV) sync --locked --quiet

run: sync
	$(UV) run billplane dev

lint: sync
	$(UV) run ruff check $(CHECKED)
	$(UV) run ruff format --check $(CHECKED)

# The example plugin in docs/examples is a project of its own (with its own tests package), so it
# is type-checked in a second run.
typecheck: sync
	MYPYPATH=providers/sandbox:providers/stripe:providers/paypal $(UV) run mypy platform/billplane tenants/billplane_tenants providers/sandbox/billplane_sandbox providers/stripe/billplane_stripe providers/paypal/billplane_paypal tests bench docs/gen
	MYPYPATH=$(EXAMPLE) $(UV) run mypy --cache-dir .mypy_cache/example $(EXAMPLE)/billplane_example $(EXAMPLE)/tests

pytest: sync
	$(UV) run pytest -n 2

# The docs site into site/ (git-ignored). --strict: a broken link or anchor, or a page left out of
# the nav, fails the build. Offline: the API and configuration references are generated from the
# code by docs/gen/hooks.py, and nothing is downloaded.
docs: sync
	NO_MKDOCS_2_WARNING=1 $(UV) run mkdocs build --strict

test: lint typecheck docs pytest

clean:
	rm -rf .billplane .mypy_cache .ruff_cache site
