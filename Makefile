# Taskbeat: `make run` starts the local stack, `make test` runs every check CI runs.
SHELL := /bin/bash
# The Lambda runtime's Python (3.13) when this machine has it (pyenv's, or python3.13 on the
# PATH): the tests then run on the version that runs in production. Else python3 (3.11+).
RUNTIME_PYTHON := $(shell for p in $$(ls -d "$$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 2>/dev/null | sort -V | tail -1) python3.13; do "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)
PYTHON ?= $(or $(RUNTIME_PYTHON),python3)
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV ?= .venv
BIN := $(VENV)/bin
# Made again when the requirements or the Python version change.
INSTALLED := $(VENV)/.installed-py$(PYTHON_VERSION)-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
SWAGGER_UI := chalicelib/api/static/swagger-ui
# The web dashboard (web/): installed when its lock file changes, built when a source does.
WEB_INSTALLED := web/node_modules/.installed-$(shell cksum < web/package-lock.json | cut -d' ' -f1)
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json web/package.json
# Browser tests drive Debian's Chromium (installed by `make chromium` when missing).
CHROMIUM ?= /usr/bin/chromium
PYTEST_WORKERS ?= 2
# `make pytest`'s coverage figures (`$(BIN)/coverage report` details the last run's).
COVERAGE_JSON := coverage.json
# Deploying: the stage (stack taskbeat-<stage>) and the CDK CLI, pinned (fetched by npx).
STAGE ?= dev
CDK ?= npx --yes aws-cdk@2.1148.1

export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help install assets web web-test chromium browser screenshots run test lint format typecheck pytest unit integration e2e contract infra synth deploy bench clean

help:
	@echo "make run   - start the local stack (API :8000, WebSocket :8001, dashboard :8000/app/)"
	@echo "make test  - lint, type checks, all tests and the CDK synth checks"
	@echo "make synth STAGE=dev  - synthesize the stage's CloudFormation (offline)"
	@echo "make deploy STAGE=dev - deploy it with the CDK CLI (AWS credentials needed)"

$(INSTALLED): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@echo "Python $(PYTHON_VERSION) ($(PYTHON))$(if $(filter 3.13,$(PYTHON_VERSION)),: the Lambda runtime's version,: not the Lambda runtime's (3.13, not found here))"
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYTHON_VERSION)" ]; then \
		echo "$(VENV) is another Python's: made again"; rm -rf $(VENV); fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==26.2.1  # chalice 1.34 needs pip<26.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

install: $(INSTALLED) assets

# Swagger UI is served by the API itself (works offline); its files come from a pinned wheel.
assets: $(SWAGGER_UI)/swagger-ui-bundle.js

$(SWAGGER_UI)/swagger-ui-bundle.js: $(INSTALLED)
	@mkdir -p $(SWAGGER_UI)
	@$(BIN)/python -c 'import pathlib, shutil, swagger_ui; src = pathlib.Path(swagger_ui.__file__).parent / "static"; [shutil.copy(src / n, "$(SWAGGER_UI)") for n in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE")]'

# The exact versions of the committed lock file, without changing it (`npm ci` would refuse a lock
# file that lacks platform packages of rollup's that the registry here does not serve).
$(WEB_INSTALLED): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "Node 20.19+ and npm are needed for the dashboard (web/)"; exit 1; }
	rm -rf web/node_modules
	npm --prefix web install --no-save --no-audit --no-fund --loglevel=error
	@touch $@

web: web/dist/index.html

web/dist/index.html: $(WEB_INSTALLED) $(WEB_SOURCES)
	npm --prefix web run --silent build

# The dashboard's own unit tests (Vitest) and type check.
web-test: $(WEB_INSTALLED)
	npm --prefix web run --silent typecheck
	npm --prefix web test --silent

chromium:
	@test -x $(CHROMIUM) || { echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is still missing"; exit 1; }

run: install web
	$(BIN)/python -m local

# The browser tests, saving the main screens to docs/screenshots/ (committed).
screenshots: install web chromium
	TASKBEAT_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q $(BROWSER_TESTS)

# lint-imports: the layers of README.md's Layout (contracts in pyproject.toml's [tool.importlinter]).
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(INSTALLED)
	$(BIN)/mypy

# The browser tests run after the others, alone: Chromium and its own stack would otherwise take
# CPU from the timing-sensitive e2e and contract tests on the other worker.
BROWSER_TESTS := tests/browser/test_dashboard.py

# The infra tests synthesize the CDK app, which deploys web/dist: built first. Coverage is
# measured (pyproject.toml's [tool.coverage], local stack subprocesses included) and checked:
# chalicelib/'s line coverage must be 95 % or more (.ci/coverage_check.py).
pytest: install web
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --ignore=$(BROWSER_TESTS) \
		--cov --cov-report=json:$(COVERAGE_JSON)
	$(BIN)/python .ci/coverage_check.py $(COVERAGE_JSON)

browser: install web chromium
	$(BIN)/pytest $(BROWSER_TESTS)

unit: install
	$(BIN)/pytest tests/unit
integration: install
	$(BIN)/pytest tests/integration
e2e: install
	$(BIN)/pytest tests/e2e
contract: install
	$(BIN)/pytest tests/contract
infra: install web
	$(BIN)/pytest tests/infra

test: lint typecheck web-test pytest browser
	@echo "make test passed on Python $$($(BIN)/python -c 'import sys; print(sys.version.split()[0])')"

# Offline, without the CDK CLI: the context is cdk.json's (what the CLI would pass) plus the stage.
synth: install web
	cd infrastructure && AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
		CDK_CONTEXT_JSON="$$(../$(BIN)/python -c 'import json, sys; print(json.dumps({**json.load(open("cdk.json"))["context"], "stage": sys.argv[1]}))' '$(STAGE)')" \
		../$(BIN)/python app.py

# Extra context through CDK_ARGS, e.g. CDK_ARGS="-c alarm_email=ops@example.com".
deploy: install web
	cd infrastructure && $(CDK) deploy --all --app "../$(BIN)/python app.py" \
		-c stage=$(STAGE) --require-approval broadening $(CDK_ARGS)

# Every benchmark of bench/ in about 5 minutes (not part of `make test`): one table, and the
# figures in bench/results/latest.json (docs/benchmarks.md explains them).
bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(SWAGGER_UI) web/node_modules web/dist .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.* $(COVERAGE_JSON) htmlcov infrastructure/cdk.out infrastructure/.build
