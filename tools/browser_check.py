"""The course as a person meets it (issue 27): JupyterLab in Chromium runs notebooks from its interface.

    python tools/browser_check.py                 00_overview, 06_generation, 06a_generation_loop,
                                                  08_attention_analysis, 08a_attention_heatmaps
    python tools/browser_check.py NAME.ipynb ...  only these notebooks of nbs/ (the checker's own test too)

It starts JupyterLab from this Python (the dev install) on a free localhost port with a random token, in
temporary folders (a working copy of the notebooks, Jupyter's config, data and runtime folders, a kernel that
runs this Python), and stops it at the end whatever happens. Playwright drives the system's Chromium, headless:
for each notebook it clicks Run > Run All Cells, waits for the kernel to go idle, and fails, naming the notebook
and the cell, if a cell shows an error, a widget shows an error (or nothing) instead of its controls, or a figure
the stored notebook has is missing. Then it uses the widgets as a person would: the generation playground
(type a prompt, move the 'new tokens' slider, press Generate, new text must appear) and the attention explorer
(move the 'layer' slider, pick heads, the heatmap must change). A screenshot of each notebook goes to
build/browser/.

First it tests itself: a notebook broken on purpose (a widget the front end cannot draw, a playground whose
generation raises, a cell that raises, a figure that is missing) must fail, each fault reported with its name.

Chromium comes from the operating system's packages: when it is missing, this installs it with apt-get if it
can (root); if it cannot, it prints one line and exits 0, so that the rest of `make test` runs. On CI (CI=true)
it must run: it exits 1 instead.
"""

import contextlib
import dataclasses
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
SCREENSHOTS = ROOT / 'build' / 'browser'
# the overview, and chapters 06 (generation) and 08 (attention analysis), whose second notebooks show the widgets
NOTEBOOKS = (
    '00_overview.ipynb',
    '06_generation.ipynb',
    '06a_generation_loop.ipynb',
    '08_attention_analysis.ipynb',
    '08a_attention_heatmaps.ipynb',
)
WIDGETS = {'06a_generation_loop.ipynb': 'playground', '08a_attention_heatmaps.ipynb': 'explorer'}
CHROMIUM_NAMES = ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')
NOTEBOOK_SECONDS = 150  # the longest Run All may take, per notebook
WIDGET_SECONDS = 60  # the longest one widget action (a generation, a new heatmap) may take
ON_CI = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')


# ------------------------------------------------------------------------------------------------------ Chromium
def find_chromium() -> str | None:
    "The path of the system's Chromium ($CHROMIUM if set), or None."
    if os.environ.get('CHROMIUM'):
        return shutil.which(os.environ['CHROMIUM'])
    return next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)


def install_chromium() -> str:
    "Install Chromium from the Debian packages; return '' on success, else why it could not."
    if shutil.which('apt-get') is None:
        return 'this machine has no apt-get'
    if os.geteuid() != 0:
        return 'installing it needs root (sudo apt-get install chromium)'
    print('installing Chromium from the Debian packages: apt-get install chromium', flush=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    env, log_path = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}, SCREENSHOTS / 'apt-get.log'
    with open(log_path, 'w') as log:

        def apt_get(*arguments):
            subprocess.run(['apt-get', *arguments], stdout=log, stderr=subprocess.STDOUT, env=env)

        apt_get('install', '-y', '-q', 'chromium')
        if find_chromium() is None:  # a fresh machine's package lists may be empty: read them, then try again
            apt_get('update', '-q')
            apt_get('install', '-y', '-q', 'chromium')
    return '' if find_chromium() else f'apt-get install chromium failed (see {log_path.relative_to(ROOT)})'


