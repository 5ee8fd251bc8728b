"""Write README.md from nbs/index.ipynb (nbdev's own README renderer needs Quarto).

    python tools/make_readme.py          # write README.md
    python tools/make_readme.py --check  # fail if README.md is not what index.ipynb gives

Markdown cells are copied; code cells become fenced Python blocks followed by their text output. Cells
marked `#| hide` are left out and `#|` directives are dropped, as on the site.
"""

import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTICE = '<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n'


def cell_markdown(cell: dict) -> str:
    "The README text of one notebook cell ('' for hidden and empty cells)."
    lines = ''.join(cell['source']).splitlines()
    if cell['cell_type'] == 'markdown':
        return '\n'.join(lines).strip()
    if any(line.replace(' ', '') == '#|hide' for line in lines):
        return ''
    code = '\n'.join(line for line in lines if not line.startswith('#|')).strip()
    if not code:
        return ''
    blocks = [f'```python\n{code}\n```']
    for output in cell.get('outputs', []):
        if output['output_type'] == 'stream':
            text = ''.join(output.get('text', ''))
        else:
            text = ''.join(output.get('data', {}).get('text/plain', ''))
        if text.strip():
            blocks.append(f'```\n{text.rstrip()}\n```')
    return '\n\n'.join(blocks)


def render(nb_path: Path = ROOT / 'nbs' / 'index.ipynb') -> str:
    "The README that the notebook at `nb_path` gives."
    cells = json.loads(nb_path.read_text())['cells']
    return NOTICE + '\n\n'.join(text for text in map(cell_markdown, cells) if text) + '\n'


if __name__ == '__main__':
    readme, text = ROOT / 'README.md', render()
    if '--check' in sys.argv[1:]:
        if not readme.exists() or readme.read_text() != text:
            raise SystemExit('README.md is out of date with nbs/index.ipynb: run `python tools/make_readme.py`')
        print('README.md is current')
    else:
        readme.write_text(text)
        print(f'wrote {readme.relative_to(ROOT)}')
