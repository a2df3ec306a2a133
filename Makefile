# The README's two commands, `make run` and `make test`, each set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-suite
TORCH_STAMP := $(VENV)/.installed-torch
# Installed first when the venv has no torch yet. These two come from local disk on the
# project's machines; elsewhere pip fetches them. Override to keep another torch:
#   make test TORCH_SPEC="torch torchvision"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PYTEST_WORKERS ?= 2

.PHONY: help setup run test test-fast lint format notebooks lab clean gpu-check wheelhouse student mutation book

help:
	@echo "make run        execute every notebook with its defaults into runs/latest/"
	@echo "make test       the whole test suite: lint, unit tests, notebooks (checked outputs compared with the committed ones)"
	@echo "make notebooks  re-execute the committed notebooks in place"
	@echo "make lab        JupyterLab on the notebooks"
	@echo "make format     ruff format and fix, notebooks included"
	@echo "make student    the student edition (solutions taken out) into build/student/"
	@echo "make book       the static book (a website) from the committed notebooks into build/book/"
	@echo "make mutation   mutation testing (mutmut) of the library and command modules: score per module"
	@echo "make gpu-check  on a CUDA machine: tests, nbval, notebooks on cuda, GPU benchmarks"
	@echo "make wheelhouse the dependencies as wheels for an offline CUDA machine (WHEEL_PYTHON=3.12)"

setup: $(STAMP)

# The venv with torch: the first step of both set-ups
$(TORCH_STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH_SPEC)
	touch $(TORCH_STAMP)

# Everything: the command, the tests and lint, keras, the book
$(STAMP): pyproject.toml | $(TORCH_STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,keras,book]'
	touch $(STAMP) $(RUN_STAMP)

# Only what `make run` needs: the package and the command's extra
$(RUN_STAMP): pyproject.toml | $(TORCH_STAMP)
	$(BIN)/python -m pip install -q -e '.[suite]'
	touch $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/bce-notebooks run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# One pytest session on the workers. Each notebook runs once at its defaults, in a store the
# workers share (tests/conftest.py), and every test that needs that run reads it there: the
# comparison of its checked cells with the committed outputs (as `pytest --nbval-lax
# notebooks` compares them), the results, the browser layer. --dist loadfile keeps each test
# module on one worker, in the order conftest gives (longest first).
test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--ignore=tests/fixtures --ignore=tests/artifacts tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not notebook and not browser" tests

notebooks: $(STAMP)
	$(BIN)/bce-notebooks refresh
	$(BIN)/ruff format notebooks

# Not part of `make test` (slow: the README gives its time); all of them by default, or
# one module: make mutation MUTATE=train
MUTATE ?= params checks losses data train models results saturation fast/training fast/warm_up fast/compiler fast/formulas fast/bench bce_suite/resume.py bce_suite/parameters.py bce_suite/scratch.py
mutation: $(STAMP)
	$(BIN)/python tools/mutation.py $(MUTATE) --jobs $(PYTEST_WORKERS) --min-score 90

student: $(STAMP)
	$(BIN)/python tools/student_edition.py

# The notebooks as they are committed (not executed again), read without a kernel
book: $(STAMP)
	$(BIN)/python book/build.py

gpu-check: $(STAMP)
	PYTHON=$(BIN)/python bash tools/gpu_check.sh

# build/wheelhouse: every declared dependency but torch, torchvision and triton, for
# tools/gpu_check.sh on a CUDA machine without a package index; WHEEL_PYTHON: its Python
WHEEL_PYTHON ?=
wheelhouse: $(STAMP)
	$(BIN)/python tools/wheelhouse.py $(if $(WHEEL_PYTHON),--python-version $(WHEEL_PYTHON) --platform manylinux2014_x86_64)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf runs .pytest_cache .ruff_cache .hypothesis build/mutation build/student build/book build/lib
