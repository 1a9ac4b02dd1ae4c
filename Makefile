# The two commands: `make local` and `make test`. Both bootstrap a fresh machine first.
SHELL := /bin/bash
export PATH := $(CURDIR)/.cache/tools/bin:$(PATH)
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Two pytest-xdist workers, a tier's tests kept together (tests/conftest.py); 0 runs one process.
TEST_WORKERS ?= 2

.PHONY: bootstrap local local-down test lint format bench render clean constraints image

bootstrap:
	@./scripts/bootstrap.sh

local: bootstrap
	@$(VENV)/bin/airflow-platform local up

local-down:
	@$(VENV)/bin/airflow-platform local down

test: bootstrap lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# platform/constraints.txt from uv.lock (run after every `uv lock`; a test checks it).
constraints: bootstrap
	$(PY) scripts/constraints.py

# The platform image with podman + buildah on a base built from Debian and PyPI (no registry);
# cached by the hash of its inputs. Push: podman push localhost/airflow-platform:<version> <registry>/...
image: bootstrap
	$(VENV)/bin/airflow-platform image build

render: bootstrap
	helm template airflow charts/airflow-platform -f charts/airflow-platform/ci/eks-values.yaml

bench: bootstrap
	@for b in bench/*/run.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf .venv .cache .pytest_cache .ruff_cache artifacts .local-state
