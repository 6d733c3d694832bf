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

.PHONY: demo test lint browser dicom-tools clean-venv

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

# Debian's Orthanc with its DICOMweb plugin (the round-trip tests) and dicom3tools' dciodvfy (the
# validity tests); each test skips with a reason when they are absent.
DICOMWEB_PLUGIN := $(wildcard /usr/share/orthanc/plugins/libOrthancDicomWeb.so*)
dicom-tools:
	@if [ -x /usr/sbin/Orthanc ] && [ -n "$(DICOMWEB_PLUGIN)" ] && command -v dciodvfy >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb dicom3tools >/dev/null; } || echo "could not install orthanc, orthanc-dicomweb, dicom3tools: the DICOMweb and dciodvfy tests will be skipped"; \
	else echo "orthanc, orthanc-dicomweb or dicom3tools not installed: the DICOMweb and dciodvfy tests will be skipped"; fi

test: $(BIN)/.installed browser dicom-tools
	$(BIN)/pytest -q -p no:cacheprovider

# lint-imports: the layer contract in pyproject.toml ([tool.importlinter]; each layer imports only below it)
lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

clean-venv:
	rm -rf $(VENV)