# ---------------------------------------------------------------------------------------------------- JupyterLab
USER_SETTINGS = {  # JupyterLab's settings for this run (its user settings folder is a temporary one)
    '@jupyterlab/notebook-extension/tracker': {'windowingMode': 'none'},  # every cell in the page, to be checked
    '@jupyterlab/docmanager-extension/plugin': {'autosave': False},  # never writes the working copy back
    '@jupyterlab/apputils-extension/notification': {'checkForUpdates': False, 'fetchNews': 'false'},
}


@dataclasses.dataclass
class Lab:
    "A running JupyterLab server: its address, token and log."

    url: str
    token: str
    log: Path

    def notebook_url(self, name: str) -> str:
        return f'{self.url}lab/tree/{name}?reset&token={self.token}'

    def api(self, path: str, method: str = 'GET'):
        "Call the server's REST API; returns the decoded JSON answer (None when empty)."
        request = urllib.request.Request(
            f'{self.url}api/{path}', method=method, headers={'Authorization': f'token {self.token}'}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self):
        for session in self.api('sessions'):
            self.api(f'sessions/{session["id"]}', method='DELETE')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


LEFT_OUT = ('MPLBACKEND', 'JUPYTERLAB_SETTINGS_DIR', 'JUPYTERLAB_WORKSPACES_DIR')  # of the environment Jupyter gets


def jupyter_environment(home: Path) -> dict:
    "Environment variables that keep Jupyter's config, data, runtime and IPython folders inside `home`."
    folders = {name: home / name for name in ('config', 'data', 'runtime', 'ipython')}
    for folder in folders.values():
        folder.mkdir()
    kernel = folders['data'] / 'kernels' / 'python3'  # the notebooks' kernel: this Python, where gpt_nb is installed
    kernel.mkdir(parents=True)
    argv = [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}']
    (kernel / 'kernel.json').write_text(json.dumps(dict(argv=argv, display_name='Python 3', language='python')))
    for plugin, settings in USER_SETTINGS.items():
        path = folders['config'] / 'lab' / 'user-settings' / f'{plugin}.jupyterlab-settings'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    env = {key: value for key, value in os.environ.items() if key not in LEFT_OUT}
    return env | dict(  # MPLBACKEND=Agg (check.sh) left out: the kernel draws figures inline, as for a person
        JUPYTER_CONFIG_DIR=str(folders['config']),
        JUPYTER_DATA_DIR=str(folders['data']),
        JUPYTER_RUNTIME_DIR=str(folders['runtime']),
        IPYTHONDIR=str(folders['ipython']),
        JUPYTER_PLATFORM_DIRS='0',
        PYTHONUNBUFFERED='1',
    )


def browser_environment(home: Path) -> dict:
    "Environment variables that keep what Chromium writes outside its profile (dconf, caches) inside `home`."
    browser_home = home / 'browser'
    folders = dict(HOME=browser_home, XDG_CONFIG_HOME=browser_home / '.config', XDG_CACHE_HOME=browser_home / '.cache')
    return os.environ | {name: str(folder) for name, folder in folders.items()}


