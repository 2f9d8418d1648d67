# credbatch developer commands. `make run` runs the whole system; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The whole dependency tree with hashes, generated from pyproject.toml by `make lock`.
LOCK := requirements.lock
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf
# The wallet test's npm libraries, exactly as tests/wallet/package-lock.json pins them.
WALLET_DEPS := .tools/wallet/node_modules/.package-lock.json
# The draft-13 wallet test's npm library, exactly as tests/wallet_draft/package-lock.json pins it.
WALLET_DRAFT_DEPS := .tools/wallet_draft/node_modules/.package-lock.json
# axe-core for the claim page's accessibility check, as tests/services/public/a11y pins it.
A11Y_DEPS := .tools/a11y/node_modules/.package-lock.json
# The Node.js example client's npm libraries, exactly as examples/node/package-lock.json pins them.
NODE_EXAMPLE_DEPS := .tools/node_example/node_modules/.package-lock.json

.PHONY: help install lock check-lock hooks run test test-unit lint typecheck protos check-protos \
	lint-protos clean demo descriptor-set validate-deploy browser promtool wallet-deps \
	wallet-draft-deps a11y-deps node-example-deps openapi check-openapi pgbouncer test-pgbouncer

help:
	@echo "make install         - create .venv and install credbatch with its dev tools from the lock"
	@echo "make lock            - regenerate requirements.lock (hashes) from pyproject.toml"
	@echo "make check-lock      - fail when requirements.lock does not match pyproject.toml's pins"
	@echo "make hooks           - install the git pre-commit hook (ruff, ruff format, mypy)"
	@echo "make run             - create .venv, the database and roles, migrate, start every component"
	@echo "make test            - run the whole test suite against the local PostgreSQL and RabbitMQ"
	@echo "make test-unit       - the fast tier: tests needing no PostgreSQL, RabbitMQ or child process"
	@echo "make test-pgbouncer  - the database-heavy tiers again, every role through PgBouncer"
	@echo "make pgbouncer       - install Debian's pgbouncer (make test-pgbouncer runs one)"
	@echo "make browser         - install Debian's chromium (the claim page tests run it headless)"
	@echo "make promtool        - install Debian's prometheus for promtool (the alert rules' tests)"
	@echo "make wallet-deps     - install the wallet test's pinned npm libraries into .tools/wallet"
	@echo "make wallet-draft-deps - install the draft-13 wallet test's pinned npm library"
	@echo "make a11y-deps       - install the claim page accessibility test's pinned axe-core"
	@echo "make node-example-deps - install examples/node's pinned npm libraries into .tools"
	@echo "make lint            - lock check, ruff, ruff format, mypy, generated-code staleness, buf lint"
	@echo "make typecheck       - mypy (strict) only"
	@echo "make protos          - regenerate credbatch/gen and docs/errors.md from protos/"
	@echo "make check-protos    - fail when credbatch/gen is stale"
	@echo "make lint-protos     - buf lint of protos/ (installs buf into .tools)"
	@echo "make clean           - remove build output and tool caches"
	@echo "make demo            - against a running make run: 1,000 credentials end to end"
	@echo "make openapi         - regenerate docs/openapi.yaml from the protos' http annotations"
	@echo "make descriptor-set  - write build/credbatch.pb: the public contract with google.rpc errors"
	@echo "make validate-deploy - check the compose file and Kubernetes manifests"

# Every package, dev tools included, comes from the lock with its hashes checked, so two
# machines get the same tree; the project itself is added without resolving anything.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Pins unpinned (transitive) packages where the current lock allows; LOCK_FLAGS=--upgrade
# moves them to their newest releases.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command "make lock" --quiet $(LOCK_FLAGS) -o $(LOCK)

# Installs .pre-commit-config.yaml as this clone's git pre-commit hook (ruff, ruff format, mypy).
hooks: $(STAMP)
	$(VENV)/bin/pre-commit install

# Fails when requirements.lock does not hold exactly the pins of pyproject.toml (no network).
check-lock: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/test_lock.py

install: $(STAMP)

run: $(STAMP)
	$(PY) -m credbatch.devrun

test: $(STAMP) browser promtool pgbouncer $(WALLET_DEPS) $(WALLET_DRAFT_DEPS) $(NODE_EXAMPLE_DEPS) $(A11Y_DEPS)
	$(PY) -m credbatch.codegen --check
	$(PY) -m pytest -q -p no:cacheprovider
	$(MAKE) --no-print-directory test-pgbouncer

