"""The docs pre-render stage of `nbdev-docs`, which runs everywhere (Quarto itself is only needed to render).

    python tools/check_docs.py

Refreshes the Quarto config, then processes every notebook the way the site build does and checks each one
produced its page source in `_proc/`, and that the page shows the source of every definition the chapter teaches.
nbdev 3 replaces a `#| export` cell by the `show_doc` signatures of its definitions, so its code is not on the page;
a `#| exports` cell gets the same signatures followed by its code, folded open under "Exported source"."""

import ast, os, warnings
from pathlib import Path

from fastcore.nbio import read_nb
from nbdev.config import get_config
from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
from nbdev.serve import proc_nbs

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def is_plumbing(node: ast.AST) -> bool:
    """Whether a top-level definition may keep its source off the site: the one allowlist rule of this check.

    Every public function and class of a chapter's `#| export` and `#| exports` cells is taught, except:
    private names (a leading underscore), command-line entry points (`*_main`), argument-parser builders (named
    `*_parser`, or calling `ArgumentParser`), functions that check command-line arguments (they take the `parser`)
    and widget builders (they import ipywidgets). `#| exporti` cells are plumbing as a whole."""
    calls = {ast.unparse(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    modules = {a.name for n in ast.walk(node) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(node) if isinstance(n, ast.ImportFrom) and n.module}
    arguments = {a.arg for a in node.args.args} if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else set()
    return (
        node.name.startswith('_')
        or node.name.endswith(('_main', '_parser'))
        or 'parser' in arguments
        or bool(calls & {'ArgumentParser', 'argparse.ArgumentParser'})
        or any(m.split('.')[0] == 'ipywidgets' for m in modules)
    )


def taught(nb) -> list:
    "What a source notebook teaches: the top-level functions and classes of its exported cells, less plumbing."
    return [
        node
        for cell in nb.cells
        if cell.cell_type == 'code' and cell.directives.keys() & {'export', 'exports'}
        for node in cell.parsed_() or []
        if isinstance(node, DEFINITIONS) and not is_plumbing(node)
    ]


def shown(nb) -> set[str]:
    """The top-level definitions (as `ast.dump`s) whose code a processed notebook shows: those of its code cells
    not marked `echo: false` or `include: false`."""
    return {
        ast.dump(node)
        for cell in nb.cells
        if cell.cell_type == 'code' and 'false' not in (cell.directives.get('echo'), cell.directives.get('include'))
        for node in cell.parsed_() or []
        if isinstance(node, DEFINITIONS)
    }


def hidden_sources(notebooks: list[str], nbs: Path, proc: Path) -> list[str]:
    "Print each notebook's tally of taught definitions and those shown with source; one line per notebook lacking some."
    lacking = []
    for name in notebooks:
        definitions = taught(read_nb(nbs / name))
        on_page = shown(read_nb(proc / name))
        hidden = [node.name for node in definitions if ast.dump(node) not in on_page]
        print(f'{name}: {len(definitions)} definitions, {len(definitions) - len(hidden)} with source')
        if hidden:
            lacking.append(f'{name}: {", ".join(hidden)}')
    return lacking


if __name__ == '__main__':
    os.chdir(Path(__file__).resolve().parent.parent)
    # the docs build re-runs every cell with an import: one that also computes would run its work again
    warnings.filterwarnings('error', message='Found cells containing imports and other code')
    nbs = get_config().nbs_path
    refresh_quarto_yml()
    nbdev_sidebar()
    proc = proc_nbs(force=True, n_workers=0)
    notebooks = sorted(str(path.relative_to(nbs)) for path in [*nbs.glob('*.ipynb'), *nbs.glob('*/*.ipynb')])
    missing = [name for name in notebooks if not (proc / name).exists()]
    sidebar = (nbs / 'sidebar.yml').read_text()
    unlisted = [name for name in notebooks if name not in sidebar]
    if missing or unlisted:
        raise SystemExit(f'docs pre-render failed: not processed {missing}, not in nbs/sidebar.yml {unlisted}')
    print(f'{len(notebooks)} notebooks processed into {proc.relative_to(Path.cwd())}/, all in the sidebar')
    if lacking := hidden_sources(notebooks, nbs, proc):
        raise SystemExit(
            'docs: these taught definitions show no source on the site; make their cells `#| exports` '
            '(or see is_plumbing in tools/check_docs.py):\n  ' + '\n  '.join(lacking)
        )
