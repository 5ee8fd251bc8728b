# Two commands on a fresh machine:
#   make demo   install gpt_nb, train a small model on the bundled stories (7-10 minutes on 2 cores), then generate
#   make test   install gpt_nb[dev] and run everything CI runs (.ci/run calls this)
# and on a machine with an NVIDIA GPU (CI has none):
#   make gpu    the CUDA paths no CPU test reaches (tests/test_gpu.py, about 5 minutes on one H100 or H200)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch release the project is tested with; `make demo TORCH=torch` takes the newest (CUDA) build instead.
TORCH ?= torch==2.13.0
PROMPT ?= Once upon a time
# gpt_nb.train_config.DEMO_RECIPE as flags (chapter A7c checks that they agree): 2,050 steps on every machine
DEMO_FLAGS := --max-steps 2050 --eval-minutes 5 --data bundled \
	--architecture gpt2-rope --tokenizer bpe:2048 --d-model 128 --context-length 512 --batch-size 4 \
	--lr 0.01 --warmup-fraction 0.02 --cooldown 0.6 --short-context 128 --short-until 0.7 --windows passes

.PHONY: demo test gpu outputs pretrained install install-dev

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
	@start=$$(date +%s); \
	$(BIN)/gpt-nb-train-tiny-stories $(DEMO_FLAGS) && \
	$(BIN)/gpt-nb-generate-text --checkpoint checkpoints/best_model.pt --prompt "$(PROMPT)" --num-samples 2 && \
	echo "demo: trained and generated in $$(( $$(date +%s) - start )) s"

# Remake gpt_nb/assets/tinystories.pt, the model that ships with the package (about 18 minutes on 2 CPU cores): the
# `tiny` preset every chapter reads (GPT-2's layout, the 4,096-token BPE, context 256), ten passes over the bundled
# stories with the demo's schedule and windows in passes (tools/make_pretrained.py says why not the demo's shape)
# (the checkpoint records this command; chapter A7c checks that it is the one written here)
PRETRAINED_COMMAND := gpt-nb-train-tiny-stories --data bundled --epochs 10 --lr 0.01 --warmup-fraction 0.02 \
	--cooldown 0.6 --windows passes --eval-minutes 5 --device cpu --out-dir build/pretrained
pretrained: install
	$(BIN)/$(PRETRAINED_COMMAND)
	$(BIN)/python tools/make_pretrained.py build/pretrained/best_model.pt --command "$(PRETRAINED_COMMAND)"

test: install-dev
	PATH="$(abspath $(BIN)):$$PATH" bash tools/check.sh

# Each test prints its figures (-s); without CUDA every one is skipped.
# GPT_NB_SPEEDRUN_MINUTES=0 leaves out chapter 09's speedrun (1.5 minutes by default).
gpu: install-dev
	$(BIN)/python -m pytest -s -p no:cacheprovider -m gpu tests/test_gpu.py

# Re-execute every notebook (2 at a time, one thread each) and fingerprint its outputs; `tools/outputs.py --check`
# in `make test` fails until this has run. `make outputs OUTPUTS="--flags slow nbs/07_training.ipynb"` runs slow cells too.
OUTPUTS ?=
outputs: install-dev
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python tools/outputs.py $(OUTPUTS)
