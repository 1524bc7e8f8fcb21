# Two commands do all set-up on a fresh machine (Python 3.11 + pip): `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
RUNTIME := .venv-runtime
# The development directory: user mockuser (token awesome_token) in mockgroup, admin of mockprovider.
export QS_SEED_FILE ?= $(CURDIR)/deployments/dev-seed.toml

.PHONY: install run cluster test unit e2e lint bench clean

install: $(VENV)/.installed $(RUNTIME)/.installed

# The platform: prefect, prefect-ray, ray, fastapi, storage, test tools.
$(VENV)/.installed: pyproject.toml requirements/platform.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c requirements/platform.txt -e '.[dev]'
	touch $@

# The program runtime and the real client: qiskit-serverless 0.37.0 pins versions prefect refuses.
$(RUNTIME)/.installed: requirements/runtime.txt
	$(PYTHON) -m venv $(RUNTIME)
	$(RUNTIME)/bin/pip install --quiet --upgrade pip
	$(RUNTIME)/bin/pip install --quiet -r requirements/runtime.txt
	touch $@

run: install
	$(VENV)/bin/python -m deployments.stack

# The distributed topology on this machine: PostgreSQL, Prefect, a Ray head and a second node, S3 on
# moto's server, two gateways (8000, 8001) and two executors (deployments/cluster.py).
cluster: install
	$(VENV)/bin/python -m deployments.cluster

unit: install
	$(VENV)/bin/pytest tests/unit tests/service tests/integration -q

# The Prefect UI test drives Debian's Chromium through its chromedriver: installed here when missing
# (make runs as root in sessions and CI).
CHROMEDRIVER := /usr/bin/chromedriver
$(CHROMEDRIVER):
	apt-get update -qq && apt-get install -y -qq chromium chromium-driver

e2e: install $(CHROMEDRIVER)
	$(RUNTIME)/bin/pytest tests/e2e -q

test: unit e2e

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The load benchmark measures reads with Debian's wrk.
WRK := /usr/bin/wrk
$(WRK):
	apt-get update -qq && apt-get install -y -qq wrk

bench: install $(WRK)
	$(RUNTIME)/bin/python bench/jobs.py
	$(RUNTIME)/bin/python bench/burst.py
	$(RUNTIME)/bin/python bench/cluster.py
	$(VENV)/bin/python bench/files.py
	$(VENV)/bin/python bench/hardening.py

clean:
	rm -rf $(VENV) $(RUNTIME) .data
