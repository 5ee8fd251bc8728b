"""Every exercise checker accepts a solution and rejects a wrong answer: `python tools/exercise_tally.py` (a step of
tools/check.sh, so of `make test`).

It reads the solution notebooks, nbs/solutions/*.ipynb, without running them: `nbdev-test` runs every one of them
in the same `make test`, so each verdict they assert is checked there. What this script adds is that those
assertions exist. It finds, in the cells `nbdev-test` runs (the same selection, through nbdev's own
`nb_test_cells`), every top-level statement of the form

    test_eq(check('03.2', attention_by_hand).ok, True)    # a solution, asserted accepted
    test_eq(check('03.2', no_scale).ok, False)            # a wrong answer, asserted rejected

with `check` imported from `gpt_nb.exercises`, and fails unless every registered exercise has at least one of each
and every exercise checked is registered. The last line printed is the tally.
"""

import ast, sys
from collections import Counter
from pathlib import Path

from nbdev.config import get_config
from nbdev.test import nb_test_cells

from gpt_nb.exercises import exercise_list

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / 'nbs' / 'solutions'


def asserted_verdict(statement: ast.stmt) -> tuple[str, bool] | None:
    "(exercise id, expected ok) when `statement` is `test_eq(check('ID', ...).ok, True or False)`, else None."
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return None
    call = statement.value
    if not (
        isinstance(call.func, ast.Name) and call.func.id == 'test_eq' and len(call.args) == 2 and not call.keywords
    ):
        return None
    result, verdict = call.args
    if not (isinstance(result, ast.Attribute) and result.attr == 'ok' and isinstance(result.value, ast.Call)):
        return None
    checked = result.value
    if not (isinstance(checked.func, ast.Name) and checked.func.id == 'check' and len(checked.args) >= 2):
        return None
    exercise_id = checked.args[0]
    if not (isinstance(exercise_id, ast.Constant) and isinstance(exercise_id.value, str)):
        return None
    if not (isinstance(verdict, ast.Constant) and isinstance(verdict.value, bool)):
        return None
    return exercise_id.value, verdict.value


def imports_check(tree: ast.Module) -> bool:
    "Whether the module binds `check` by `from gpt_nb.exercises import check` at its top level."
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == 'gpt_nb.exercises'
        and any(alias.name == 'check' and alias.asname in (None, 'check') for alias in node.names)
        for node in tree.body
    )


def rebinds_check(tree: ast.Module) -> bool:
    "Whether the module defines or assigns a `check` of its own, anywhere (which would not be the library's)."
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == 'check':
            return True
        if isinstance(node, ast.Name) and node.id == 'check' and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, 'module', None) != 'gpt_nb.exercises':
            if any((alias.asname or alias.name) == 'check' for alias in node.names):
                return True
    return False


def notebook_verdicts(path: Path) -> tuple[list[tuple[str, bool]], list[str]]:
    "The verdicts the notebook at `path` asserts in the cells nbdev-test runs, and what is wrong with the notebook."
    skip_flags = get_config().tst_flags.split()
    verdicts, problems, trees = [], [], []
    for index, cell in enumerate(nb_test_cells(path, skip_flags=skip_flags)):
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as error:
            problems.append(f'a code cell ({index} of those nbdev-test runs) does not parse: {error.msg}')
            continue
        trees.append(tree)
        verdicts += [v for statement in tree.body if (v := asserted_verdict(statement))]
    if verdicts and not any(imports_check(tree) for tree in trees):
        problems.append('asserts verdicts of `check` without `from gpt_nb.exercises import check`')
    if any(rebinds_check(tree) for tree in trees):
        problems.append('defines its own `check`, so its verdicts are not the library checkers\'')
    return verdicts, problems


def main() -> int:
    registered = [exercise_id for exercise_id, _, _ in exercise_list()]
    notebooks = sorted(SOLUTIONS.glob('*.ipynb'))
    accepted, rejected, problems = Counter(), Counter(), []
    for path in notebooks:
        verdicts, notebook_problems = notebook_verdicts(path)
        problems += [f'{path.relative_to(ROOT)}: {problem}' for problem in notebook_problems]
        accepted.update(exercise_id for exercise_id, ok in verdicts if ok)
        rejected.update(exercise_id for exercise_id, ok in verdicts if not ok)
    problems += [
        f'{exercise_id} has no solution asserted accepted' for exercise_id in registered if not accepted[exercise_id]
    ]
    problems += [
        f'{exercise_id} has no wrong answer asserted rejected'
        for exercise_id in registered
        if not rejected[exercise_id]
    ]
    checked = sorted(accepted | rejected)
    problems += [
        f'{exercise_id} is checked but not registered' for exercise_id in checked if exercise_id not in registered
    ]
    for problem in problems:
        print(f'FAIL: {problem}')
    print(
        f'exercises: {len(registered)} checkers; {sum(accepted.values())} solutions asserted accepted, '
        f'{sum(rejected.values())} wrong answers asserted rejected, in {len(notebooks)} solution notebooks '
        '(nbdev-test runs them)'
    )
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
