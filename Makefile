# make demo: set up and stylize the Tübingen photo with The Starry Night (out/demo.png)
# make learner: write notebooks/ (the learner's versions) from solutions/
# make test: set up and run every test (unit tests and all notebooks in quick mode), then the
#   Colab rehearsal (test-colab): every notebook from its real install cell in a Colab-like venv
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
VENVC := .venv-colab
PYC := $(VENVC)/bin/python
# torch is pinned here, not in pyproject.toml (lower bounds only, so that Colab's preinstalled
# torch satisfies it): 2.13.0 has a CPU-only build on this machine's disk, about 1 GB installed
# against about 6 GB for the CUDA build PyPI serves for Linux, and it runs the 512 px demo as
# fast with the same loss. nstutils does not use torchvision. Override with `make TORCH=...`.
TORCH ?= torch==2.13.0

.PHONY: setup demo test test-colab learner clean

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

# make learner: regenerate the learner's notebooks/ from the worked solutions/ (the source of truth)
learner: setup
	$(PY) scripts/make_learner.py

test: setup
	NSTUTILS_QUICK=1 MPLBACKEND=Agg $(PY) -m pytest
	$(MAKE) test-colab

# Colab's runtime has its own torch, not our pin: the newest this machine's pip installs (2.15.0
# is listed on PyPI but pip here is capped at 2.14.1, which lies on disk; a CUDA build, as Colab's).
COLAB_TORCH ?= torch==2.14.1
# What Colab has preinstalled that the notebooks use (plus the test harness, pytest and nbval).
# Nothing of the course: the notebooks' own setup cells must install the rest.
COLAB_PREINSTALLED := "ipywidgets==7.7.1" matplotlib scipy numpy pillow tqdm ipykernel pytest nbval

$(VENVC)/.installed: Makefile
	rm -rf $(VENVC)
	$(PYTHON) -m venv $(VENVC)
	$(PYC) -m pip install -q --upgrade pip
	$(PYC) -m pip install -q $(COLAB_TORCH) $(COLAB_PREINSTALLED)
	$(PYC) -m pip freeze > $(VENVC)/preinstalled.txt  # each notebook's rehearsal starts from this
	touch $@

# Every notebook from its real first cell (clone, pip install, cd) in the Colab-like venv, then
# the widget tests there with ipywidgets 7.7.1 against the course as the notebooks installed it.
# addopts is cleared for the widget tests because it holds nbval's options.
test-colab: $(VENVC)/.installed
	scripts/colab_rehearsal.sh $(abspath $(PYC))
	MPLBACKEND=Agg $(PYC) -m pytest -p no:nbval -p no:cacheprovider -o addopts="" \
		-W ignore::DeprecationWarning tests/test_widgets.py

clean:
	rm -rf $(VENV) $(VENVC) out
