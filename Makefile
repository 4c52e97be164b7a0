# Two commands do all the set-up on a fresh machine:
#   make train   # virtual environment + training on the embedded (synthetic) default data
#   make test    # virtual environment + the test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The browser runtimes (npm, from web/package-lock.json), copied into the package's static files.
VENDOR := emotion/serve/static/vendor/versions.json
ARGS ?=
# The extras `make` installs; CI adds sweep,slurm,mlflow so their tests run.
EXTRAS ?= dev,extract,export,serve
PYTEST_ARGS ?=

.PHONY: setup train live live-model test test-slow test-all lint bench-train tensorboard clean vendor

$(VENDOR): web/package.json web/package-lock.json web/vendor.sh
	bash web/vendor.sh

$(STAMP): pyproject.toml $(VENDOR)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

setup: $(STAMP)

vendor:
	bash web/vendor.sh

train: $(STAMP)
	$(BIN)/emotion-train $(ARGS)

# The live demo that responds: the SYNTHETIC recipe read against the person's rest face
# (data.baseline=enrolled), then served; the page asks for a few seconds of relaxed face first.
live: live-model
	$(BIN)/emotion-serve outputs/train/runs/live

# The same model, trained without serving it (CI's live-page check scores it).
live-model: $(STAMP)
	$(BIN)/emotion-train data.baseline=enrolled run_name=live $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

test-all: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check emotion tests
	$(BIN)/ruff format --check emotion tests

bench-train: $(STAMP)
	$(BIN)/python -m emotion.bench train $(ARGS)

tensorboard: $(STAMP)
	$(BIN)/tensorboard --logdir outputs

clean:
	rm -rf $(VENV) .pytest_cache
