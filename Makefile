# infinity: `make run` runs the panel, `make test` runs every test.
# Both set up what they need first (Debian packages, .venv, pip).

VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(PY) -m flask --app wsgi
SIM_PORT ?= 10085

.PHONY: run demo test lint admin demo-admin api-key demo-api-key protos setup setup-test clean bench

setup:
	@scripts/bootstrap.sh run

setup-test:
	@scripts/bootstrap.sh test

## The panel on PANEL_HOST:PANEL_PORT (127.0.0.1:8000), with its jobs, under gunicorn.
run: setup
	$(VENV)/bin/gunicorn -c deploy/gunicorn.conf.py wsgi:app

## The panel beside the bundled Xray simulator, with demo link settings.
demo: setup
	@scripts/demo.sh

## Every test: unit, simulator, the real v2ray daemon, and the browser.
test: setup-test
	$(PY) -m pytest

lint: setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## Make an admin: make admin NAME=you (asks for the password).
admin: setup
	$(FLASK) create-admin $(NAME)

## A key for the JSON API (printed once): make api-key NAME=shop SCOPE=write
api-key: setup
	$(FLASK) api-key create $(NAME) --scope $(or $(SCOPE),read)

## The same, for the demo's own database: make demo-api-key NAME=shop SCOPE=write
demo-api-key: setup
	@scripts/demo.sh flask api-key create $(NAME) --scope $(or $(SCOPE),read)

## Benchmarks (poll, restore, enforce, memory); figures in bench/README.md.
bench: setup-test
	$(PY) bench/run_all.py

## Make an admin of the demo's own database: make demo-admin NAME=you
demo-admin: setup
	@scripts/demo.sh flask create-admin $(NAME)

## Regenerate the gRPC stubs from xray/protos/*.proto.
protos: setup-test
	scripts/gen_protos.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
