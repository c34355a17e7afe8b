# Two commands on a fresh machine with Python 3.11:  `make setup`  and  `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUN := runs/kitchen-scripted
# The main job `make setup` ends with: pretrain the `skillplan` preset on the scripted kitchen data
# (generated first when missing). A second `make setup` resumes the finished run instead of failing.
MAIN ?= skillplan pretrain --dataset kitchen-scripted --out $(RUN) $$(test -d $(RUN)/prior && echo --resume)

.PHONY: setup test lint

setup: $(VENV)/.installed
	$(BIN)/$(MAIN)

test: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 -q

lint: $(VENV)/.installed
	$(BIN)/ruff check .

# torch==2.13.0 (CPU build) first: a looser requirement would pull several GB of CUDA wheels.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@
