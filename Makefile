# Two commands on a fresh machine: `make demo` and `make test`. Both create or reuse .venv, install everything
# (Horovod built against the installed torch, skipped when already built) and run.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup lint typecheck pytest clean

setup:
	tools/setup_venv.sh $(VENV)
	tools/build_horovod.sh $(VENV)
	VENV=$(VENV) tools/fetch_data.sh

demo: setup
	$(BIN)/geodl run configs/prospectivity_murchison.yaml > /dev/null
	$(BIN)/geodl inspect runs/prospectivity-murchison/map.zarr
	@echo
	@sed -n '/^| model/,/^$$/p' runs/prospectivity-murchison/report.md
	@echo "demo: the run folder is runs/prospectivity-murchison (report.md, metrics.json, map.tif, PNGs)"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q -rs

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
