"""Start-up (issue 22): each console script imports only what its tool needs.

`gpt-nb-generate-text --help` must not load matplotlib, the training stack, the data pipeline or torch.distributed's
wrappers: each tool lives in its own module. The console scripts (pyproject.toml's [project.scripts]) point at
`gpt_nb.commands`, which imports only the standard library and imports the tool when it runs (issue 28: Ctrl-C
during start-up), so what a script loads is measured by running its entry point with `--help`, wherever it leads.
"""

import importlib.metadata
import os
import subprocess
import sys

import pytest

TRAINING_STACK = (  # the training loop, its settings and its data pipeline
    'gpt_nb.training',
    'gpt_nb.run_setup',
    'gpt_nb.train_config',
    'gpt_nb.data',
    'gpt_nb.corpus',
    'gpt_nb.tokens',
    'tqdm',
    'datasets',
)
DISTRIBUTED = ('torch.distributed', 'torch.nn.parallel')  # what torch itself loads of these is allowed
NOT_NEEDED = {  # console script: what its module must not import
    'gpt-nb-quickstart': ('matplotlib', *TRAINING_STACK, *DISTRIBUTED),
    'gpt-nb-generate-text': ('matplotlib', *TRAINING_STACK, *DISTRIBUTED),
    'gpt-nb-analyze-attention': (*TRAINING_STACK, *DISTRIBUTED),
}


def imported_modules(code: str) -> set[str]:
    "The modules a fresh Python imports to run `code` (read from `-X importtime`)."
    result = subprocess.run(
        [sys.executable, '-X', 'importtime', '-c', code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, 'OMP_NUM_THREADS': '1'},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith('import time:')]
    return {line.rsplit('|', 1)[1].strip() for line in lines[1:]}  # the first line is the table's header


@pytest.fixture(scope='module')
def loaded_by_torch() -> set[str]:
    return imported_modules('import torch')


def entry_point(script: str) -> importlib.metadata.EntryPoint:
    return next(ep for ep in importlib.metadata.entry_points(group='console_scripts') if ep.name == script)


def within(module: str, packages) -> bool:
    return any(module == package or module.startswith(package + '.') for package in packages)


def help_code(script: str) -> str:
    "Python code that runs console script `script` with `--help`, as its installed wrapper does."
    ep = entry_point(script)
    return f'import sys; from {ep.module} import {ep.attr}; sys.argv[0] = {script!r}; sys.exit({ep.attr}(["--help"]))'


@pytest.mark.parametrize('script', NOT_NEEDED)
def test_console_script_imports_only_what_it_needs(script, loaded_by_torch):
    loaded = imported_modules(help_code(script))
    unneeded = sorted(name for name in loaded - loaded_by_torch if within(name, NOT_NEEDED[script]))
    assert not unneeded, f'{script} --help imports {", ".join(unneeded)}'


def test_entry_points_load_nothing_heavy():
    "The module the console scripts start in imports no torch: Ctrl-C is answered from the first moment."
    modules = {entry_point(script).module for script in NOT_NEEDED}
    loaded = imported_modules('; '.join(f'import {module}' for module in sorted(modules)))
    assert not {'torch', 'numpy'} & loaded, f'{sorted(modules)} import {sorted({"torch", "numpy"} & loaded)}'


def test_shared_cli_module_is_light(loaded_by_torch):
    "`gpt_nb.cli`, which every tool imports, loads none of what only some tools need."
    loaded = imported_modules('import gpt_nb.cli')
    unneeded = sorted(name for name in loaded - loaded_by_torch if within(name, NOT_NEEDED['gpt-nb-generate-text']))
    assert not unneeded, f'gpt_nb.cli imports {", ".join(unneeded)}'


@pytest.mark.parametrize(
    'script',
    [ep.name for ep in importlib.metadata.entry_points(group='console_scripts') if ep.name.startswith('gpt-nb-')],
)
def test_console_script_help(script):
    "`--help` of every console script, as the shell runs it: status 0 and a usage line."
    result = subprocess.run([sys.executable, '-c', help_code(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f'usage: {script}'), result.stdout[:200]
