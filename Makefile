# make demo: set up and stylize the Tübingen photo with The Starry Night (out/demo.png)
# make test: set up and run every test (unit tests and all notebooks in quick mode), then
#   the widget tests again with ipywidgets 7.7.1 (Colab's version) in a second venv
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
VENV7 := .venv-w7
PY7 := $(VENV7)/bin/python
# torch is pinned here, not in pyproject.toml (lower bounds only, so that Colab's preinstalled
# torch satisfies it): 2.13.0 has a CPU-only build on this machine's disk, about 1 GB installed
# against about 6 GB for the CUDA build PyPI serves for Linux, and it runs the 512 px demo as
# fast with the same loss. nstutils does not use torchvision. Override with `make TORCH=...`.
TORCH ?= torch==2.13.0

.PHONY: setup demo test test-widgets7 clean

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
	$(MAKE) test-widgets7

$(VENV7)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV7)
	$(PY7) -m pip install -q --upgrade pip
	$(PY7) -m pip install -q $(TORCH)
	$(PY7) -m pip install -q -e ".[dev]" "ipywidgets==7.7.1"
	touch $@

# The widget tests with ipywidgets 7.7.1; addopts is cleared because it holds nbval's options.
test-widgets7: $(VENV7)/.installed
	$(PY7) -c "import ipywidgets; print('ipywidgets', ipywidgets.__version__)"
	MPLBACKEND=Agg $(PY7) -m pytest -p no:nbval -p no:cacheprovider -o addopts="" \
		-W ignore::DeprecationWarning tests/test_widgets.py

clean:
	rm -rf $(VENV) $(VENV7) out
