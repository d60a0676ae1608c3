#!/usr/bin/env bash
# Rehearse what a learner's Colab runtime does with each notebook, minus the network.
#
# Usage: scripts/colab_rehearsal.sh PYTHON [NOTEBOOK ...]    (make test-colab builds PYTHON's venv)
#
# PYTHON belongs to a fresh environment shaped like Colab's: a preinstalled torch that is not the
# Makefile's pin, ipywidgets 7.7.1, matplotlib, scipy, and no nstutils. For each notebook (default:
# all of notebooks/), google.colab is importable and imported at start-up (tests/colab), the
# install cell's address points at a clone of this repository's HEAD (NST_COURSE_REPO), and the
# whole notebook runs under nbval in quick mode: the real first cell clones, installs the course
# (not editable) with its extras and changes directory to the clone. A notebook that needs a
# package the install cell does not install fails here. Each notebook starts from a clean slate
# (no /content/nst-course, no nst-course installed), like a new Colab runtime.
# It tests what is committed: uncommitted changes are not in the clone.
set -euo pipefail
PY=${1:?usage: colab_rehearsal.sh PYTHON [NOTEBOOK ...]}
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLONE=/content/nst-course   # where the notebooks' setup cell puts the course, as in Colab
cd "$ROOT"
if [ $# -eq 0 ]; then set -- notebooks/[0-9][0-9]_*.ipynb; fi
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "note: uncommitted changes are not rehearsed (the notebooks install the course from HEAD)"
fi
"$PY" -c "import torch, ipywidgets, sys; print('rehearsal: python', sys.version.split()[0], '| torch', torch.__version__, '| ipywidgets', ipywidgets.__version__)"
failed=()
# What the environment held before any notebook ran (make test-colab writes it): each notebook
# starts from exactly that, so a package one notebook's install cell brought cannot help the next.
BASELINE="$(dirname "$PY")/../preinstalled.txt"
[ -f "$BASELINE" ] || "$PY" -m pip freeze --exclude-editable > "$BASELINE"
reset_env() {
    local extra
    extra=$("$PY" -m pip freeze | grep -v -x -F -f "$BASELINE" | sed -e 's/[ =@].*//' || true)
    if [ -n "$extra" ]; then "$PY" -m pip uninstall -q -y $extra >/dev/null; fi
}
for nb in "$@"; do
    rm -rf "$CLONE"
    reset_env
    echo "=== $nb"
    if ! PYTHONPATH="$ROOT/tests/colab" NST_COURSE_REPO="file://$ROOT" NSTUTILS_QUICK=1 MPLBACKEND=Agg \
            "$PY" -m pytest -p no:cacheprovider "$nb"; then
        failed+=("$nb")
    fi
done
rm -rf "$CLONE"
if [ ${#failed[@]} -gt 0 ]; then
    echo "Colab rehearsal failed: ${failed[*]}"
    exit 1
fi
echo "Colab rehearsal passed: $# notebooks"
