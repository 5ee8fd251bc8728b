"""The library's shape: its imports follow the course's reading order, and every module stays short.

    python tools/check_layout.py           # check
    python tools/check_layout.py --write   # rewrite the map of the library in CONTRIBUTING.md

The reading order is `nbs/sidebar.yml`'s: a chapter's module (the `#| default_exp` of its notebook) may import
only the modules of chapters listed before it, and only at the top of the file — never inside a function, where
an import hides a dependency until the function runs (DEFERRED_IMPORTS names the one exception, and why; its
`importlib.import_module('gpt_nb.x')` calls count as imports). Two kinds of notebook are exempt from the order:
`00_overview`, the preview of the whole course, and the appendix ("Under the hood" in the sidebar), reference
material that any chapter may use. No module may take part in an import cycle, and each stays within
MAX_LINES lines (`_modidx.py`, which nbdev generates, aside). The map of the library in CONTRIBUTING.md (notebook,
module, what it holds, what it imports) is made from the same facts, so it must be the one this script writes. Every
problem is printed on one line; the exit status is 1 if there is any.
"""

import ast
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = 'gpt_nb'
MAX_LINES = 300
MAX_COLUMNS = 120  # as ruff's E501, which pyproject.toml turns off for gpt_nb/ for the reason in generated_all_lines
APPENDIX = 'Under the hood'
MAP_START, MAP_END = '<!-- map: made by tools/check_layout.py --write -->', '<!-- end of map -->'
PREVIEWS = {'00_overview.ipynb'}  # may look ahead: a tour of the finished course
# Modules that may import gpt_nb modules inside a function, and why. The console scripts' entry points must answer
# Ctrl-C while their tool is still importing torch, so they import the tool inside a try (gpt_nb.commands.run_tool).
DEFERRED_IMPORTS = {'commands'}


def sidebar_entries(sidebar: dict) -> list[tuple[str, bool]]:
    "The notebooks of the sidebar in reading order, each with whether it sits in the appendix section."
    entries = []

    def walk(items, in_appendix):
        for item in items:
            if isinstance(item, str):
                entries.append((item, in_appendix))
            else:
                walk(item.get('contents', []), in_appendix or item.get('section') == APPENDIX)

    walk(sidebar['website']['sidebar']['contents'], False)
    return entries


def exported_module(notebook: Path) -> str | None:
    "The module a notebook exports (its `#| default_exp`), or None."
    match = re.search(r'#\|\s*default_exp\s+([\w.]+)', notebook.read_text(encoding='utf-8'))
    return match.group(1) if match else None


def imported_name(node: ast.AST) -> str | None:
    "The module named by a call `importlib.import_module('name')` (a literal), or None for any other node."
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return None
    function = node.func
    called = function.attr if isinstance(function, ast.Attribute) else getattr(function, 'id', None)
    return node.args[0].value if called == 'import_module' and isinstance(node.args[0].value, str) else None


def imported_modules(tree: ast.Module) -> list[tuple[str, int, bool]]:
    """Every gpt_nb module a file imports, with `import`, `from ... import` or `importlib.import_module('gpt_nb.x')`:
    (name, line, whether the import is at the top level of the file)."""
    top_level = set()
    for node in tree.body:
        top_level.add(node)
        if isinstance(node, ast.Try):  # `try: import x / except ImportError:` at the top still counts as the top
            top_level.update(node.body)
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .model import GPT
                names = [f'{PACKAGE}.{node.module}']
            elif node.level == 1 or node.module == PACKAGE:  # from . import model / from gpt_nb import model
                names = [f'{PACKAGE}.{alias.name}' for alias in node.names]
            elif node.module:
                names = [node.module]
        elif imported_name(node):
            names = [imported_name(node)]
        for name in names:
            parts = name.split('.')
            if parts[0] == PACKAGE and len(parts) > 1:
                found.append((parts[1], node.lineno, node in top_level))
    return found


def generated_all_lines(lines: list[str]) -> set[int]:
    """The numbers of the lines of the `__all__` that nbdev writes after `# %% auto #0`. nbdev 3.3.26 wraps that list
    at 120 columns without counting the `__all__ = ` in front of it, so its first line can reach 130: the only lines of
    gpt_nb/ not held to MAX_COLUMNS."""
    numbers = set()
    for index, line in enumerate(lines):
        if line.startswith('__all__ = [') and index and lines[index - 1] == '# %% auto #0':
            end = index
            while not lines[end].rstrip().endswith(']'):
                end += 1
            numbers.update(range(index + 1, end + 2))
    return numbers


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    "One import cycle as a list of modules (the first repeated at the end), or None."
    state = {}

    def visit(module, path):
        state[module] = 'open'
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 'open':
                return path[path.index(target) :] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[module] = 'done'
        return None

    for module in sorted(edges):
        if module not in state:
            cycle = visit(module, [module])
            if cycle:
                return cycle
    return None


def module_summary(source: str) -> str:
    "The first line of a module's docstring: its notebook's subtitle."
    docstring = ast.get_docstring(ast.parse(source)) or ''
    return docstring.splitlines()[0] if docstring else ''


def library_map(rows: list[tuple[str, str, str, list[str]]]) -> str:
    "The map of CONTRIBUTING.md: a Markdown table of (notebook, module, summary, imports), in reading order."
    lines = ['| notebook | module | holds | imports from gpt_nb |', '|---|---|---|---|']
    for notebook, module, summary, imports in rows:
        lines.append(f'| `{notebook.removesuffix(".ipynb")}` | `{module}` | {summary} | {", ".join(imports) or "–"} |')
    return '\n'.join(lines)