@contextlib.contextmanager
def jupyterlab(notebook_dir: Path, home: Path):
    "Run JupyterLab on `notebook_dir` (Jupyter's own folders in `home`) for the `with` block; stop it at the end."
    port, token, log = free_port(), secrets.token_hex(16), home / 'jupyterlab.log'
    command = [
        sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
        '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={notebook_dir}',
        '--ServerApp.allow_root=True', '--LabApp.expose_app_in_browser=True',  # window.jupyterapp: the notebook model
    ]  # fmt: skip
    with open(log, 'w') as log_file:
        server = subprocess.Popen(
            command, env=jupyter_environment(home), stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    lab = Lab(f'http://127.0.0.1:{port}/', token, log)
    try:
        wait_until_serving(lab, server)
        yield lab
    finally:
        stop(server)
        shutil.copy(log, SCREENSHOTS / 'jupyterlab.log')  # for a failure's post-mortem: the server's and kernels' log


def wait_until_serving(lab: Lab, server: subprocess.Popen, seconds: float = 60):
    "Wait until the server answers its REST API; fail with the end of its log if it exits or never answers."
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if server.poll() is not None:
            raise RuntimeError(f'JupyterLab exited with status {server.returncode}:\n{lab.log.read_text()[-3000:]}')
        with contextlib.suppress(OSError):
            lab.api('status')
            return
        time.sleep(0.5)
    raise RuntimeError(f'JupyterLab did not answer in {seconds:g} s:\n{lab.log.read_text()[-3000:]}')


def stop(server: subprocess.Popen):
    "Stop the server (SIGTERM: it shuts its kernels down), then SIGKILL whatever is left of its process group."
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


# ---------------------------------------------------------------------------------------- what the page shows
# window.gptNbCells(): what the open notebook shows, cell by cell (read from JupyterLab's model and the page)
PAGE_HELPERS = r"""
window.gptNbWidgetState = (node) => {  // an output the kernel sent as a widget: what the page shows for it
  if (!node) return 'missing';
  const text = node.textContent.replace(/\s+/g, ' ').trim();
  if (node.querySelector('.jupyter-widgets-error-widget') || /Error (displaying|rendering) widget/.test(text))
    return 'error: ' + text.slice(0, 200);
  if (node.querySelector('.jupyter-widgets')) return 'rendered';
  if (/Loading widget/.test(text)) return 'loading';
  return node.matches('.jp-RenderedText') || node.querySelector('.jp-RenderedText') ? 'text' : 'empty';
};
window.gptNbCellFacts = (cell) => {
  const model = cell.model, node = cell.node;
  const facts = {type: model.type, firstLine: model.sharedModel.getSource().split('\n')[0].slice(0, 60)};
  if (model.type !== 'code') return facts;
  facts.executionCount = model.executionCount;
  facts.prompt = node.querySelector('.jp-InputPrompt')?.textContent ?? '';
  // one node a model output, in order (the widgets' own output areas, nested deeper, are not counted)
  const shown = cell.outputArea.node.querySelectorAll(':scope > .jp-OutputArea-child > .jp-OutputArea-output');
  facts.outputs = [];
  for (let i = 0; i < model.outputs.length; i++) {
    const output = model.outputs.get(i).toJSON(), mimes = Object.keys(output.data ?? {});
    const isWidget = mimes.includes('application/vnd.jupyter.widget-view+json');
    facts.outputs.push({type: output.output_type, mimes,
                        error: output.output_type === 'error' ? `${output.ename}: ${output.evalue}` : '',
                        widget: isWidget ? window.gptNbWidgetState(shown[i]) : null});
  }
  facts.figures = [...node.querySelectorAll('.jp-RenderedImage img')]
    .filter((img) => img.complete && img.naturalWidth > 0).length;
  facts.tracebacks = [...node.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map((output) => output.textContent).filter((text) => text.includes('Traceback'))
    .map((text) => text.trim().split('\n').filter((line) => line.trim()).pop());
  return facts;
};
window.gptNbCells = () => {
  const panel = window.jupyterapp?.shell.currentWidget;
  if (!panel?.content?.widgets || !panel.context?.isReady) return null;
  return {kernel: panel.sessionContext.session?.kernel?.status ?? 'none',
          cells: panel.content.widgets.map(window.gptNbCellFacts)};
};
window.gptNbRunFinished = () => {
  const state = window.gptNbCells();
  const code = state?.cells.filter((cell) => cell.type === 'code') ?? [];
  return state?.kernel === 'idle' && code.length > 0 && code[0].executionCount !== null
    && !code.some((cell) => cell.prompt.includes('*'));
};
"""


def read_cells(page) -> dict:
    return page.evaluate('window.gptNbCells()')


def stored_cells(path: Path) -> list[dict]:
    "The cells of the notebook file, as stored: what a fresh run must show again (its figures and widgets)."
    return json.loads(path.read_text())['cells']


def stored_mimes(cell: dict) -> list[str]:
    return [mime for output in cell.get('outputs', []) for mime in output.get('data', {})]


def where(name: str, index: int, cells: list[dict]) -> str:
    first_line = cells[index]['firstLine']
    return f'{name}, cell {index + 1} of {len(cells)} ({first_line!r})'


WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'
WIDGET_FAULTS = {  # what the page shows for a widget, when it is not its controls: what that means
    'text': 'is shown as text: this JupyterLab has no widget renderer (is jupyterlab-widgets installed?)',
    'loading': 'is still "Loading widget...": the front end never received its model',
    'empty': 'shows nothing',
    'missing': 'has no place in the page',
}


def widget_fault(state: str) -> str:
    "What a widget's state in the page means, said for a person."
    if state.startswith('error'):
        return f'shows an error instead of its controls: {state[len("error: ") :]!r}'
    return WIDGET_FAULTS.get(state, state)


def problems_in_cells(name: str, cells: list[dict], stored: list[dict]) -> list[str]:
    "Every fault the page shows: errors, tracebacks, widgets that are not drawn, figures that are missing."
    problems = []
    for index, (cell, stored_cell) in enumerate(zip(cells, stored)):
        if cell['type'] != 'code':
            continue
        at = where(name, index, cells)
        if cell['executionCount'] is None:
            problems.append(f'{at}: did not run (Run All stopped before it)')
        errors = [output['error'] for output in cell['outputs'] if output['error']]
        problems += [f'{at}: error output {error}' for error in errors]
        problems += [f'{at}: traceback in an output: {line}' for line in cell['tracebacks'] if line not in errors]
        widgets = [output['widget'] for output in cell['outputs'] if output['widget']]
        problems += [f'{at}: a widget {widget_fault(state)}' for state in widgets if state != 'rendered']
        expected_widgets = stored_mimes(stored_cell).count(WIDGET_MIME)
        if len(widgets) < expected_widgets:
            problems.append(f'{at}: {expected_widgets} widget(s) in the stored notebook, {len(widgets)} now')
        expected_figures = stored_mimes(stored_cell).count('image/png')
        if cell['figures'] < expected_figures:
            problems.append(f'{at}: {expected_figures} figure(s) in the stored notebook, {cell["figures"]} shown')
    return problems


def wait_for_widgets(page, seconds: float = 20) -> dict:
    "What the page shows once no widget is still loading (or after `seconds`)."
    end = time.monotonic() + seconds
    while True:
        state = read_cells(page)
        outputs = [output for cell in state['cells'] for output in cell.get('outputs', [])]
        loading = [output for output in outputs if output['widget'] in ('loading', 'empty', 'missing')]
        if not loading or time.monotonic() > end:
            return state
        page.wait_for_timeout(250)


# ---------------------------------------------------------------------------------------- using the widgets
def labelled(page, kind: str, label: str):
    "The ipywidgets control of class `kind` ('.widget-slider', ...) whose description is `label`."
    return page.locator(kind).filter(has=page.locator('.widget-label', has_text=re.compile(f'^{re.escape(label)}$')))


def wait_until(condition, seconds: float, what: str):
    "Poll `condition()` until it is true; raise TimeoutError naming `what` after `seconds`."
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f'{what} (waited {seconds:g} s)')
        time.sleep(0.25)


