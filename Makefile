# The two commands a user needs:
#   make demo   - install if needed, then the whole pipeline on generated demo data
#   make test   - install if needed, then the test suite (CPU, minutes)
PYTHON ?= python
# `make test-torch`: the fast tests in a separate virtualenv with this torch
# (default: the oldest supported one, tools/install.py TORCH_RANGE); the
# installer accepts it even outside TORCH_RANGE, as it is the one to try.
TORCH ?= 2.1.2
TORCHVISION ?= 0.16.2
TORCH_VENV ?= .venv-torch-$(TORCH)

.PHONY: install install-mmcv-from-source demo demo-quick test test-slurm test-fast test-torch lint

install:
	$(PYTHON) tools/install.py

install-mmcv-from-source:
	$(PYTHON) tools/install.py --mmcv-from-source

demo: install
	$(PYTHON) tools/run_demo.py

demo-quick: install
	$(PYTHON) tools/run_demo.py --quick

# Two pytest-xdist workers: many tests wait on subprocesses (torchrun, the
# tools), so both cores stay busy; tests that must not overlap can share an
# @pytest.mark.xdist_group (--dist loadgroup runs a group on one worker).
# The Slurm cluster tests wait minutes for Slurm's signals:
# `make test-slurm` (.ci/run runs both).
test: install
	$(PYTHON) -m pytest -q -rs -n 2 --dist loadgroup -m "not slurm"

test-slurm: install
	$(PYTHON) -m pytest -q -rs -m slurm

# flake8's pycodestyle/pyflakes rules (ruff) and OpenMMLab's import order
# (isort); settings in pyproject.toml
lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m isort --check-only --diff .

test-fast: install
	$(PYTHON) -m pytest -q -rs -m "not slow"

test-torch:
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install torch==$(TORCH) torchvision==$(TORCHVISION)
	VICREG_DET_ANY_TORCH=1 $(MAKE) test-fast \
		PYTHON=$(abspath $(TORCH_VENV))/bin/python
