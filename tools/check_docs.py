"""The docs pre-render stage of `nbdev-docs`, which runs everywhere (Quarto itself is only needed to render).

Refreshes the Quarto config, then processes every notebook the way the site build does and checks each one
produced its page source in `_proc/`."""
import warnings
from pathlib import Path

from nbdev.config import get_config
from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
from nbdev.serve import proc_nbs

# the docs build re-runs every cell with an import: one that also computes would run its work again
warnings.filterwarnings('error', message='Found cells containing imports and other code')
cfg = get_config()
refresh_quarto_yml()
nbdev_sidebar()
proc = proc_nbs(force=True, n_workers=0)
notebooks = sorted(p.name for p in cfg.nbs_path.glob('*.ipynb'))
missing = [n for n in notebooks if not (proc / n).exists()]
sidebar = (cfg.nbs_path / 'sidebar.yml').read_text()
unlisted = [n for n in notebooks if n not in sidebar]
if missing or unlisted:
    raise SystemExit(f'docs pre-render failed: not processed {missing}, not in nbs/sidebar.yml {unlisted}')
print(f'{len(notebooks)} notebooks processed into {proc.relative_to(Path.cwd())}/, all in the sidebar')