def check(root: Path, write_map: bool = False) -> list[str]:
    "The layout problems of the checkout at `root`, one line each; `write_map`: rewrite CONTRIBUTING.md's map first."
    problems = []
    sidebar = yaml.safe_load((root / 'nbs' / 'sidebar.yml').read_text(encoding='utf-8'))
    order, notebook_of, appendix = {}, {}, set()
    for position, (entry, in_appendix) in enumerate(sidebar_entries(sidebar)):
        if not (root / 'nbs' / entry).is_file():
            problems.append(f'nbs/sidebar.yml lists {entry}, which does not exist')
            continue
        module = exported_module(root / 'nbs' / entry)
        if module is None:
            continue
        order[module], notebook_of[module] = position, entry
        if in_appendix or entry in PREVIEWS:
            appendix.add(module)
    edges, summaries = {}, {}
    for path in sorted((root / PACKAGE).glob('*.py')):
        module = path.stem
        if module in ('__init__', '_modidx'):
            continue
        where = f'{PACKAGE}/{path.name}'
        lines = path.read_text(encoding='utf-8').splitlines()
        if len(lines) > MAX_LINES:
            problems.append(f'{where} has {len(lines)} lines, more than {MAX_LINES}: split its notebook')
        exempt = generated_all_lines(lines)
        for number, line in enumerate(lines, start=1):
            if len(line) > MAX_COLUMNS and number not in exempt:
                problems.append(f'{where}:{number} is {len(line)} columns long, more than {MAX_COLUMNS}')
        if module not in order:
            problems.append(f'{where} is exported by no notebook of nbs/sidebar.yml: list its notebook there')
            continue
        edges[module] = set()
        summaries[module] = module_summary('\n'.join(lines))
        for target, line, at_top in imported_modules(ast.parse('\n'.join(lines))):
            edges[module].add(target)
            if not at_top and module not in DEFERRED_IMPORTS:
                problems.append(f'{where}:{line} imports {PACKAGE}.{target} inside a block: import it at the top')
            if target not in order:
                continue
            later = order[target] > order[module]
            if later and module not in appendix and target not in appendix:
                problems.append(
                    f'{where}:{line} ({notebook_of[module]}) imports {PACKAGE}.{target} '
                    f'({notebook_of[target]}), a later chapter: move the code or let the later chapter extend it'
                )
    problems += check_notebooks(root, sidebar, order, notebook_of, appendix)
    cycle = find_cycle(edges)
    if cycle:
        problems.append('import cycle: ' + ' -> '.join(f'{PACKAGE}.{m}' for m in cycle))

    def position(module):  # an unlisted module is reported above; it goes last
        return order.get(module, len(order))

    rows = [
        (notebook_of[module], module, summaries[module], sorted(edges[module], key=position))
        for module in sorted(edges, key=position)
    ]
    problems += check_map(root / 'CONTRIBUTING.md', library_map(rows), write_map)
    return problems


def check_notebooks(root: Path, sidebar: dict, order: dict, notebook_of: dict, appendix: set) -> list[str]:
    """One path: the notebooks' names sort in the sidebar's order, and a chapter's notebook (its lesson cells
    included, not only its exports) imports no module of a later chapter."""
    problems = []
    entries = [entry for entry, _ in sidebar_entries(sidebar) if '/' not in entry and entry != 'index.ipynb']
    if entries != sorted(entries, key=str.lower):
        problems.append('nbs/sidebar.yml: the notebooks are not listed in the order of their names (the reading order)')
    for position, (entry, in_appendix) in enumerate(sidebar_entries(sidebar)):
        path = root / 'nbs' / entry
        if in_appendix or entry in PREVIEWS or '/' in entry or not path.is_file():
            continue
        cells = json.loads(path.read_text(encoding='utf-8'))['cells']
        source = '\n'.join(''.join(c['source']) for c in cells if c['cell_type'] == 'code')
        try:
            tree = ast.parse(re.sub(r'^\s*[%!].*$', '', source, flags=re.MULTILINE))
        except SyntaxError:
            continue  # a notebook that does not parse fails its own test
        for target, _, _ in imported_modules(tree):
            if target in order and target not in appendix and order[target] > position:
                problems.append(f'nbs/{entry} uses {PACKAGE}.{target} ({notebook_of[target]}), a later chapter')
    return problems


def check_map(contributing: Path, table: str, write: bool) -> list[str]:
    "Rewrite (`write`) or compare the map between MAP_START and MAP_END in `contributing`."
    text = contributing.read_text(encoding='utf-8')
    if MAP_START not in text or MAP_END not in text:
        return [f'{contributing.name} has no map between {MAP_START!r} and {MAP_END!r}']
    head, rest = text.split(MAP_START, 1)
    old, tail = rest.split(MAP_END, 1)
    if write:
        contributing.write_text(f'{head}{MAP_START}\n{table}\n{MAP_END}{tail}', encoding='utf-8')
        return []
    if old.strip() != table.strip():
        return [f'{contributing.name}: its map of the library is out of date; run python tools/check_layout.py --write']
    return []


if __name__ == '__main__':
    found = check(ROOT, write_map='--write' in sys.argv[1:])
    for problem in found:
        print(problem)
    if found:
        sys.exit(1)
    print('layout: imports follow the reading order, no cycle, every module within', MAX_LINES, 'lines')