def move_slider(page, label: str, key: str, presses: int = 1) -> str:
    "Move slider `label` with the keyboard, as a person can: focus its handle, press `key`; returns the readout."
    slider = labelled(page, '.widget-slider', label)
    handle = slider.locator('.noUi-handle')
    handle.focus()
    for _ in range(presses):
        handle.press(key)
    return slider.locator('.widget-readout').inner_text()


def settled_text(locator, seconds: float = 5.0) -> str:
    "The text of `locator` once it has stayed the same for a second (or after `seconds`)."
    end = time.monotonic() + seconds
    text = locator.inner_text().strip()
    while time.monotonic() < end:
        time.sleep(1.0)
        again = locator.inner_text().strip()
        if again == text:
            break
        text = again
    return text


def kernel_idle(page) -> bool:
    return read_cells(page)['kernel'] == 'idle'


def drive_playground(page) -> list[str]:
    "Type a prompt, shorten the generation with the 'new tokens' slider, press Generate: new text must appear."
    prompt = 'The little dog'
    box = labelled(page, '.widget-textarea', 'prompt').locator('textarea')
    box.click()
    box.press('Control+A')
    box.press_sequentially(prompt)
    box.press('Tab')
    move_slider(page, 'new tokens', 'Home')  # the smallest value, 1
    tokens = move_slider(page, 'new tokens', 'ArrowRight', presses=11)
    if tokens != '12':
        return [f"the 'new tokens' slider reads {tokens!r} after Home and 11 steps right, not '12'"]
    panel = page.locator('.widget-vbox').filter(has=page.get_by_role('button', name='Generate', exact=True)).first
    output = panel.locator('.widget-output')
    page.get_by_role('button', name='Generate', exact=True).click()

    def finished() -> bool:  # the page may draw the streamed pieces after the kernel reads idle: wait for them too
        shown = output.inner_text().strip()
        return kernel_idle(page) and ('Traceback' in shown or len(shown) > len(prompt))

    try:
        wait_until(finished, WIDGET_SECONDS, 'Generate wrote no new text')
    except TimeoutError:
        pass  # judged below on what the output shows
    text = settled_text(output)
    if 'Traceback' in text:
        return []  # the traceback is reported with its cell
    if not text.startswith(prompt) or not text[len(prompt) :].strip():
        return [f'Generate showed {text[:200]!r}: not the prompt {prompt!r} followed by new text']
    print(f'    playground: {text!r}')
    return []


