"""Re-execute the notebooks so that their stored outputs are the ones the current code makes, and check that they are.

    python tools/outputs.py                      # execute every notebook in nbs/ (2 at a time), then fingerprint it
    python tools/outputs.py nbs/03_attention.ipynb --flags slow   # one notebook, its `#| slow` cells included
    python tools/outputs.py --check              # execute nothing: fail naming each notebook whose outputs are stale

A notebook runs as `nbdev-test --save` runs it: execnb's CaptureShell, one thread, in the notebook's folder, the cells
flagged with pyproject's `tst_flags` (notest slow gpu demo) skipped and keeping their stored outputs unless
`--flags` names them. A notebook that fails is left as it was. One that passes is cleaned as `nbdev-clean` cleans it
and gets a fingerprint in its metadata: the sha256 of the library (gpt_nb/*.py but the generated _modidx.py, and
gpt_nb/assets/) and of its own code cells. Any edit to either makes the stored outputs stale. Run `nbdev-export` first.
"""

import argparse, hashlib, json, os, sys, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# where a notebook's metadata keeps its fingerprint; pyproject's allowed_metadata_keys keeps it from nbdev-clean
KEY, FIELD = 'gpt_nb', 'outputs_sha256'


def _update(digest, data: bytes):
    "Feed `data` to the hash `digest`, length first, so that no two sequences of parts hash alike."
    digest.update(len(data).to_bytes(8, 'big') + data)


def library_digest(root: Path) -> str:
    "sha256 of the library's sources and package data: file names and bytes, in sorted order."
    library = root / 'gpt_nb'
    sources = [path for path in library.glob('*.py') if path.name != '_modidx.py']
    assets = [path for path in library.glob('assets/**/*') if path.is_file()]
    digest = hashlib.sha256()
    for path in sorted(sources + assets):
        _update(digest, path.relative_to(library).as_posix().encode())
        _update(digest, path.read_bytes())
    return digest.hexdigest()


def fingerprint(nb: dict, library: str) -> str:
    "sha256 of the library digest and the notebook's code cells' sources (not their outputs, not the markdown)."
    digest = hashlib.sha256(library.encode())
    for cell in nb['cells']:
        if cell['cell_type'] == 'code':
            _update(digest, ''.join(cell['source']).encode())
    return digest.hexdigest()


def notebooks(root: Path) -> list[Path]:
    "The notebooks in nbs/ and its subfolders, less those in folders starting with `_` or `.`, as nbdev skips them."
    nbs = root / 'nbs'
    found = [*nbs.glob('*.ipynb'), *nbs.glob('*/*.ipynb')]
    return sorted(path for path in found if not path.parent.name.startswith(('_', '.')))


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding='utf-8'))


def stamp(path: Path, library: str):
    "Clean the notebook at `path` as `nbdev-clean` does, then store its fingerprint in its metadata."
    from fastcore.nbio import write_nb
    from nbdev.clean import _nbdev_clean  # nbdev-clean's own per-notebook step, with this project's settings

    nb = read(path)
    _nbdev_clean(nb)
    nb['metadata'][KEY] = {FIELD: fingerprint(nb, library)}
    write_nb(nb, path)


def execute(path: Path, flags: str, library: str) -> tuple[bool, float]:
    "Run the notebook at `path` as `nbdev-test --save` does and fingerprint it if it passes (in a worker process)."
    from nbdev.config import get_config
    from nbdev.test import test_nb

    config, start = get_config(), time.time()
    passed, _ = test_nb(
        path,
        skip_flags=config.tst_flags.split(),
        force_flags=flags.split(),
        basepath=config.config_path,
        save=True,
        cell_timeout=config.cell_timeout or None,
    )
    if passed:
        stamp(path, library)
    return passed, time.time() - start


def run(paths: list[Path], root: Path, flags: str, jobs: int) -> bool:
    "Execute `paths`, `jobs` at a time, each in a fresh process; report each and say whether all passed."
    library = library_digest(root)  # taken before running: a library edited meanwhile leaves the notebooks stale
    failed = []
    with ProcessPoolExecutor(jobs, mp_context=get_context('spawn'), max_tasks_per_child=1) as pool:
        runs = {pool.submit(execute, path, flags, library): path for path in paths}
        for done in as_completed(runs):
            name = runs[done].relative_to(root)
            passed, seconds = done.result()
            print(
                f'{name}: ' + (f'outputs stored ({seconds:.0f}s)' if passed else 'FAILED, left as it was'), flush=True
            )
            if not passed:
                failed.append(name)
    print(f'outputs: {len(paths) - len(failed)} notebooks executed, {len(failed)} failed')
    return not failed


def check(paths: list[Path], root: Path) -> bool:
    "Print each notebook whose stored fingerprint is not the one its code gives now, then the tally; True if none."
    library, stale = library_digest(root), 0
    for path in paths:
        nb = read(path)
        stored = nb['metadata'].get(KEY, {}).get(FIELD)
        if stored == fingerprint(nb, library):
            continue
        stale += 1
        why = 'have no fingerprint' if stored is None else 'were made by other code'
        print(f'{path.relative_to(root)}: outputs {why}; run `make outputs`')
    print(f'outputs: {len(paths) - stale} notebooks fresh, {stale} stale')
    return not stale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('notebooks', nargs='*', type=Path, help='notebooks to run or check (default: all of nbs/)')
    parser.add_argument('--check', action='store_true', help='execute nothing; fail if any stored outputs are stale')
    parser.add_argument('--flags', default='', help='space-separated test flags whose cells also run, e.g. "slow"')
    parser.add_argument('-j', '--jobs', type=int, default=2, help='notebooks executed at once (default 2)')
    parser.add_argument('--root', type=Path, default=ROOT, help='the repository (default: this one)')
    args = parser.parse_args(argv)
    root = args.root.resolve()
    paths = [path.resolve() for path in args.notebooks] or notebooks(root)
    if missing := [str(path) for path in paths if path.suffix != '.ipynb' or not path.is_file()]:
        parser.error(f'not notebooks: {missing}')
    if outside := [str(path) for path in paths if not path.is_relative_to(root)]:
        parser.error(f'not in --root {root}: {outside}')
    if args.check:
        return check(paths, root)
    os.environ.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', MPLBACKEND='Agg')  # the workers inherit these
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.chdir(root)  # where nbdev finds pyproject.toml
    return run(paths, root, args.flags, args.jobs)


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
