# Two commands set everything up on a fresh machine:
#   make demo   installs srgan into .venv and upscales a sample image with the shipped model
#   make test   installs srgan into .venv and runs the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint

install: $(STAMP)

# torch is installed on its own first and pinned only here: a bare `torch>=2.1` on a machine without
# torch makes pip fetch the newest CUDA build (gigabytes). An importable torch is reused as it is.
$(STAMP): pyproject.toml
	python3 -m venv --system-site-packages $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: install
	$(VENV)/bin/srgan upscale --demo -o astronaut_x4.png --overwrite

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/upscale_speed.py
	$(PY) benchmarks/train_speed.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks tools docs
