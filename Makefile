# One way to run everything. Each target creates/refreshes the local virtualenv it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TRACK := $(VENV)/bin/track
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(TRACK) demo

test: $(STAMP)
	.ci/install-browser   # the browser tests drive Debian's headless Chromium
	$(PY) -m pytest -q

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check tracker runners tests benchmarks migrations
	$(VENV)/bin/mypy tracker runners

clean:
	rm -rf $(VENV) mlruns/events.db* mlruns/mlflow.db mlruns/artifacts