def drive_explorer(page) -> list[str]:
    "Move the 'layer' slider and pick heads in the 'head' menu: each time the heatmap must change."
    image = page.locator('.widget-vbox').filter(has=page.locator('img.widget-image')).locator('img.widget-image')
    head_menu = labelled(page, '.widget-dropdown', 'head').locator('select')
    actions = {
        'layer slider to its last layer (End)': lambda: move_slider(page, 'layer', 'End'),
        "head menu to '1'": lambda: head_menu.select_option(label='1'),
        "head menu to 'mean over heads'": lambda: head_menu.select_option(label='mean over heads'),
    }
    problems = []
    for action, do in actions.items():
        before = image.screenshot()
        do()
        try:
            wait_until(lambda: image.screenshot() != before and kernel_idle(page), WIDGET_SECONDS, 'no change')
        except TimeoutError:
            problems.append(f'attention explorer: the heatmap did not change after moving the {action}')
    print(f'    attention explorer: the heatmap changed {len(actions) - len(problems)} times of {len(actions)}')
    return problems


DRIVERS = {'playground': drive_playground, 'explorer': drive_explorer}


# ---------------------------------------------------------------------------------------------- one notebook
def run_all(page):
    "Run > Run All Cells, from the menu bar."
    page.locator('#jp-MainMenu .lm-MenuBar-itemLabel', has_text=re.compile('^Run$')).click()
    page.locator('.lm-Menu-itemLabel', has_text=re.compile('^Run All Cells$')).click()


def save_screenshots(page, stem: str) -> list[Path]:
    "The whole notebook, in pieces at most 12,000 pixels high: build/browser/STEM.png, STEM-2.png, ..."
    scroller = '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer'
    page.evaluate('window.jupyterapp.shell.collapseLeft()')
    height = page.evaluate(f'document.querySelector({scroller!r}).scrollHeight')
    width, piece = page.viewport_size['width'], min(height + 200, 12_000)
    page.set_viewport_size({'width': width, 'height': piece})
    paths = []
    for number, top in enumerate(range(0, height, piece - 200), start=1):
        page.evaluate(f'document.querySelector({scroller!r}).scrollTop = {top}')
        page.wait_for_timeout(200)
        paths.append(SCREENSHOTS / (f'{stem}.png' if number == 1 else f'{stem}-{number}.png'))
        page.screenshot(path=paths[-1])
    return paths


