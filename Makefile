# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap .venv from the lock first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
KINETICS_HOME ?= $(CURDIR)/var
export KINETICS_HOME

.PHONY: demo test ui lock validate clean

# The venv is rebuilt from the lock whenever the lock or pyproject.toml is newer than the last install.
$(STAMP): deploy/requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet -p $(BIN)/python deploy/requirements.lock
	$(BIN)/uv pip install --quiet -p $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kinetics demo

test: $(STAMP)
	$(BIN)/python -m pytest

ui: $(STAMP)
	$(BIN)/kinetics ui

validate: $(STAMP)
	DAGSTER_HOME= $(BIN)/dagster definitions validate -w workspace.yaml

# Re-resolve exact versions after editing deploy/requirements.in (needs the registry).
lock: $(STAMP)
	$(BIN)/uv pip compile --quiet -p 3.11 --custom-compile-command "make lock" deploy/requirements.in -o deploy/requirements.lock

clean:
	rm -rf $(VENV) var
