#!/usr/bin/env bash
# Everything CI checks, in order; the last line is the notebook tally. Run through `make test`.
#   bash tools/check.sh                      every step
#   bash tools/check.sh notebooks [FOLDER]   only the last: nbdev-test on the notebooks under FOLDER (default: nbs)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} MPLBACKEND=Agg
step() { printf '\n== %s\n' "$*"; }

# nbdev-test's own parallel runner on every notebook under $1 (its subfolders included), TEST_WORKERS (2) at a time.
# The tally counts the notebooks nbdev-test finds (its own nbglob) against those it names as failed; each failure's
# traceback is shown. The last line printed is `notebooks: N passed, M failed`; the status is 1 if any failed.
test_notebooks() {
  local folder=$1 log found failures rc=0 name block
  local -a names
  found=$(python - "$folder" <<'EOF'
import sys
from nbdev.doclinks import nbglob
# what nbdev-test runs: nbglob's notebooks (no `_` or `.` folders), less those beside a .notest file
print(sum(not (path.parent / '.notest').exists() for path in nbglob(sys.argv[1], as_path=True)))
EOF
)
  if [ "$found" -eq 0 ]; then
    echo "no notebooks under $folder"
    echo "notebooks: 0 passed, 0 failed"
    return 1
  fi
  log=$(mktemp)
  nbdev-test "$folder" --n-workers "${TEST_WORKERS:-2}" --timing >"$log" 2>&1 || rc=$?
  # on failure nbdev-test ends with this header, a fence, then one tab-indented notebook name a line
  mapfile -t names < <(sed -n '/^nbdev Tests Failed On The Following Notebooks:$/,$p' "$log" | sed -n 's/^\t//p')
  failures=${#names[@]}
  if [ "$rc" -eq 0 ]; then
    cat "$log"  # `Success.` and each notebook's seconds, slowest first
  elif [ "$failures" -eq 0 ]; then
    printf 'nbdev-test exited %s without naming a failing notebook, so none counts as passed; its last lines:\n' "$rc"
    tail -40 "$log"
    failures=$found
  fi
  for name in "${names[@]}"; do
    # execnb's report of a failing cell starts `ErrorType in /path/to/NAME.ipynb:` and runs to the next report
    block=$(awk -v tail="/$name:" '
      /^[A-Za-z_][A-Za-z0-9_]* in .*\.ipynb:$/ { inside = substr($0, length($0) - length(tail) + 1) == tail }
      /^nbdev Tests Failed On The Following Notebooks:$/ { inside = 0 }
      inside' "$log")
    printf '\n--- %s\n' "$name"
    if [ -n "$block" ]; then tail -40 <<<"$block"; else tail -40 "$log"; fi
  done
  rm -f "$log"
  echo "notebooks: $((found - failures)) passed, $failures failed"
  [ "$failures" -eq 0 ]
}

if [ "${1:-}" = notebooks ]; then
  test_notebooks "${2:-nbs}"
  exit
fi

step "nbdev-export and nbdev-clean leave the tree unchanged"
snapshot() { git status --porcelain; git diff; }
before=$(snapshot)
nbdev-export
nbdev-clean
if [ "$before" != "$(snapshot)" ]; then
  echo "FAIL: the library or the notebooks were out of sync (run nbdev-export and nbdev-clean, then commit):"
  git status --short; exit 1
fi
echo ok

step "ruff check: no findings in the library, the tools, the benchmarks, the tests and the examples"
ruff check gpt_nb tools benchmarks tests examples

step "ruff format: the notebooks (the library's source; gpt_nb/ is generated from them) and the scripts are formatted"
ruff format --check nbs tools benchmarks tests examples

step "layout: imports follow the reading order of nbs/sidebar.yml, no cycles, every module short"
python tools/check_layout.py

step "README.md is generated from nbs/index.ipynb"
python tools/make_readme.py --check

step "stored outputs were made by the current code (the checks themselves are tested first)"
python tools/test_tools.py
python tools/outputs.py --check

step "hostile-input suite: bad flags, tampered checkpoints, broken data, full disks, signals (tests/; the GPU tests skip)"
python -m pytest -q -p no:cacheprovider tests

step "browser: JupyterLab in Chromium runs chapters 00, 06 and 08 from its menu and uses both widgets"
python tools/browser_check.py

step "docs pre-render (refresh_quarto_yml, nbdev_sidebar, proc_nbs)"
python tools/check_docs.py

step "wheel builds and works in a clean virtual environment"
rm -rf dist && python -m build --wheel --outdir dist . >/dev/null
venv=$(mktemp -d)
python -m venv "$venv"
"$venv/bin/pip" install -q "${TORCH:-torch==2.13.0}" dist/*.whl
(cd "$venv" && "$venv/bin/python" -c "import importlib, pkgutil, gpt_nb; [importlib.import_module(f'gpt_nb.{m.name}') for m in pkgutil.iter_modules(gpt_nb.__path__)]; print('import gpt_nb', gpt_nb.__version__)"
 "$venv/bin/python" -c "import importlib.util as u; assert not (u.find_spec('nbdev') or u.find_spec('jupyterlab')), 'dev-only packages leaked into the runtime install'"
 "$venv/bin/gpt-nb-quickstart" --max-new-tokens 8
 "$venv/bin/gpt-nb-generate-text" --pretrained tinystories --max-new-tokens 24 --seed 0)   # the packaged model and stories
rm -rf "$venv"

step "exercises: every checker accepts its solution and rejects the wrong answers"
python tools/exercise_tally.py

step "nbdev-test on every notebook, the exercise solutions (nbs/solutions) included, 2 at a time, one thread each"
test_notebooks nbs
