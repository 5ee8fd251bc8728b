#!/usr/bin/env bash
# Everything CI checks, in order; the last line is the notebook tally. Run through `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} MPLBACKEND=Agg
step() { printf '\n== %s\n' "$*"; }

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

step "README.md is generated from nbs/index.ipynb"
python tools/make_readme.py --check

step "stored outputs were made by the current code (the check itself is tested first)"
python tools/test_tools.py
python tools/outputs.py --check

step "hostile-input suite: bad flags, tampered checkpoints, broken data, full disks, signals (tests/)"
python -m pytest -q -p no:cacheprovider tests

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

step "exercises: every checker accepts its solution and rejects the wrong answers (nbs/solutions)"
python tools/exercise_tally.py

step "nbdev-test on every notebook, the exercise solutions included (2 at a time, one thread each)"
logs=$(mktemp -d)
ls nbs/*.ipynb nbs/solutions/*.ipynb | xargs -P "${TEST_WORKERS:-2}" -I{} bash -c '
  nb={}; log='"$logs"'/$(basename "$nb").log; t=$SECONDS
  if nbdev-test "$nb" >"$log" 2>&1; then r=passed; else r=failed; fi
  printf "%-40s %s (%ss)\n" "$(basename "$nb")" "$r" "$((SECONDS - t))" | tee -a '"$logs"'/results'
passed=$(grep -c ' passed ' "$logs/results" || true); failed=$(grep -c ' failed ' "$logs/results" || true)
for f in $(grep ' failed ' "$logs/results" | cut -d' ' -f1); do printf '\n--- %s\n' "$f"; tail -40 "$logs/$f.log"; done
echo "notebooks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
