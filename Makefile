# orchestrord — the two commands that matter: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# llama.cpp must not be built for the build machine's CPU: native builds use AMX,
# which crashes on these machines (SIGSEGV in ggml_backend_amx_mul_mat).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: run test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamps re-run an install only when pyproject.toml changes, so the llama.cpp build
# (about 4-10 minutes on 2 cores) happens once per .venv (pip also caches the wheel).
$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[test,local]'
	touch $@

$(VENV)/.installed-local: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[local]'
	touch $@

run: $(VENV)/.installed-local
	bin/orchestrord

# The local-model tests are required here: a missing llama.cpp build fails them.
test: $(VENV)/.installed-test
	ORCHESTRORD_REQUIRE_LOCAL=1 $(PY) -m pytest

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed-test
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info