def check_notebook(browser, lab: Lab, notebook: Path, widget: str | None) -> list[str]:
    "Open `notebook` in JupyterLab, Run All, check every cell, use its widget; the faults found, each named."
    name, t0, ran, problems = notebook.name, time.monotonic(), 0.0, []
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    page.set_default_timeout(10_000)  # a control that is not there: a fault in 10 s (slow steps set their own)
    page.add_init_script(PAGE_HELPERS)
    try:
        page.goto(lab.notebook_url(name))
        page.wait_for_function('window.gptNbCells()?.kernel === "idle"', timeout=60_000)
        run_all(page)
        try:
            page.wait_for_function('window.gptNbRunFinished()', timeout=NOTEBOOK_SECONDS * 1000, polling=500)
        except PlaywrightTimeout:
            problems.append(f'{name}: Run All had not finished after {NOTEBOOK_SECONDS} s')
        ran = time.monotonic() - t0
        stored = stored_cells(notebook)
        problems += problems_in_cells(name, wait_for_widgets(page)['cells'], stored)
        if widget:
            problems += used_widget_problems(page, name, widget, stored, problems)
    except Exception as error:  # the page did not load, the kernel never started, ...
        problems.append(f'{name}: {type(error).__name__}: {str(error).splitlines()[0]}')
    finally:
        with contextlib.suppress(Exception):
            save_screenshots(page, notebook.stem)
        page.close()
        with contextlib.suppress(OSError):
            lab.shut_down_kernels()  # frees the notebook's memory and cores for the next one
    verdict = f'{len(problems)} problem(s)' if problems else 'ok'
    print(f'  {name}: {verdict} (Run All {ran:.0f} s, {time.monotonic() - t0:.0f} s in all)', flush=True)
    return problems


def used_widget_problems(page, name: str, widget: str, stored: list[dict], found: list[str]) -> list[str]:
    "Use the notebook's widget, then check the page again: new faults (a traceback in its output, say)."
    try:
        problems = [f'{name}: {problem}' for problem in DRIVERS[widget](page)]
    except Exception as error:  # a control that is not there, an action that timed out
        problems = [f'{name}: the {widget} could not be used: {type(error).__name__}: {str(error).splitlines()[0]}']
    after = problems_in_cells(name, wait_for_widgets(page)['cells'], stored)
    return problems + [f'{problem} (after using the {widget})' for problem in after if problem not in found]


# ------------------------------------------------------------------------------------- the checker's own test
SELF_TEST = 'broken_widgets.ipynb'
BROKEN_CELLS = (  # (source, stored outputs): each fault the check must find is named in SELF_TEST_FAULTS
    (
        'import ipywidgets\nimport traitlets\n\nimport gpt_nb.widgets\nfrom gpt_nb.checkpoint import load_pretrained\n'
        '\n\ndef broken_stream_text(*args, **kwargs):\n    raise RuntimeError("generation broken on purpose")\n\n\n'
        'gpt_nb.widgets.stream_text = broken_stream_text  # what the playground calls when Generate is pressed\n'
        "shipped = load_pretrained('tinystories')",
        [],
    ),
    (
        '# a widget whose view the front end does not have, like an ipywidgets that this JupyterLab cannot draw\n'
        'class Unknown(ipywidgets.DOMWidget):\n'
        "    _view_module = traitlets.Unicode('no-such-widget-module').tag(sync=True)\n"
        "    _view_module_version = traitlets.Unicode('1.0.0').tag(sync=True)\n"
        "    _view_name = traitlets.Unicode('NoSuchView').tag(sync=True)\n\n\nUnknown()",
        [],
    ),
    ('gpt_nb.widgets.playground(shipped.model, shipped.tokenizer)', []),
    ("print('a figure was stored here')", [{'output_type': 'display_data', 'metadata': {}, 'data': {'image/png': ''}}]),
    ("raise RuntimeError('a cell broken on purpose')", []),
)
SELF_TEST_FAULTS = (
    'a widget shows an error instead of its controls',
    'figure(s) in the stored notebook',
    'error output RuntimeError: a cell broken on purpose',
    'RuntimeError: generation broken on purpose (after using the playground)',
)


