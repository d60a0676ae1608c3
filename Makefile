# make demo: set up and stylize the Tübingen photo with The Starry Night (out/demo.png)
# make test: set up and run every test (unit tests and all notebooks in quick mode)
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# torch and torchvision are pinned here only because this is the pair available offline;
# pyproject.toml keeps lower bounds so that Colab's preinstalled versions satisfy it.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m nstutils stylize data/content/tubingen_neckarfront.jpg data/style/van_gogh_starry_night.jpg \
		-o out/demo.png --size 512

test: setup
	NSTUTILS_QUICK=1 MPLBACKEND=Agg $(PY) -m pytest

clean:
	rm -rf $(VENV) out