# The tiers that run the most transactions, again with every role but the owner going through a
# PgBouncer in transaction mode (tests/fixtures/pgbouncer.py starts one per run), as in
# production: session state anywhere fails them. Debian's PgBouncer (1.18) keeps no prepared
# statements, hence asyncpg's cache off. docs/connections.md says why these tiers and not all.
# The relay's long end-to-end and fault tests (fairness at scale, crashes, a broker restart)
# stay out: their SQL is the claim's and the sweeper's, which the tiers below run too, and CI's
# time is bounded.
PGBOUNCER_TIERS := tests/workers/issuance tests/workers/webhooks/test_delivery.py \
	tests/workers/relay/test_relay.py tests/workers/relay/test_dead_letters.py \
	tests/workers/relay/test_sweeper.py tests/workers/relay/test_fair_claim.py \
	tests/workers/relay/test_fair_in_flight.py tests/workers/relay/test_rate_limits.py \
	tests/workers/relay/test_fold.py tests/batches \
	tests/services/batch_status/test_commands_with_workers.py \
	tests/services/public/test_oid4vci_flow.py tests/services/signer tests/db/test_rls_isolation.py \
	tests/db/test_session_state.py tests/db/test_pool.py tests/db/test_pool_sizes.py tests/test_tenancy.py
test-pgbouncer: $(STAMP) pgbouncer
	CREDBATCH_TEST_PGBOUNCER=1 CREDBATCH_DB_STATEMENT_CACHE_SIZE=0 \
		$(PY) -m pytest -q -p no:cacheprovider $(PGBOUNCER_TIERS)

# The fast tier: every test not marked integration (tests/conftest.py marks the ones needing
# PostgreSQL, RabbitMQ, SMTP or child processes). No service needs to be running.
test-unit: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not integration"

# The claim page tests take screenshots with headless Chromium; Debian's package, as root.
browser:
	test -x /usr/bin/chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends chromium; }

# The alert and recording rules' unit tests (tests/deploy/test_alerts.py) run promtool, which
# comes with Debian's prometheus package; as root.
promtool:
	test -x /usr/bin/promtool || { apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends prometheus; }

# PgBouncer for test-pgbouncer; Debian's package, as root.
pgbouncer:
	test -x /usr/sbin/pgbouncer || { apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends pgbouncer; }

lint: $(STAMP) check-lock check-protos check-openapi lint-protos
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

$(WALLET_DEPS): tests/wallet/package.json tests/wallet/package-lock.json
	mkdir -p .tools/wallet
	cp tests/wallet/package.json tests/wallet/package-lock.json .tools/wallet/
	npm ci --silent --no-audit --no-fund --prefix .tools/wallet
	touch $(WALLET_DEPS)

wallet-deps: $(WALLET_DEPS)

$(A11Y_DEPS): tests/services/public/a11y/package.json tests/services/public/a11y/package-lock.json
	mkdir -p .tools/a11y
	cp tests/services/public/a11y/package.json tests/services/public/a11y/package-lock.json \
		.tools/a11y/
	npm ci --silent --no-audit --no-fund --prefix .tools/a11y
	touch $(A11Y_DEPS)

a11y-deps: $(A11Y_DEPS)

$(WALLET_DRAFT_DEPS): tests/wallet_draft/package.json tests/wallet_draft/package-lock.json
	mkdir -p .tools/wallet_draft
	cp tests/wallet_draft/package.json tests/wallet_draft/package-lock.json .tools/wallet_draft/
	npm ci --silent --no-audit --no-fund --prefix .tools/wallet_draft
	touch $(WALLET_DRAFT_DEPS)

wallet-draft-deps: $(WALLET_DRAFT_DEPS)

$(NODE_EXAMPLE_DEPS): examples/node/package.json examples/node/package-lock.json
	mkdir -p .tools/node_example
	cp examples/node/package.json examples/node/package-lock.json .tools/node_example/
	npm ci --silent --no-audit --no-fund --prefix .tools/node_example
	touch $(NODE_EXAMPLE_DEPS)

node-example-deps: $(NODE_EXAMPLE_DEPS)

# protos/google is vendored (protos/google/README.md), so buf needs nothing fetched.
lint-protos: $(BUF)
	$(BUF) lint

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache

demo: $(STAMP)
	$(PY) -m credbatch.cli.main demo

# docs/openapi.yaml, generated from the protos' google.api.http annotations (never edited).
openapi: $(STAMP)
	$(PY) -m credbatch.contract.openapi

check-openapi: $(STAMP)
	$(PY) -m credbatch.contract.openapi --check

descriptor-set: $(STAMP)
	$(PY) -m credbatch.codegen --descriptor-set build/credbatch.pb

validate-deploy: $(STAMP) descriptor-set promtool
	$(PY) -m pytest -q -p no:cacheprovider tests/deploy