def write_broken_notebook(path: Path):
    cells = [
        dict(cell_type='code', execution_count=None, metadata={}, outputs=outputs, source=source)
        for source, outputs in BROKEN_CELLS
    ]
    kernel = dict(display_name='Python 3', language='python', name='python3')
    path.write_text(json.dumps(dict(cells=cells, metadata=dict(kernelspec=kernel), nbformat=4, nbformat_minor=5)))


def checker_blind_spots(problems: list[str]) -> list[str]:
    "The faults of the broken notebook that the check did not report (with its name): none, if it works."
    named = [problem for problem in problems if problem.startswith(SELF_TEST)]
    return [fault for fault in SELF_TEST_FAULTS if not any(fault in problem for problem in named)]


# ---------------------------------------------------------------------------------------------------------- main
def chromium_or_reason() -> tuple[str | None, str]:
    "The system's Chromium, installed first if it is missing and can be; else None and why."
    if find_chromium() is None:
        why = install_chromium()
        if find_chromium() is None:
            return None, f'Chromium is not installed and could not be: {why}'
    return find_chromium(), ''


def main(names: list[str]) -> int:
    chromium, why = chromium_or_reason()
    if chromium is None:
        print(f'browser check {"FAILED (CI=true: it must run)" if ON_CI else "skipped"}: {why}')
        return 1 if ON_CI else 0
    t0 = time.monotonic()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='gpt_nb_browser_') as tmp:
        work, home = Path(tmp) / 'nbs', Path(tmp) / 'jupyter'
        work.mkdir()
        home.mkdir()
        for name in names:  # a working copy: nothing is ever written into nbs/
            shutil.copy(NBS / name, work / name)
        write_broken_notebook(work / SELF_TEST)
        with jupyterlab(work, home) as lab, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, env=browser_environment(home))
            print(f'{jupyterlab_version()}, Chromium {browser.version}', flush=True)
            print(f'the checker on {SELF_TEST}, broken on purpose (it must find {len(SELF_TEST_FAULTS)} faults):')
            found = check_notebook(browser, lab, work / SELF_TEST, 'playground')
            print(''.join(f'    found: {problem}\n' for problem in found), end='')
            blind_spots = checker_blind_spots(found)
            print('the course:')
            problems = [p for name in names for p in check_notebook(browser, lab, work / name, WIDGETS.get(name))]
            browser.close()
    for fault in blind_spots:
        problems.append(f'the checker itself: it did not report {fault!r} in {SELF_TEST}')
    for problem in problems:
        print(f'FAIL: {problem}')
    seconds = time.monotonic() - t0
    print(f'browser check: {len(names)} notebooks, {len(problems)} problem(s), {seconds:.0f} s wall time')
    print(f'screenshots: {SCREENSHOTS.relative_to(ROOT)}/')
    return 1 if problems else 0


def jupyterlab_version() -> str:
    "The versions of the front-end packages, as pip knows them."
    from importlib.metadata import version

    return ', '.join(f'{package} {version(package)}' for package in ('jupyterlab', 'ipywidgets', 'jupyterlab-widgets'))


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # stopped: JupyterLab stops too
    sys.exit(main(sys.argv[1:] or list(NOTEBOOKS)))
