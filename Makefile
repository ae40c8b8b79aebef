# The two commands of the README: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint demo bench clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# clip-anytorch declares torchvision, which would pull a CUDA torch: we only need its BPE vocabulary.
	$(PY) -m pip install -q --no-deps clip-anytorch==2.6.0
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench.speed

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache dist build
