# The two commands the README promises: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.lock | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
EMBEDDED := DEBUG=true

.PHONY: install run test fuzz fuzz-sqlite lint fmt bench chaos

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
	@echo "Inbox:    http://$(HOST):$(PORT)/notifications/demo/"
	$(EMBEDDED) $(BIN)/uvicorn authms.asgi:application --host $(HOST) --port $(PORT) --lifespan off

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check -q .

fmt: install
	$(BIN)/ruff check --fix -q .
	$(BIN)/ruff format -q .

TEST_ENV := DEBUG=false SECRET_KEY=test-only-secret-key-with-enough-length CELERY_TASK_ALWAYS_EAGER=true
FUZZ_EXAMPLES ?= 25

## Whole suite against throwaway PostgreSQL + Redis (installed with apt-get when missing),
## then the API fuzz and the bad-input reproductions again on SQLite, which refuses other
## inputs than PostgreSQL does.
test: install lint
	.ci/ensure-chromium
	.ci/with-services env $(TEST_ENV) FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest --durations=15 $(PYTEST_ARGS)
	$(MAKE) --no-print-directory fuzz-sqlite

BAD_INPUT_TESTS := tests/fuzz tests/authms/test_parsers.py tests/authms/test_tokens.py tests/authms/test_envelope.py \
	tests/communication/test_input_edges.py tests/communication/test_subhook_hardening.py \
	tests/communication/test_recipient_masking_scan.py
# SQL that differs between the databases: the log counts' triggers (row-level on SQLite), the
# bulk's users lookup by lower(email), the usage rows' locks, the events outbox's triggers and
# the dispatcher's claim (one UPDATE per provider call on SQLite).
SQLITE_TESTS := $(BAD_INPUT_TESTS) tests/communication/test_pipeline_services.py tests/communication/test_log_counts.py tests/communication/test_dashboard.py \
	tests/communication/test_preferences.py tests/communication/test_quiet_hours.py tests/communication/test_spend_caps.py \
	tests/communication/test_delivery_controls_api.py tests/communication/test_events.py tests/communication/test_webhooks.py \
	tests/notifications/test_inbox_v2.py tests/authms/test_triggers_installed.py tests/communication/test_logs_cursor.py tests/communication/test_log_totals.py \
	tests/communication/test_log_partitions.py tests/authms/test_compiled_queries.py tests/communication/test_log_deep_pages.py tests/communication/test_log_day_totals.py

# The second pass looks for what SQLite refuses differently, with fewer examples per operation
# (the fuzz is nearly all of its time); `make fuzz` runs deep campaigns on both databases.
FUZZ_EXAMPLES_SQLITE ?= 10

fuzz-sqlite: install
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL TEST_DATABASE=sqlite $(TEST_ENV) \
		FUZZ_EXAMPLES=$(FUZZ_EXAMPLES_SQLITE) $(BIN)/pytest -q -p no:cacheprovider $(SQLITE_TESTS)

## A longer fuzz campaign on both databases: make fuzz FUZZ_EXAMPLES=500
fuzz: FUZZ_EXAMPLES = 300
fuzz: install
	.ci/with-services env $(TEST_ENV) FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q tests/fuzz
	env -u DATABASE_URL TEST_DATABASE=sqlite $(TEST_ENV) FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q tests/fuzz

BENCH ?= logs_api

## Benchmarks on a throwaway PostgreSQL: make bench BENCH=logs_api
bench: install
	.ci/with-services env DEBUG=false SECRET_KEY=bench-only-secret-key-with-enough-length ALLOWED_HOSTS=testserver \
		$(BIN)/python -m bench.$(BENCH) $(BENCH_ARGS)

## Fault scenarios with a real worker, beat and the fake SUBMAIL (~10 min): make chaos CHAOS_ARGS="--only A"
chaos: install
	.ci/with-services env DEBUG=false SECRET_KEY=chaos-only-secret-key-with-enough-length ALLOWED_HOSTS=testserver \
		CELERY_TASK_ALWAYS_EAGER=false $(BIN)/python -m bench.chaos $(CHAOS_ARGS)
