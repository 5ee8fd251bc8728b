"""Checks that the repository's checks can fail: `python tools/test_tools.py` (a step of tools/check.sh, so of `make test`).

Works on a copy of the notebooks and the library in a temporary folder and takes a few seconds: nothing is executed.
"""

import json, shutil, subprocess, sys, tempfile
from pathlib import Path

import outputs

ROOT = outputs.ROOT


def outputs_check(root: Path) -> subprocess.CompletedProcess:
    "`tools/outputs.py --check` on the repository copy at `root`, as check.sh runs it on the real one."
    return subprocess.run(
        [sys.executable, ROOT / 'tools' / 'outputs.py', '--check', '--root', root], capture_output=True, text=True
    )


def edit_cell(path: Path, cell_type: str, change):
    "Apply `change` to the first `cell_type` cell of the notebook at `path`."
    nb = outputs.read(path)
    change(next(c for c in nb['cells'] if c['cell_type'] == cell_type))
    path.write_text(json.dumps(nb), encoding='utf-8')


def test_outputs_check(root: Path):
    "Fingerprinted notebooks pass `--check` and survive nbdev-clean; a code edit makes exactly the affected ones stale."
    shutil.copytree(ROOT / 'gpt_nb', root / 'gpt_nb', ignore=shutil.ignore_patterns('__pycache__'))
    for nb in outputs.notebooks(ROOT):
        (root / nb.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(nb, root / nb.relative_to(ROOT))
    library, nbs = outputs.library_digest(root), outputs.notebooks(root)
    for nb in nbs:
        outputs.stamp(nb, library)  # what `make outputs` does once a notebook has run
    stamped = {nb: nb.read_text(encoding='utf-8') for nb in nbs}
    subprocess.run([Path(sys.executable).with_name('nbdev-clean'), '--fname', root / 'nbs'], cwd=ROOT, check=True)
    for nb, text in stamped.items():
        assert nb.read_text(encoding='utf-8') == text, f'nbdev-clean changed {nb.name}'

    res = outputs_check(root)
    assert res.returncode == 0 and f'{len(nbs)} notebooks fresh, 0 stale' in res.stdout, res.stdout + res.stderr

    edit_cell(nbs[0], 'markdown', lambda c: c.update(source=''.join(c['source']) + '\nMore prose.'))  # still fresh
    edit_cell(nbs[0], 'code', lambda c: c.update(outputs=[]))  # still fresh
    edit_cell(nbs[1], 'code', lambda c: c.update(source=''.join(c['source']) + '\n# an edit'))  # stale
    res = outputs_check(root)
    stale = f'{nbs[1].relative_to(root)}: outputs were made by other code; run `make outputs`'
    assert res.returncode == 1 and res.stdout.splitlines() == [
        stale,
        f'outputs: {len(nbs) - 1} notebooks fresh, 1 stale',
    ], res.stdout

    library_file = root / 'gpt_nb' / 'attention.py'
    library_file.write_text(library_file.read_text(encoding='utf-8') + '# one more line\n', encoding='utf-8')
    res = outputs_check(root)
    assert res.returncode == 1 and f'0 notebooks fresh, {len(nbs)} stale' in res.stdout, res.stdout
    for nb in nbs:
        assert f'{nb.relative_to(root)}: outputs were made by other code' in res.stdout, res.stdout


if __name__ == '__main__':
    with tempfile.TemporaryDirectory() as tmp:
        test_outputs_check(Path(tmp))
    print('tools: outputs.py --check passes on fresh outputs and fails naming the notebooks a code edit makes stale')
