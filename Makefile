# Thin targets; the work lives in scripts/setup.sh and the `ledgerguard` CLI.
# the test suite and the demo run Airflow's DAGs, so both extras by default
EXTRAS ?= dev,airflow,ml
LG := .venv/bin/ledgerguard

.PHONY: setup demo test chaos lint format up down status reset

setup:
	EXTRAS=$(EXTRAS) ./scripts/setup.sh

.env:
	umask 077 && cp .env.example .env
	@echo "created .env from .env.example (development values)"

demo: setup .env
	$(LG) demo

test: setup
	.venv/bin/ruff check .
	.venv/bin/pytest

# fault injection only (kill -9 the primary, failover, replica outage, API worker crash); these
# also run in `make test`
chaos: setup
	.venv/bin/pytest tests/chaos -v

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	# Airflow's own rules (AIR3: Airflow 3 removals/moves) over the DAG files, as STYLE.md says
	.venv/bin/ruff check dags/ --select AIR

format: setup
	.venv/bin/ruff format .

up: setup .env
	$(LG) cluster up

down:
	$(LG) cluster down

status:
	$(LG) cluster status

reset: setup .env
	$(LG) cluster reset --yes

# --- Docker Compose (MySQL 8.4 flavour; needs a Docker engine) -------------------------------
COMPOSE := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_ARGS := -p ledgerguard -f deploy/docker-compose.yml --env-file .env

.PHONY: compose-env compose-config compose-up compose-down
# .env with fresh random passwords: the stack runs as production, which refuses the demo's
compose-env:
	./scripts/compose-env.sh

compose-config: .env
	$(COMPOSE) $(COMPOSE_ARGS) config -q

compose-up:
	@test -e .env || ./scripts/compose-env.sh
	$(COMPOSE) $(COMPOSE_ARGS) up -d --build

compose-down:
	$(COMPOSE) $(COMPOSE_ARGS) down
