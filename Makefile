# Two commands on a fresh machine: `make demo` and `make test`. Both create or reuse .venv, install everything
# (Horovod built against the installed torch, skipped when already built) and run.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup lint typecheck pytest clean

setup:
	tools/setup_venv.sh $(VENV)
	tools/build_horovod.sh $(VENV)

demo: setup
	$(BIN)/geodl run configs/demo.yaml
	$(BIN)/geodl inspect runs/demo/murchison.zarr --json --plot runs/demo/murchison_layers.png > runs/demo/inspect.json
	@echo "demo: runs/demo/inspect.json (geodl inspect --json) and runs/demo/murchison_layers.png (the layers)"

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
