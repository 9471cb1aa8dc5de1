# Two commands for a fresh machine with Python 3.11+ and make: `make run`, `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo .uv/bin/uv)
PY := .venv/bin/python
PORT ?= 8000

.PHONY: run test env lint messages

$(UV):
	python3 -m venv .uv && .uv/bin/pip install --quiet uv

env: $(UV)
	$(UV) sync --frozen --quiet

run: env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py seed_forecast --if-empty
	@echo "Progression: http://127.0.0.1:$(PORT)/  (demo logins above; password for all: see README)"
	PORT=$(PORT) .venv/bin/honcho -f crm/Procfile -d . start

test: env
	$(PY) -m pytest $(PYTEST_ARGS)

lint: env
	.venv/bin/ruff check .

messages: env
	$(PY) manage.py makemessages -l de --ignore=.venv --ignore=var
	$(PY) manage.py compilemessages --ignore=.venv
