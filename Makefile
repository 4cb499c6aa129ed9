# The project's commands. Every target that needs Python creates .venv first.
# Variables: ROWS, COLS, TDC_BITS, SYNC_STAGES (Verilog parameters), SIM (icarus|verilator),
# TEST (cocotb test name), WAVES=1 (dump FST).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BUILD  := build

ROWS        ?= 64
COLS        ?= 64
TDC_BITS    ?= 8
SYNC_STAGES ?= 2
SIM         ?= icarus
TEST        ?=
WAVES       ?= 0

.PHONY: all venv test demo verilog lint docs sim waves characterize clean check-iverilog help

help:
	@echo "make demo          run the main job (end-to-end macro demonstration)"
	@echo "make test          run the whole test suite (JUnit report in build/test-results.xml)"
	@echo "make verilog       write build/rtl/mram_cim.v (ROWS= COLS= TDC_BITS= SYNC_STAGES=)"
	@echo "make lint          verilator --lint-only -Wall and iverilog -g2005 on the generated Verilog"
	@echo "make docs          regenerate docs/registers.md and the C header"
	@echo "make sim           cocotb smoke test or TEST=name on SIM=icarus|verilator (WAVES=1 for an FST)"
	@echo "make waves         open the last FST in GTKWave with the committed save file"
	@echo "make characterize  analog-model characterisation into build/characterize/"

# The venv is rebuilt whenever pyproject.toml changes (the stamp is older than it).
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or newer" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11 or newer is needed ($(PYTHON) is older)" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "error: could not create $(VENV); on Debian install it with: apt-get install python3-venv" >&2; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,apps]'
	@touch $(STAMP)

venv: $(STAMP)

check-iverilog:
	@command -v iverilog >/dev/null || { echo "error: iverilog (Icarus Verilog 11 or newer) is missing; install it with: sudo apt-get install -y iverilog" >&2; exit 1; }
	@command -v c++ >/dev/null || command -v g++ >/dev/null || { echo "error: no C++ compiler for Verilator; install it with: sudo apt-get install -y g++" >&2; exit 1; }

test: $(STAMP) check-iverilog
	@mkdir -p $(BUILD)
	$(PY) -m pytest -q --junitxml=$(BUILD)/test-results.xml

demo: $(STAMP) check-iverilog
	$(PY) -m apps.demo

verilog: $(STAMP)
	$(PY) -m rtl verilog --rows '$(ROWS)' --cols '$(COLS)' --tdc-bits '$(TDC_BITS)' --sync-stages '$(SYNC_STAGES)' --out $(BUILD)/rtl/mram_cim.v

lint: $(STAMP) check-iverilog
	$(PY) -m rtl lint --rows '$(ROWS)' --cols '$(COLS)' --tdc-bits '$(TDC_BITS)' --sync-stages '$(SYNC_STAGES)'

docs: $(STAMP)
	$(PY) -m rtl docs

sim: $(STAMP) check-iverilog
	$(PY) -m tb.run --sim '$(SIM)' --test '$(TEST)' --waves '$(WAVES)'

waves: $(STAMP)
	$(PY) -m tb.waves $(if $(filter command line environment,$(origin SIM)),--sim '$(SIM)')

characterize: $(STAMP)
	$(PY) -m analog_models.characterize --out $(BUILD)/characterize

clean:
	rm -rf $(BUILD)
