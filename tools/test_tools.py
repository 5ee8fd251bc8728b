"""Checks that the repository's checks can fail: `python tools/test_tools.py` (a step of tools/check.sh, so of
`make test`).

Works in a temporary folder and takes a few seconds: `outputs.py --check` on a copy of the notebooks and the library
(nothing is executed), check.sh's notebook tally on three one-cell notebooks made for it, and `check_layout.py` on a
small made-up library.
"""

import json, os, shutil, subprocess, sys, tempfile
from pathlib import Path

import check_layout
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


def write_notebook(path: Path, source: str):
    "A notebook of one code cell, `source`, at `path`."
    cell = dict(cell_type='code', execution_count=None, id='probe', metadata={}, outputs=[], source=source)
    kernel = dict(display_name='python3', language='python', name='python3')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(cells=[cell], metadata=dict(kernelspec=kernel), nbformat=4, nbformat_minor=5)))


def notebook_tally(folder: Path) -> subprocess.CompletedProcess:
    "`tools/check.sh notebooks FOLDER`: check.sh's last step (nbdev-test and the tally) on the notebooks in `folder`."
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ['PATH']])  # where nbdev-test is installed
    command = ['bash', ROOT / 'tools' / 'check.sh', 'notebooks', folder]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, 'PATH': path})


def test_notebook_tally(root: Path):
    "The tally counts every notebook nbdev-test runs, subfolders included, and shows each failure's own traceback."
    write_notebook(root / 'nbs' / 'passes.ipynb', 'assert 1 + 1 == 2')
    write_notebook(root / 'nbs' / 'solutions' / 'passes_too.ipynb', 'answer = 42')
    res = notebook_tally(root / 'nbs')
    assert res.returncode == 0 and res.stdout.splitlines()[-1] == 'notebooks: 2 passed, 0 failed', res.stdout

    write_notebook(root / 'nbs' / 'solutions' / 'fails.ipynb', "raise ValueError('the probe fails here')")
    res = notebook_tally(root / 'nbs')
    lines = res.stdout.splitlines()
    assert res.returncode == 1 and lines[-1] == 'notebooks: 2 passed, 1 failed', res.stdout + res.stderr
    shown = '\n'.join(lines[lines.index('--- fails.ipynb') :])
    assert 'ValueError: the probe fails here' in shown, res.stdout


def test_layout_check(root: Path):
    "check_layout passes a library whose imports follow the sidebar, and names each way of breaking it."
    (root / 'nbs').mkdir()
    (root / 'gpt_nb').mkdir()
    sidebar = {
        'website': {
            'sidebar': {
                'contents': [
                    '1_one.ipynb',
                    '2_two.ipynb',
                    {'section': check_layout.APPENDIX, 'contents': ['A_extra.ipynb']},
                ]
            }
        }
    }
    (root / 'nbs' / 'sidebar.yml').write_text(json.dumps(sidebar))  # JSON is YAML
    notebooks = {'one': '1_one', 'two': '2_two', 'extra': 'A_extra'}  # name order = reading order
    for module, notebook in notebooks.items():
        write_notebook(root / 'nbs' / f'{notebook}.ipynb', f'#| default_exp {module}')
    (root / 'CONTRIBUTING.md').write_text(f'{check_layout.MAP_START}\n{check_layout.MAP_END}\n')
    modules = {  # the appendix (extra) may be imported by any chapter and may import any chapter
        'one': '"""The first."""\nimport math\n',
        'two': '"""The second."""\nfrom . import extra\nfrom .one import x\n',
        'extra': '"""The appendix."""\nimport gpt_nb.one\n',
    }

    def problems(**changes) -> list[str]:
        for name, source in {**modules, **changes}.items():
            (root / 'gpt_nb' / f'{name}.py').write_text(source)
        return check_layout.check(root)

    problems()
    check_layout.check(root, write_map=True)  # the map of the good library
    assert problems() == [], problems()
    later = problems(one='"""The first."""\nfrom .two import y\n')
    assert any('imports gpt_nb.two (2_two.ipynb), a later chapter' in p for p in later), later
    assert any('import cycle' in p for p in later), later
    hidden = problems(two='"""The second."""\ndef f():\n    from . import one\n')
    assert any('inside a block' in p for p in hidden), hidden
    long = problems(two='"""The second."""\n' + 'x = 1\n' * (check_layout.MAX_LINES + 1))
    assert any('more than 300' in p for p in long) and any('map of the library is out of date' in p for p in long)
    wide = problems(two='"""The second."""\nx = ' + '1 + ' * 40 + '1\n')
    assert any('columns long' in p for p in wide), wide
    write_notebook(root / 'nbs' / '1_one.ipynb', '#| default_exp one\nfrom gpt_nb.two import y')
    ahead = problems()
    assert any('nbs/1_one.ipynb uses gpt_nb.two (2_two.ipynb), a later chapter' in p for p in ahead), ahead
    (root / 'nbs' / '1_one.ipynb').rename(root / 'nbs' / '9_one.ipynb')  # now listed before a name that sorts first
    sidebar['website']['sidebar']['contents'][0] = '9_one.ipynb'
    (root / 'nbs' / 'sidebar.yml').write_text(json.dumps(sidebar))
    assert any('not listed in the order of their names' in p for p in problems())


if __name__ == '__main__':
    with tempfile.TemporaryDirectory() as tmp:
        test_outputs_check(Path(tmp))
    print('tools: outputs.py --check passes on fresh outputs and fails naming the notebooks a code edit makes stale')
    with tempfile.TemporaryDirectory() as tmp:
        test_notebook_tally(Path(tmp))
    print("tools: check.sh's notebook tally counts what nbdev-test runs and shows each failure's traceback")
    with tempfile.TemporaryDirectory() as tmp:
        test_layout_check(Path(tmp))
    print('tools: check_layout.py names imports of later chapters, imports inside functions, cycles, long modules')
