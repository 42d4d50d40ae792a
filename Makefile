# One command to run the bot, one to test it. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= config.toml

.PHONY: run console test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(CONFIG):
	cp config.example.toml $(CONFIG)
	@echo "Created $(CONFIG) from config.example.toml."
	@echo "Fill in [cometapi] api_key and at least one of [telegram] token / [discord] token, then run 'make run' again."
	@exit 1

run: $(VENV)/.installed $(CONFIG)
	$(PY) -m bot --config $(CONFIG)

console: $(VENV)/.installed $(CONFIG)
	$(PY) -m bot --config $(CONFIG) console

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-logo --no-cache

test: lint
	$(PY) -m pytest -q

# Every benchmark with its default settings, each in its own process (a few minutes);
# `make bench BENCH=poller` runs one. `python -m bench` lists them with quick settings.
bench: $(VENV)/.installed
	$(PY) -m bench $(or $(BENCH),all)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
