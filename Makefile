# Two commands on a fresh machine:
#   make demo   install gpt_nb, train the tiny model on the bundled stories, then generate from it
#   make test   install gpt_nb[dev] and run everything CI runs (.ci/run calls this)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch release the project is tested with; `make demo TORCH=torch` takes the newest (CUDA) build instead.
TORCH ?= torch==2.13.0
PROMPT ?= Once upon a time

.PHONY: demo test install install-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"

demo: install
	$(BIN)/gpt-nb-train-tiny-stories --epochs 10
	$(BIN)/gpt-nb-generate-text --checkpoint checkpoints/best_model.pt --prompt "$(PROMPT)" --num-samples 2

test: install-dev
	PATH="$(abspath $(BIN)):$$PATH" bash tools/check.sh
