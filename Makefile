# Set-up and everyday commands. Each target builds the virtual environment when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# umap-learn compiles with numba on first use: keep the compiled cache between runs.
export NUMBA_CACHE_DIR := $(CURDIR)/data/.numba-cache
export MPLBACKEND := Agg

.PHONY: demo test lab notebooks venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing dasm and its dependencies into $(VENV) (log: $(VENV)/install.log) ..."
	@$(BIN)/python -m pip install -c constraints.txt -e '.[dev]' > $(VENV)/install.log 2>&1 \
		|| (tail -40 $(VENV)/install.log; echo "pip install failed: see $(VENV)/install.log"; exit 1)
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dasm demo

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

notebooks: $(STAMP)   # executes every notebook on digits into docs/notebooks/ (with outputs)
	$(BIN)/python -m benchmarks.notebooks

clean:
	rm -rf $(VENV) .pytest_cache
