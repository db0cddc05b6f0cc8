# Thin targets; the work lives in scripts/setup.sh and the `ledgerguard` CLI.
EXTRAS ?= dev
LG := .venv/bin/ledgerguard

.PHONY: setup demo test lint format up down status reset

setup:
	EXTRAS=$(EXTRAS) ./scripts/setup.sh

.env:
	cp .env.example .env
	@echo "created .env from .env.example (development values)"

demo: setup .env
	$(LG) demo

test: setup
	.venv/bin/ruff check .
	.venv/bin/pytest

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

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
