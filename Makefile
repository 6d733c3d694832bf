# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv, install chestxai (runtime only, no dev extras), run the quickstart
#   make test   - create .venv with the dev extras, run the test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Offline machines: use a local PneumoniaMNIST copy when one sits beside the checkout.
SHARED_PNEUMONIAMNIST := $(abspath ../shared/data/pneumoniamnist)
ifeq ($(CHESTXAI_DOWNLOADS),)
ifneq ($(wildcard $(SHARED_PNEUMONIAMNIST)/pneumoniamnist.npz),)
export CHESTXAI_DOWNLOADS := $(SHARED_PNEUMONIAMNIST)
endif
endif

.PHONY: demo test lint browser clean-venv

# The dev stack (tests, lint, browser, mlflow, torchxrayvision: ~6.8 GB) is for `make test`/`lint`;
# the demo needs only the runtime install, stamped separately so it never pulls the dev extras.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

$(BIN)/.installed-demo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

demo: $(BIN)/.installed-demo
	$(BIN)/chestxai quickstart

# Debian's chromium renders report.html in the browser test (skipped with a reason when absent).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: browser tests will be skipped"; }

test: $(BIN)/.installed browser
	$(BIN)/pytest -q -p no:cacheprovider

# lint-imports: the layer contract in pyproject.toml ([tool.importlinter]; each layer imports only below it)
lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

clean-venv:
	rm -rf $(VENV)
