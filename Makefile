# The two commands the README promises: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.lock | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
EMBEDDED := DEBUG=true

.PHONY: install run test lint fmt bench

$(STAMP): requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## Embedded service: SQLite, eager Celery, console providers, demo data.
run: install
	$(EMBEDDED) $(BIN)/python manage.py migrate --noinput -v0
	$(EMBEDDED) $(BIN)/python manage.py seed_demo
	@echo "Admin:    http://$(HOST):$(PORT)/admin/"
	@echo "API docs: http://$(HOST):$(PORT)/api/v1/docs"
	$(EMBEDDED) $(BIN)/python manage.py runserver $(HOST):$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check -q .

fmt: install
	$(BIN)/ruff check --fix -q .
	$(BIN)/ruff format -q .

## Whole suite against throwaway PostgreSQL + Redis (installed with apt-get when missing).
test: install lint
	.ci/ensure-chromium
	.ci/with-services env DEBUG=false SECRET_KEY=test-only-secret-key-with-enough-length \
		CELERY_TASK_ALWAYS_EAGER=true $(BIN)/pytest $(PYTEST_ARGS)

BENCH ?= logs_api

## Benchmarks on a throwaway PostgreSQL: make bench BENCH=logs_api
bench: install
	.ci/with-services env DEBUG=false SECRET_KEY=bench-only-secret-key-with-enough-length ALLOWED_HOSTS=testserver \
		$(BIN)/python -m bench.$(BENCH) $(BENCH_ARGS)
