"""Every exercise checker accepts its solution and rejects wrong answers: `python tools/exercise_tally.py` (a step of
tools/check.sh, so of `make test`).

Runs the code cells of the solution notebooks, nbs/solutions/*.ipynb, in this process, one fresh namespace per
notebook (a few seconds, nothing is written). Those notebooks assert each verdict with `test_eq`; this script counts
the verdicts from `gpt_nb.exercises.history` and fails unless every registered exercise has at least one solution
accepted and one wrong answer rejected. The last line printed is the tally.
"""

import contextlib, io, os, sys
from collections import Counter
from pathlib import Path

from fastcore.nbio import read_nb

import gpt_nb.exercises as ex

ROOT = Path(__file__).resolve().parent.parent


def run_notebook(path: Path):
    "Execute the code cells of the notebook at `path` in a fresh namespace, in its folder, printing nothing."
    namespace, cwd = {'__name__': '__main__'}, os.getcwd()
    os.chdir(path.parent)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for i, cell in enumerate(read_nb(path).cells):
                if cell.cell_type == 'code':
                    exec(compile(cell.source, f'{path.name} cell {i}', 'exec'), namespace)
    finally:
        os.chdir(cwd)


def tally(results: list) -> tuple[Counter, Counter]:
    "Per exercise: how many check results accepted an answer, and how many (attempted ones) rejected one."
    accepted = Counter(r.exercise for r in results if r.ok)
    rejected = Counter(r.exercise for r in results if r.attempted and not r.ok)
    return accepted, rejected


def main() -> int:
    notebooks = sorted((ROOT / 'nbs' / 'solutions').glob('*.ipynb'))
    for path in notebooks:
        try:
            run_notebook(path)
        except Exception as e:
            print(f'FAIL: {path.relative_to(ROOT)}: {type(e).__name__}: {e}')
            return 1
    accepted, rejected = tally(ex.history)
    problems = [f'{id} has no accepted solution' for id in ex.EXERCISES if not accepted[id]]
    problems += [f'{id} rejects no wrong answer' for id in ex.EXERCISES if not rejected[id]]
    problems += [f'{id} is checked but not registered' for id in (accepted | rejected) if id not in ex.EXERCISES]
    for p in problems:
        print(f'FAIL: {p}')
    print(
        f'exercises: {len(ex.EXERCISES)} checkers; {sum(accepted.values())} solutions accepted, '
        f'{sum(rejected.values())} wrong answers rejected ({len(notebooks)} solution notebooks)'
    )
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
