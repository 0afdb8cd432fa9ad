# The two commands a user needs:
#   make demo   - install if needed, then the whole pipeline on the embedded demo data
#   make test   - install if needed, then the test suite (CPU, minutes)
PYTHON ?= python

.PHONY: install demo demo-quick test test-fast

install:
	$(PYTHON) tools/install.py

demo: install
	$(PYTHON) tools/run_demo.py

demo-quick: install
	$(PYTHON) tools/run_demo.py --quick

test: install
	$(PYTHON) -m pytest -q -rs

test-fast: install
	$(PYTHON) -m pytest -q -rs -m "not slow"
