# make report  -> reports/report.html from the default corpus (sets everything up itself)
# make test    -> the test suite
# make help    -> every target

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

DEFAULT_DATA := data/shakespeare.txt
DATA   ?= $(DEFAULT_DATA)
OUT    ?= reports
PARAMS ?=
SWEEP  ?= sweeps/example.yaml
SCHEDULER ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv data test report pdf notebook lab bench sweep clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'
	@echo "  variables: DATA=$(DATA) OUT=$(OUT) PARAMS='-p eta 0.05 -p m 200' SWEEP=$(SWEEP) SCHEDULER=tcp://host:8786"

venv: $(STAMP)  ## create .venv and install the pinned dependencies

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

data: $(DEFAULT_DATA)  ## get the default corpus (Shakespeare's tragedies, public domain)

$(DEFAULT_DATA): | $(STAMP)
	$(PY) -m rnn.corpus $@

test: $(STAMP)  ## run the test suite
	$(PY) -m pytest $(PYTEST_ARGS)

report: $(STAMP) $(DEFAULT_DATA)  ## train and render $(OUT)/report.html (DATA=, OUT=, PARAMS=, RETRAIN=1)
	$(PY) -m rnn.build --data $(DATA) --out $(OUT) $(if $(RETRAIN),--retrain) $(PARAMS)

pdf: report  ## print $(OUT)/report.html to $(OUT)/report.pdf, A4 (PAPER=letter for US Letter)
	$(PY) -m rnn.build --pdf-only --out $(OUT) --paper $(or $(PAPER),a4)

notebook: $(STAMP) $(DEFAULT_DATA)  ## open the notebooks in Jupyter Notebook (--allow-root as root)
	$(VENV)/bin/jupyter notebook $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

lab: $(STAMP) $(DEFAULT_DATA)  ## open the notebooks in JupyterLab (--allow-root as root)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

bench: $(STAMP) $(DEFAULT_DATA)  ## measure training speed and memory; writes bench/results/bench.json
	$(PY) bench/bench.py --data $(DEFAULT_DATA) --json bench/results/bench.json

sweep: $(STAMP) $(DEFAULT_DATA)  ## run a hyperparameter sweep (SWEEP=file.yaml, SCHEDULER=tcp://...)
	$(PY) -m rnn.sweep $(SWEEP) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

clean:  ## remove .venv (reports/ and data/ are kept)
	rm -rf $(VENV)
