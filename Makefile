# Everyday targets. Each installs uv with pip if it is missing and syncs the locked environment,
# so they work on a fresh machine with python3, pip and make.
PYTHON ?= python3
UV = $(PYTHON) -m uv
CHECKED = platform tenants tests bench migrations providers docs/examples
EXAMPLE = docs/examples/billplane-example-provider

.PHONY: run test lint typecheck pytest sync uv clean

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
	MYPYPATH=providers/sandbox:providers/stripe:providers/paypal $(UV) run mypy platform/billplane tenants/billplane_tenants providers/sandbox/billplane_sandbox providers/stripe/billplane_stripe providers/paypal/billplane_paypal tests bench
	MYPYPATH=$(EXAMPLE) $(UV) run mypy --cache-dir .mypy_cache/example $(EXAMPLE)/billplane_example $(EXAMPLE)/tests

pytest: sync
	$(UV) run pytest -n 2

test: lint typecheck pytest

clean:
	rm -rf .billplane .mypy_cache .ruff_cache
