# credbatch developer commands. `make run` runs the whole system; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf

.PHONY: help install run test lint typecheck protos check-protos lint-protos clean

help:
	@echo "make run     - create .venv, the database and roles, migrate, start every component"
	@echo "make test    - run the whole test suite against the local PostgreSQL and RabbitMQ"
	@echo "make lint    - ruff, mypy, generated-code staleness, buf lint"
	@echo "make protos  - regenerate credbatch/gen from protos/"
	@echo "make demo    - against a running make run: 1,000 credentials end to end"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m credbatch.devrun

test: $(STAMP)
	$(PY) -m credbatch.codegen --check
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP) check-protos lint-protos
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

typecheck: $(STAMP)
	$(VENV)/bin/mypy

protos: $(STAMP)
	$(PY) -m credbatch.codegen

check-protos: $(STAMP)
	$(PY) -m credbatch.codegen --check

$(BUF):
	mkdir -p .tools
	npm install --silent --prefix .tools @bufbuild/buf@$(BUF_VERSION)

lint-protos: $(BUF) $(STAMP)
	mkdir -p .tools/third_party/google/api
	cp $$($(PY) -c 'import google.api, os; print(os.path.dirname(google.api.__file__))')/{annotations,http,field_behavior}.proto .tools/third_party/google/api/
	$(BUF) lint

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache

# --- CLI demo, REST descriptor set, deploy manifests (issue 7) ---
.PHONY: demo descriptor-set validate-deploy

demo: $(STAMP)
	$(PY) -m credbatch.cli.main demo

descriptor-set: $(STAMP)
	$(PY) -m credbatch.codegen --descriptor-set build/credbatch.pb

validate-deploy: $(STAMP) descriptor-set
	$(PY) -m pytest -q -p no:cacheprovider tests/deploy
