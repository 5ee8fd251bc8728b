"""Hostile input (issue #15): no traceback, no silent wrong result, no lost work, in any console script or public API.

Every probe asserts
  * the exit status: 0 success, 2 bad input refused before any work, 1 a failure during the work, 130 interrupted;
  * that an error is one line ending stderr (argparse's usage line may come before it), with no 'Traceback';
  * that nothing was lost or half-written: checkpoints already there are byte-identical and loadable, no `*.tmp`
    is left behind, and a refused command wrote nothing.
Expected behaviour is what the issue asks for, not what the code does today. Messages are checked loosely: the
flag or file a message must name, and a word or two (any of a few alternatives) saying what is wrong.

Probes are grouped by the nine classes of the issue (C1 ... C9). The console scripts run in this process (see
conftest.py); the few probes that need a real process (Ctrl-C, a closed pipe, kill -9, two runs at once) share
one batch of child processes started in the background at the beginning of the session.

Round two (issue #28) adds its classes to the same tables: broken Hugging Face folders and tampered instruction
templates (C1), a padded vocabulary (C2), empty prompts (C3) and empty data files (C5), a closed pipe before the
work and an out-dir that holds the run's own input (C4), contradictory flags (C7), Ctrl-C while a tool is still
importing its libraries (C8, a real process), and the Python API's refusals (C9). The benchmarks' probes are in
test_hostile_benchmarks.py.

    pytest -q tests -n0
"""

import errno, hashlib, json, math, os, shlex, shutil, signal, threading, time
from pathlib import Path

import pytest
import torch

from conftest import SESSION_TMP, Child, Result, child_command, run_cli

# ------------------------------------------------------------------------------------------- library API
from gpt_nb.checkpoint import PRETRAINED, load_checkpoint, load_pretrained, save_checkpoint
from gpt_nb.config import GPTConfig
from gpt_nb.corpus import load_stories
from gpt_nb.finetuning import INSTRUCTION_TEMPLATE
from gpt_nb.generation import generate
from gpt_nb.sampling import sample_next_token
from gpt_nb.model import GPT, IGNORE_INDEX
from gpt_nb.stories import generate_stories
from gpt_nb.tokenizer import get_encoding

ENDOFTEXT = '<|endoftext|>'

QUICKSTART, TRAIN, GENERATE, ANALYZE, FINETUNE, RL = (
    'gpt-nb-quickstart',
    'gpt-nb-train-tiny-stories',
    'gpt-nb-generate-text',
    'gpt-nb-analyze-attention',
    'gpt-nb-finetune',
    'gpt-nb-rl',
)
IS_ROOT = os.geteuid() == 0
needs_non_root = pytest.mark.skipif(
    IS_ROOT, reason='runs as root: chmod cannot make a file unreadable or a folder unwritable'
)

# ------------------------------------------------------------------------------------------- tiny runs
# A model small enough that training it takes a fraction of a second: 1 layer, 2 heads, width 16, a 300-token BPE.
MODEL = [
    '--n-layer',
    1,
    '--n-head',
    2,
    '--d-model',
    16,
    '--context-length',
    32,
    '--tokenizer',
    'bpe:300',
    '--dropout',
    0,
]
RUN = [
    '--data',
    'generated',
    '--max-stories',
    20,
    '--batch-size',
    2,
    '--optimizer',
    'adamw',
    '--eval-stories',
    4,
    '--sample-tokens',
    4,
    '--device',
    'cpu',
    '--seed',
    1,
]
TINY = MODEL + RUN  # a full description of the base run (add --max-steps and --out-dir)
GEN = ['--max-new-tokens', 3, '--device', 'cpu', '--seed', 0]
TEXT = 'Once upon a time there was a little dog named Max. Max liked to play.'


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict:
    "Every file under `folder` (relative name -> sha256)."
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob('*')) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    "Temporary files left under `folder`: half-written saves and write probes."
    return [str(p) for p in Path(folder).rglob('*') if p.name.endswith('.tmp') or p.name.startswith('.write-test')]


def assert_untouched(folder: Path, before: dict):
    "`folder` holds exactly what it held (byte for byte), every checkpoint in it loads, and no temporary file is left."
    assert not leftovers(folder), f'left behind: {leftovers(folder)}'
    after = snapshot(folder)
    assert after == before, f'changed: {sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))}'
    for p in Path(folder).glob('*.pt'):
        load_checkpoint(p)


def assert_loadable(folder: Path):
    assert not leftovers(folder), f'left behind: {leftovers(folder)}'
    for p in Path(folder).glob('*.pt'):
        load_checkpoint(p)


def _mentions(text: str, mentions) -> list:
    "The entries of `mentions` (a str, or a tuple of alternatives) that `text` does not contain (case-insensitive)."
    text = text.lower()
    return [m for m in mentions if not any(alt.lower() in text for alt in ((m,) if isinstance(m, str) else m))]


def assert_clean(r: Result):
    "No traceback, and at most one error line, which ends stderr."
    assert 'Traceback' not in r.err and 'Exception ignored' not in r.err, r.summary()
    errors = [l for l in r.lines if 'error:' in l.lower()]
    assert len(errors) <= 1, f'{len(errors)} error lines: {errors}'
    assert not errors or errors[0] == r.message, f'the error is not the last line of stderr: {r.lines[-3:]}'


def assert_refused(r: Result, code, *mentions):
    "Exit status `code` (or one of a tuple), a one-line message ending stderr that contains each of `mentions`."
    assert r.code in (code if isinstance(code, tuple) else (code,)), r.summary()
    assert_clean(r)
    assert r.message, f'exit {r.code} with nothing on stderr'
    missing = _mentions(r.message, mentions)
    assert not missing, f'the message {r.message!r} does not mention {missing}'


def assert_ok(r: Result):
    assert r.code == 0, r.summary()
    assert_clean(r)


def train(out_dir, *argv, timeout=60, **kw) -> Result:
    return run_cli(TRAIN, *TINY, '--out-dir', out_dir, *argv, timeout=timeout, **kw)


class Pipe:
    "A stdout whose reader goes away after `limit` characters (as with `| head -c limit`), or a full disk (ENOSPC)."

    def __init__(self, limit: int = 20, error: int = errno.EPIPE):
        self.limit, self.error, self.written, self.fd = limit, error, 0, os.open(os.devnull, os.O_WRONLY)

    def write(self, s):
        if self.written >= self.limit:
            raise OSError(self.error, os.strerror(self.error))
        self.written += len(s)
        return len(s)

    def flush(self):
        if self.written >= self.limit:
            raise OSError(self.error, os.strerror(self.error))

    def fileno(self):
        return self.fd  # a private /dev/null: a `dup2` onto it harms nobody

    def isatty(self):
        return False

    encoding, errors = 'utf-8', 'strict'

    def close(self):
        os.close(self.fd)


def full_disk(monkeypatch, where: str):
    "Make saving fail as on a full disk: 'torch.save' (after writing part of the file), 'fsync' or 'savefig'."

    def error():
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == 'torch.save':

        def save(obj, f, *a, **k):
            if hasattr(f, 'write'):
                f.write(b'PK\x03\x04 half a checkpoint')
            raise error()

        monkeypatch.setattr(torch, 'save', save)
    elif where == 'fsync':

        def fsync(fd):
            raise error()

        monkeypatch.setattr(os, 'fsync', fsync)
    elif where == 'savefig':
        import matplotlib.figure

        def savefig(self, *a, **k):
            raise error()

        monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', savefig)


def unwritable(monkeypatch, where: str):
    "Make a write fail with EACCES, as in a folder that became read-only: at 'savefig' or at the rename of a save."

    def error(*a, **k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(a[1] if len(a) > 1 else a[0]))

    if where == 'savefig':
        import matplotlib.figure

        monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', error)
    elif where == 'replace':
        monkeypatch.setattr(os, 'replace', error)


# ------------------------------------------------------------------------------------------- session artefacts
@pytest.fixture(scope='session')
def base(session_tmp) -> Path:
    "A folder holding the base run's best_model.pt, last.pt and loss_curve.png (2 steps of a tiny model)."
    out = session_tmp / 'base'
    cwd = os.getcwd()
    os.chdir(session_tmp)
    try:
        r = run_cli(TRAIN, *TINY, '--max-steps', 2, '--out-dir', out)
    finally:
        os.chdir(cwd)
    if r.code != 0 or not (out / 'last.pt').is_file():
        pytest.fail(f'the base run failed: {r.summary()}\n{r.err[-3000:]}')
    return out


@pytest.fixture(scope='session')
def ckpt(base) -> Path:
    return base / 'best_model.pt'


@pytest.fixture
def run_dir(base, tmp_path) -> Path:
    "A private copy of the base run's folder."
    return Path(shutil.copytree(base, tmp_path / 'run'))


@pytest.fixture(scope='session')
def stories_txt(session_tmp) -> Path:
    "40 short generated stories in a text file, separated by <|endoftext|>."
    path = session_tmp / 'stories.txt'
    path.write_text(f'\n{ENDOFTEXT}\n'.join(generate_stories(40, seed=3)) + '\n')
    return path


def finetune_args(out_dir, *argv):
    "A fine-tuning run of the shipped model on a few stories that takes a second (1 step, no evaluation)."
    return [
        '--data',
        SESSION_TMP / 'stories.txt',
        '--max-steps',
        1,
        '--eval-prompts',
        0,
        '--batch-size',
        2,
        '--eval-stories',
        2,
        '--device',
        'cpu',
        '--lora-rank',
        2,
        '--out-dir',
        out_dir,
        *argv,
    ]


@pytest.fixture(scope='session')
def instruct_ckpt(session_tmp) -> Path:
    "A tiny model (1 layer, width 16) with the shipped tokenizer, saved as gpt-nb-finetune saves one: RL's start."
    tokenizer = load_pretrained('tinystories').tokenizer
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.n_vocab, context_length=256, n_layer=1, n_head=2, d_model=16))
    return save_checkpoint(session_tmp / 'instruct.pt', model, tokenizer, instruction_template=INSTRUCTION_TEMPLATE)


def rl_args(out_dir, *argv):
    "An RL run of the tiny instruction-tuned model on a few stories that takes a second: 2 steps of 2 x 2 stories."
    return [
        '--data',
        SESSION_TMP / 'stories.txt',
        '--max-steps',
        2,
        '--group-size',
        2,
        '--prompts',
        2,
        '--max-new-tokens',
        4,
        '--eval-prompts',
        0,
        '--device',
        'cpu',
        '--out-dir',
        out_dir,
        *argv,
    ]


# ================================================================================================
# C1  Checkpoints that load but do not fit: validated once, at load; the message names the file and the fault
# ================================================================================================
def _set(part, **values):
    def tamper(p):
        p[part].update(values)

    return tamper


def _pop(part, key=None):
    def tamper(p):
        p.pop(part) if key is None else p[part].pop(key)

    return tamper


def _replace(part, value):
    def tamper(p):
        p[part] = value

    return tamper


def _weights(fill, names=None):
    def tamper(p):
        for k, v in p['model'].items():
            if v.is_floating_point() and (names is None or k in names):
                v.fill_(fill)

    return tamper


def _weight(name, value):
    def tamper(p):
        p['model'][name] = value

    return tamper


def _ranks_not_base64(p):
    p['tokenizer']['mergeable_ranks'][0] = '***not base64***'


TAMPERED = {  # name: (change to the payload, what the message must mention besides the file name)
    'no-config': (_pop('config'), ('config',)),
    'no-model': (_pop('model'), ('model', 'weights')),
    'no-tokenizer': (_pop('tokenizer'), ('tokenizer',)),
    'config-layers': (_set('config', n_layer=2), ('n_layer', 'layer', 'blocks.1')),
    'config-width': (_set('config', d_model=32), ('d_model', 'width', 'shape', 'size')),
    'config-vocab': (_set('config', vocab_size=500), ('vocab', 'shape', 'size')),
    'config-context': (_set('config', context_length=64), ('context', 'position', 'shape', 'size')),
    'config-heads': (_set('config', n_head=3), ('n_head', 'head')),
    'config-unknown-field': (_set('config', flash=True), ('flash', 'config')),
    'config-not-a-dict': (_replace('config', 'tiny'), ('config',)),
    'weight-missing': (_pop('model', 'blocks.0.attn.qkv.weight'), ('qkv', 'missing')),
    'weight-unexpected': (_weight('blocks.7.mlp.fc.weight', torch.zeros(64, 16)), ('blocks.7', 'unexpected')),
    'weight-shape': (_weight('ln_f.weight', torch.ones(17)), ('ln_f', 'shape', 'size')),
    'weight-not-a-tensor': (_weight('ln_f.weight', [1.0] * 16), ('ln_f', 'tensor')),
    'weights-nan': (_weights(math.nan), ('nan', 'finite')),
    'weight-inf': (_weights(math.inf, {'blocks.0.mlp.fc.weight'}), ('inf', 'finite')),
    'tokenizer-malformed': (_replace('tokenizer', {'name': 'bpe_300', 'pat_str': 5}), ('tokenizer',)),
    'tokenizer-unknown': (_replace('tokenizer', {'name': 'gpt5'}), ('tokenizer', 'gpt5')),
    'tokenizer-not-base64': (_ranks_not_base64, ('tokenizer', 'base64')),
    'tokenizer-too-big': (_replace('tokenizer', {'name': 'gpt2'}), ('tokenizer', 'vocab')),
    'extra-not-a-dict': (_replace('extra', 5), ('extra',)),
    # issue 28: the instruction template, which the model does not need but --instruction fills in
    'template-not-a-string': (_set('extra', instruction_template=5), ('instruction_template',)),
    'template-no-field': (_set('extra', instruction_template='Instruction:\nStory:'), ('instruction_template',)),
    'template-other-field': (_set('extra', instruction_template='{request}\nStory:'), ('instruction_template',)),
    'template-unbalanced': (_set('extra', instruction_template='{instruction\nStory:'), ('instruction_template',)),
}


@pytest.fixture(scope='session')
def tampered(ckpt, session_tmp):
    "tampered(name) -> a copy of the base checkpoint changed as TAMPERED[name] says, named '<name>.pt'."
    folder = session_tmp / 'tampered'
    folder.mkdir(exist_ok=True)

    def make(name: str) -> Path:
        path = folder / f'{name}.pt'
        if not path.exists():
            payload = torch.load(ckpt, weights_only=True)
            TAMPERED[name][0](payload)
            torch.save(payload, path)
        return path

    return make


def _no_outputs(folder: Path):
    assert not folder.exists() or not any(folder.iterdir()), f'a refused command wrote {sorted(os.listdir(folder))}'


@pytest.mark.parametrize('case', TAMPERED)
def test_c1_load_checkpoint_api(case, tampered):
    path = tampered(case)
    with pytest.raises(ValueError) as e:  # CheckpointError is a ValueError; KeyError/RuntimeError/TypeError are not
        load_checkpoint(path)
    assert not _mentions(str(e.value), [path.name, TAMPERED[case][1]]), f'{type(e.value).__name__}: {e.value}'


@pytest.mark.parametrize('case', TAMPERED)
def test_c1_generate(case, tampered):
    path = tampered(case)
    r = run_cli(GENERATE, '--checkpoint', path, *GEN)
    assert_refused(r, 2, path.name, TAMPERED[case][1])
    assert not r.out.strip(), f'text was generated from a broken checkpoint: {r.out[:80]!r}'


@pytest.mark.parametrize('case', TAMPERED)
def test_c1_analyze(case, tampered, tmp_path):
    path = tampered(case)
    r = run_cli(ANALYZE, '--checkpoint', path, '--text', TEXT, '--out-dir', tmp_path / 'figs', '--device', 'cpu')
    assert_refused(r, 2, path.name, TAMPERED[case][1])
    _no_outputs(tmp_path / 'figs')


SOME_TAMPERED = [
    'no-config',
    'config-layers',
    'weight-shape',
    'weights-nan',
    'tokenizer-malformed',
    'tokenizer-too-big',
]


@pytest.mark.parametrize('case', SOME_TAMPERED)
def test_c1_train_init_from(case, tampered, tmp_path):
    path = tampered(case)
    r = run_cli(TRAIN, *RUN, '--max-steps', 2, '--init-from', path, '--out-dir', tmp_path / 'out')
    assert_refused(r, 2, path.name, TAMPERED[case][1])
    assert not list((tmp_path / 'out').glob('*.pt')) if (tmp_path / 'out').exists() else True


@pytest.mark.parametrize('case', SOME_TAMPERED + ['extra-not-a-dict'])
def test_c1_train_resume(case, tampered, run_dir):
    shutil.copy(tampered(case), run_dir / 'last.pt')
    before = snapshot(run_dir)
    r = run_cli(TRAIN, *RUN, '--max-steps', 3, '--resume', '--out-dir', run_dir)
    assert_refused(r, 2, 'last.pt', TAMPERED[case][1])
    assert not leftovers(run_dir) and snapshot(run_dir) == before, 'the run folder changed'


@pytest.mark.parametrize('case', SOME_TAMPERED)
def test_c1_finetune(case, tampered, tmp_path, stories_txt):
    path = tampered(case)
    r = run_cli(FINETUNE, '--checkpoint', path, *finetune_args(tmp_path / 'ft'))
    assert_refused(r, 2, path.name, TAMPERED[case][1])
    _no_outputs(tmp_path / 'ft')


def test_c1_resume_without_optimizer_state(run_dir):
    "A last.pt saved by something other than training (no optimiser state) cannot be resumed: say so, naming the file."
    payload = torch.load(run_dir / 'last.pt', weights_only=True)
    del payload['extra']['optimizer']
    torch.save(payload, run_dir / 'last.pt')
    before = snapshot(run_dir)
    r = run_cli(TRAIN, *RUN, '--max-steps', 3, '--resume', '--out-dir', run_dir)
    assert_refused(r, 2, 'last.pt', ('optimizer', 'optimiser', 'resume'))
    assert snapshot(run_dir) == before


TEMPLATES = [name for name in TAMPERED if name.startswith('template-')]


@pytest.mark.parametrize('case', TEMPLATES)
def test_c1_generate_instruction_tampered_template(case, tampered):
    "--instruction fills in the checkpoint's template: a tampered one is refused at load (exit 2), not a traceback."
    path = tampered(case)
    r = run_cli(GENERATE, '--checkpoint', path, '--instruction', 'Write a story.', *GEN)
    assert_refused(r, 2, path.name, 'instruction_template')
    assert not r.out.strip()


class Sneaky:
    "Unpickling this runs a shell command: a Hugging Face folder's pytorch_model.bin must not be unpickled."

    def __reduce__(self):
        return (os.system, ('touch PWNED',))


def _hf_config(edit):
    def write(folder, good):
        (folder / 'config.json').write_text(edit((good / 'config.json').read_text()))
        shutil.copy(good / 'model.safetensors', folder)

    return write


def _hf_weights(edit):
    def write(folder, good):
        shutil.copy(good / 'config.json', folder)
        edit(folder, good)

    return write


def _without_wpe(folder, good):
    from safetensors.torch import load_file

    torch.save(
        {k: v for k, v in load_file(good / 'model.safetensors').items() if 'wpe' not in k}, folder / 'pytorch_model.bin'
    )


BROKEN_HF = {  # folder name: (write it from the good folder, what the message must mention besides the folder)
    'hf-no-config': (lambda folder, good: shutil.copy(good / 'model.safetensors', folder), ('config.json',)),
    'hf-config-a-list': (_hf_config(lambda text: '[1, 2]'), ('config.json', 'list')),
    'hf-config-bad-json': (_hf_config(lambda text: text[: len(text) // 2]), ('config.json', 'json')),
    'hf-config-no-width': (_hf_config(lambda text: text.replace('"n_embd"', '"width"')), ('config.json', 'n_embd')),
    'hf-truncated-weights': (
        _hf_weights(lambda f, g: (f / 'model.safetensors').write_bytes((g / 'model.safetensors').read_bytes()[:5000])),
        ('model.safetensors', ('truncated', 'corrupt')),
    ),
    'hf-no-weights': (_hf_weights(lambda f, g: None), ('model.safetensors', 'pytorch_model.bin')),
    'hf-pickle-runs-code': (
        _hf_weights(lambda f, g: torch.save({'x': Sneaky()}, f / 'pytorch_model.bin')),
        ('pytorch_model.bin', ('refus', 'unsafe')),
    ),
    'hf-weight-missing': (_hf_weights(_without_wpe), ('wpe.weight',)),
}


@pytest.fixture(scope='session')
def hf_folder(session_tmp):
    "hf_folder(name) -> a Hugging Face GPT-2 folder of a tiny random model, broken as BROKEN_HF[name] says ('good')."
    from gpt_nb.huggingface import save_pretrained

    root = session_tmp / 'hf'
    if not root.exists():
        torch.manual_seed(0)
        save_pretrained(
            GPT(GPTConfig(vocab_size=50257, context_length=32, n_layer=1, n_head=2, d_model=16)), root / 'good'
        )

    def make(name: str) -> Path:
        folder = root / name
        if name != 'good' and not folder.exists():
            folder.mkdir()
            BROKEN_HF[name][0](folder, root / 'good')
        return folder

    return make


def _hf_argv(script, folder, out):
    "The command line of `script` with the Hugging Face `folder` as its model, writing under `out`."
    return {
        GENERATE: ['--pretrained', folder, *GEN],
        ANALYZE: ['--pretrained', folder, '--text', TEXT, '--device', 'cpu', '--out-dir', out],
        FINETUNE: finetune_args(out, '--pretrained', folder),
        TRAIN: [*RUN, '--max-steps', 1, '--init-from', folder, '--out-dir', out],
    }[script]


@pytest.mark.parametrize('script', [GENERATE, ANALYZE, FINETUNE, TRAIN])
@pytest.mark.parametrize('case', BROKEN_HF)
def test_c1_broken_hugging_face_folder(case, script, hf_folder, tmp_path, stories_txt):
    "--pretrained / --init-from a Hugging Face folder that is not what it claims: exit 2 naming the flag and the file."
    folder = hf_folder(case)
    r = run_cli(script, *_hf_argv(script, folder, tmp_path / 'out'))
    flag = '--init-from' if script == TRAIN else '--pretrained'
    assert_refused(r, 2, flag, case, *BROKEN_HF[case][1])
    assert not (tmp_path / 'out').exists(), 'refused after the output folder was made'
    assert not Path('PWNED').exists(), 'the pickle ran its payload'


def test_c1_good_hugging_face_folder(hf_folder):
    "The control: the same folder unbroken generates."
    assert_ok(run_cli(GENERATE, '--pretrained', hf_folder('good'), *GEN))


# ================================================================================================
# C2  Numeric extremes in sampling: numerically safe, never an id outside the vocabulary
# ================================================================================================
EXTREME_OK = {  # generate-text flags that must work (exit 0, text generated)
    'temperature-1e-300': ['--temperature', '1e-300'],
    'temperature-denormal': ['--temperature', '5e-324'],
    'temperature-1e300': ['--temperature', '1e300'],
    'temperature-max-float': ['--temperature', '1.7976931348623157e308'],
    'repetition-penalty-1e-300': ['--repetition-penalty', '1e-300'],
    'repetition-penalty-1e300': ['--repetition-penalty', '1e300'],
    'top-p-1e-300': ['--top-p', '1e-300'],
    'top-k-1e12': ['--top-k', str(10**12)],
    'all-extremes-at-once': [
        '--temperature',
        '1e-300',
        '--top-p',
        '1e-300',
        '--repetition-penalty',
        '1e300',
        '--top-k',
        '1',
    ],
}


@pytest.mark.parametrize('case', EXTREME_OK)
def test_c2_generate_extreme_settings(case, ckpt):
    r = run_cli(GENERATE, '--checkpoint', ckpt, *GEN, '--prompt', 'Once', *EXTREME_OK[case])
    assert_ok(r)
    assert r.out.startswith('Once')


EXTREME_REFUSED = {  # flag values outside their range: exit 2 naming the flag
    'temperature-negative-tiny': (['--temperature', '-1e-300'], '--temperature'),
    'top-p-above-1': (['--top-p', '1.0000001'], '--top-p'),
    'top-p-zero': (['--top-p', '0'], '--top-p'),
    'top-k-zero': (['--top-k', '0'], '--top-k'),
    'repetition-penalty-zero': (['--repetition-penalty', '0'], '--repetition-penalty'),
}


@pytest.mark.parametrize('case', EXTREME_REFUSED)
def test_c2_generate_out_of_range(case, ckpt):
    argv, flag = EXTREME_REFUSED[case]
    r = run_cli(GENERATE, '--checkpoint', ckpt, *GEN, *argv)
    assert_refused(r, 2, flag)
    assert not r.out


@pytest.mark.parametrize(
    'argv', [['--temperature', 'inf'], ['--repetition-penalty', 'inf']], ids=['temperature-inf', 'penalty-inf']
)
def test_c2_generate_infinite_settings(argv, ckpt):
    "Infinity may mean its limit (uniform / never repeat) or be refused; either way no traceback and no bad id."
    r = run_cli(GENERATE, '--checkpoint', ckpt, *GEN, *argv)
    assert_clean(r)
    assert r.code in (0, 2), r.summary()
    if r.code == 2:
        assert not _mentions(r.message, [argv[0]])


V = 300


def _logits(kind):
    x = torch.randn(2, V, generator=torch.Generator().manual_seed(0))
    if kind == 'all-nan':
        x[:] = math.nan
    elif kind == 'all-neg-inf':
        x[:] = -math.inf
    elif kind == 'one-row-nan':
        x[1] = math.nan
    elif kind == 'pos-inf':
        x[0, 7] = math.inf
    return x


@pytest.mark.parametrize('kind', ['all-nan', 'all-neg-inf', 'one-row-nan', 'pos-inf'])
@pytest.mark.parametrize('temperature', [1.0, 0.0], ids=['sampled', 'greedy'])
def test_c2_sampler_non_finite_logits(kind, temperature):
    "Non-finite logits are an error that says so, never an id outside [0, vocab)."
    try:
        token = sample_next_token(_logits(kind), temperature=temperature, top_k=50, top_p=0.9)
    except (ValueError, ArithmeticError) as e:
        assert not _mentions(str(e), [('finite', 'nan', 'inf')]), str(e)
        return
    pytest.fail(f'returned ids {token.tolist()} for {kind} logits instead of an error (vocabulary {V})')


SAFE_SAMPLING = {  # (logits, sampling settings): a valid id, and the argmax where the settings leave no choice
    'float32-extremes': (lambda: torch.tensor([[-3e38, 3e38, 0.0] + [-3e38] * 5]), dict(temperature=1.0), 1),
    'temperature-1e-300': (lambda: torch.randn(4, V), dict(temperature=1e-300), 'argmax'),
    'temperature-1e300': (lambda: torch.randn(4, V), dict(temperature=1e300), None),
    'top-p-1e-300': (lambda: torch.randn(4, V), dict(top_p=1e-300), 'argmax'),
    'top-k-huge': (lambda: torch.randn(4, V), dict(top_k=10**12), None),
    'float16-temperature-1e-8': (lambda: torch.randn(4, V).half(), dict(temperature=1e-8), 'argmax'),
    'bfloat16-temperature-1e300': (lambda: torch.randn(4, V).bfloat16(), dict(temperature=1e300), None),
    'some-neg-inf': (
        lambda: torch.where(torch.arange(V) == 5, 1.0, -math.inf).expand(3, V).clone(),
        dict(temperature=1.0),
        5,
    ),
}


@pytest.mark.parametrize('case', SAFE_SAMPLING)
def test_c2_sampler_extremes(case):
    make, settings, expected = SAFE_SAMPLING[case]
    logits = make()
    torch.manual_seed(0)
    try:
        token = sample_next_token(logits, **settings)
    except (ValueError, ArithmeticError) as e:
        if case == 'some-neg-inf' and not _mentions(str(e), [('finite', 'inf')]):
            return  # a clear refusal is fine here
        raise
    assert token.shape == (logits.size(0),) and int(token.min()) >= 0 and int(token.max()) < logits.size(-1), (
        token.tolist()
    )
    if expected == 'argmax':
        assert token.tolist() == logits.float().argmax(-1).tolist()
    elif expected is not None:
        assert set(token.tolist()) == {expected}


def test_c2_generate_api_nan_model():
    "generate() with a model whose weights are NaN raises a clear error instead of returning ids out of range."
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=V, context_length=16, n_layer=1, n_head=2, d_model=16))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(math.nan)
    with pytest.raises((ValueError, ArithmeticError)) as e:
        out = generate(model, torch.tensor([[1, 2, 3]]), 5, temperature=1.0, seed=0)
        pytest.fail(f'generated {out.tolist()} from NaN weights')
    assert not _mentions(str(e.value), [('finite', 'nan')])


def test_c2_train_lr_huge_stops_cleanly(run_dir):
    "--lr 1e30 ruins the weights: the non-finite-loss stop (exit 1, naming the learning rate), checkpoints untouched."
    before = snapshot(run_dir)
    r = run_cli(TRAIN, *TINY, '--max-steps', 6, '--lr', '1e30', '--out-dir', run_dir)
    assert_refused(r, 1, ('learning rate', '--lr'), ('non-finite', 'nan', 'inf'))
    assert_untouched(run_dir, before)


@pytest.fixture(scope='session')
def padded_ckpt(session_tmp) -> Path:
    """A GPT-2-tokenizer checkpoint whose vocabulary has 47 more rows than the tokenizer has tokens (50,304, nanoGPT's
    padding), made so that unmasked sampling would draw only padding ids: every position's final state is the same
    vector (ln_f's weight zero, its bias ones), and the padding rows point along it."""
    encoding = get_encoding('gpt2')
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=encoding.n_vocab + 47, context_length=32, n_layer=1, n_head=2, d_model=16))
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.embed.tok.weight[encoding.n_vocab :] = 10.0  # logit 160 for each padding row, about 0 for the rest
    path = session_tmp / 'padded.pt'
    save_checkpoint(path, model, encoding)
    return path


def test_c2_padded_vocabulary_loads(padded_ckpt):
    "A vocabulary larger than the tokenizer's (padding rows) loads: every token id fits the model."
    loaded = load_checkpoint(padded_ckpt)
    assert loaded.config.vocab_size == loaded.tokenizer.n_vocab + 47


@pytest.mark.parametrize('argv', [['--temperature', '2'], ['--temperature', '0']], ids=['sampled', 'greedy'])
def test_c2_padded_vocabulary_generates(argv, padded_ckpt):
    "Sampling never yields a padding id the tokenizer cannot decode: exit 0, text, no traceback."
    r = run_cli(GENERATE, '--checkpoint', padded_ckpt, '--max-new-tokens', 40, '--top-k', 10**6, '--seed', 0, *argv)
    assert_ok(r)
    assert r.out.startswith('Once upon a time')


# ================================================================================================
# C3  Values argparse accepts but the program cannot use: refused up front (exit 2) naming the flag;
#     sizes that cannot fit in memory are refused with an estimate
# ================================================================================================
MEMORY = ('memory', 'GB', 'GiB', 'TB', 'TiB')
UNUSABLE = {  # name: (script, argv, what the message must mention, time limit)
    'train-seed-2**64': (TRAIN, TINY + ['--seed', 2**64 + 1], ['--seed'], 60),
    'generate-seed-2**64': (GENERATE, GEN[:-2] + ['--seed', 2**64], ['--seed'], 60),
    'quickstart-seed-2**70': (QUICKSTART, ['--seed', 2**70, '--max-new-tokens', 2], ['--seed'], 60),
    'finetune-seed-2**70': (FINETUNE, 'FT', ['--seed'], 60),
    'train-epochs-inf': (TRAIN, TINY + ['--epochs', 'inf'], ['--epochs'], 60),
    'train-minutes-inf': (TRAIN, TINY + ['--minutes', 'inf'], ['--minutes'], 60),
    'train-batch-size-1e9': (TRAIN, TINY + ['--max-steps', 1, '--batch-size', 10**9], ['--batch-size', MEMORY], 20),
    'train-grad-accum-1e9': (TRAIN, TINY + ['--max-steps', 1, '--grad-accum', 10**9], ['--grad-accum'], 6),
    'train-preset-gpt3': (TRAIN, RUN + ['--tokenizer', 'bpe:300', '--preset', 'gpt3', '--max-steps', 1], [MEMORY], 30),
    'train-width-1M': (
        TRAIN,
        TINY[2:] + ['--n-layer', 1, '--d-model', 2**20, '--max-steps', 1],
        ['--d-model', MEMORY],
        30,
    ),
    'train-generated-stories-1e12': (
        TRAIN,
        MODEL + RUN[2:] + ['--data', 'generated', '--max-stories', 10**12],
        ['--max-stories'],
        6,
    ),
    'train-sample-tokens-1e12': (TRAIN, TINY + ['--max-steps', 1, '--sample-tokens', 10**12], ['--sample-tokens'], 20),
    'train-data-empty': (TRAIN, TINY[: -len(RUN)] + RUN[2:] + ['--data', ''], ['--data'], 60),
    'train-data-blank': (TRAIN, MODEL + RUN[2:] + ['--data', '   '], ['--data'], 60),
    'train-out-dir-empty': (TRAIN, TINY + ['--out-dir', ''], ['--out-dir'], 60),
    'train-tokenizer-bpe-huge': (TRAIN, TINY + ['--tokenizer', f'bpe:{10**9}'], ['--tokenizer'], 60),
    'train-heads-not-dividing': (TRAIN, TINY + ['--n-head', 3], [('--n-head', 'n_head')], 60),
    'train-eval-interval-0': (TRAIN, TINY + ['--eval-interval', 0], ['--eval-interval'], 60),
    'train-warmup-negative': (TRAIN, TINY + ['--warmup-steps', -1], ['--warmup-steps'], 60),
    'train-device-cuda7': (TRAIN, TINY + ['--device', 'cuda:7'], ['--device'], 60),
    'generate-max-new-tokens-negative': (
        GENERATE,
        ['--max-new-tokens', -5, '--device', 'cpu'],
        ['--max-new-tokens'],
        60,
    ),
    'generate-num-samples-0': (GENERATE, ['--num-samples', 0, '--device', 'cpu'], ['--num-samples'], 60),
    'analyze-layer-too-big': (ANALYZE, ['--layer', 5, '--device', 'cpu'], ['--layer'], 60),
    'analyze-head-negative': (ANALYZE, ['--head', -1, '--device', 'cpu'], ['--head'], 60),
    'analyze-text-empty': (ANALYZE, ['--text', '', '--device', 'cpu'], ['--text'], 60),
    'finetune-lora-rank-1e9': (FINETUNE, 'FT', ['--lora-rank', MEMORY], 20),
    'finetune-batch-size-0': (FINETUNE, 'FT', ['--batch-size'], 60),
    'quickstart-max-new-tokens-0': (QUICKSTART, ['--max-new-tokens', 0], ['--max-new-tokens'], 60),
    'quickstart-preset-gpt3': (QUICKSTART, ['--preset', 'gpt3'], ['--preset'], 60),
}
_FT_EXTRA = {
    'finetune-seed-2**70': ['--seed', 2**70],
    'finetune-lora-rank-1e9': ['--lora-rank', 10**9],
    'finetune-batch-size-0': ['--batch-size', 0],
}


@pytest.mark.parametrize('case', UNUSABLE)
def test_c3_unusable_values(case, ckpt, tmp_path, stories_txt):
    script, argv, mentions, limit = UNUSABLE[case]
    if argv == 'FT':
        argv = finetune_args(tmp_path / 'ft', *_FT_EXTRA[case])
    elif script in (GENERATE, ANALYZE):
        argv = ['--checkpoint', ckpt, *argv]
    if script == TRAIN and '--out-dir' not in argv:
        argv = [*argv, '--out-dir', tmp_path / 'out']
    r = run_cli(script, *argv, timeout=limit, memory=1 << 30)  # 1 GiB more than now: an attempt to allocate fails fast
    assert_refused(r, 2, *mentions)
    assert r.seconds < limit
    for folder in (tmp_path / 'out', tmp_path / 'ft'):
        assert not folder.exists() or not list(folder.glob('*.pt')), f'a refused run wrote {os.listdir(folder)}'


EMPTY_PROMPT = {  # an empty prompt starts from the end-of-text token, as GPT-2 starts a new text
    'quickstart': (QUICKSTART, ['--prompt', '', '--max-new-tokens', 3]),
    'quickstart-end-of-text': (QUICKSTART, ['--prompt', ENDOFTEXT, '--max-new-tokens', 3]),
    'generate': (GENERATE, ['--prompt', '', *GEN]),
    'generate-end-of-text': (GENERATE, ['--prompt', ENDOFTEXT, *GEN]),
}


@pytest.mark.parametrize('script,argv', list(EMPTY_PROMPT.values()), ids=list(EMPTY_PROMPT))
def test_c3_empty_prompt(script, argv, ckpt):
    r = run_cli(script, *(['--checkpoint', ckpt] if script == GENERATE else []), *argv)
    assert_ok(r)


def test_c3_context_length_1e9_fits_to_data(tmp_path):
    "A context longer than the data is shrunk to fit (and said), not allocated."
    r = run_cli(
        TRAIN,
        *MODEL[:6],
        *MODEL[8:],
        *RUN,
        '--context-length',
        10**9,
        '--max-steps',
        1,
        '--out-dir',
        tmp_path / 'out',
        timeout=60,
        memory=3 << 30,
    )
    assert_ok(r)
    assert_loadable(tmp_path / 'out')


# ================================================================================================
# C4  Where output goes: a closed pipe, a full disk, a folder that cannot be written
# ================================================================================================
def test_c4_analyze_closed_pipe(ckpt, tmp_path):
    "The reader of stdout goes away (| head -c 20): stop quietly, exit 0."
    pipe = Pipe(20)
    r = run_cli(
        ANALYZE, '--checkpoint', ckpt, '--text', TEXT, '--out-dir', tmp_path / 'figs', '--device', 'cpu', stdout=pipe
    )
    pipe.close()
    assert_ok(r)


FULL_DISK_STDOUT = {
    'generate': (GENERATE, ['--max-new-tokens', 50, '--device', 'cpu', '--seed', 0]),
    'quickstart': (QUICKSTART, ['--max-new-tokens', 3]),
    'analyze': (ANALYZE, ['--text', TEXT, '--device', 'cpu']),
}


@pytest.mark.parametrize('case', FULL_DISK_STDOUT)
def test_c4_stdout_full_disk(case, ckpt, tmp_path):
    "stdout is a file on a full disk (> /dev/full): exit 1 with a one-line message saying so."
    script, argv = FULL_DISK_STDOUT[case]
    if script != QUICKSTART:
        argv = ['--checkpoint', ckpt, *argv]
    pipe = Pipe(0, errno.ENOSPC)
    r = run_cli(script, *argv, stdout=pipe)
    pipe.close()
    assert_refused(r, 1, ('no space', 'full'))


def test_c4_resume_full_disk_at_save(run_dir, monkeypatch):
    "The disk fills while last.pt is saved: exit 1 naming the problem; the previous last.pt and best_model.pt intact."
    before = snapshot(run_dir)
    full_disk(monkeypatch, 'torch.save')
    r = run_cli(TRAIN, *TINY, '--max-steps', 3, '--resume', '--out-dir', run_dir)
    monkeypatch.undo()
    assert_refused(r, 1, ('no space', 'full'), ('.pt', str(run_dir.name)))
    assert_untouched(run_dir, before)


def test_c4_train_full_disk_at_fsync(tmp_path, monkeypatch):
    "The disk is full from the start (every fsync fails): exit 1, a one-line message, no temporary file anywhere."
    full_disk(monkeypatch, 'fsync')
    r = run_cli(TRAIN, *TINY, '--max-steps', 2, '--out-dir', tmp_path / 'out', '--cache-dir', tmp_path / 'cache')
    monkeypatch.undo()
    assert_refused(r, 1, ('no space', 'full'))
    assert not leftovers(tmp_path), leftovers(tmp_path)


def test_c4_train_full_disk_at_loss_curve(tmp_path, monkeypatch):
    "The checkpoints are saved, then loss_curve.png cannot be: exit 1 naming it; the checkpoints intact and loadable."
    full_disk(monkeypatch, 'savefig')
    r = train(tmp_path / 'out', '--max-steps', 2)
    monkeypatch.undo()
    assert_refused(r, 1, ('no space', 'full'), ('loss_curve', 'out'))
    assert (tmp_path / 'out' / 'last.pt').is_file()
    assert_loadable(tmp_path / 'out')


def test_c4_finetune_full_disk_at_save(tmp_path, monkeypatch, stories_txt):
    full_disk(monkeypatch, 'torch.save')
    r = run_cli(FINETUNE, *finetune_args(tmp_path / 'ft'))
    monkeypatch.undo()
    assert_refused(r, 1, ('no space', 'full'))
    assert not leftovers(tmp_path) and not (tmp_path / 'ft' / 'best_model.pt').exists()


def test_c4_analyze_full_disk_at_savefig(ckpt, tmp_path, monkeypatch):
    full_disk(monkeypatch, 'savefig')
    r = run_cli(ANALYZE, '--checkpoint', ckpt, '--text', TEXT, '--out-dir', tmp_path / 'figs', '--device', 'cpu')
    monkeypatch.undo()
    assert_refused(r, 1, ('no space', 'full'))


def test_c4_train_out_dir_becomes_unwritable(tmp_path, monkeypatch):
    "The out-dir turns read-only during the run (loss_curve.png refused): exit 1 naming the folder; checkpoints kept."
    unwritable(monkeypatch, 'savefig')
    r = train(tmp_path / 'out', '--max-steps', 2)
    monkeypatch.undo()
    assert_refused(r, 1, ('permission', 'denied', 'cannot be written', 'not writable'), ('out', 'loss_curve'))
    assert_loadable(tmp_path / 'out')


def test_c4_resume_rename_refused(run_dir, monkeypatch):
    "Renaming the finished save over last.pt is refused (EACCES): exit 1; old checkpoints intact, no temporary file."
    before = snapshot(run_dir)
    unwritable(monkeypatch, 'replace')
    r = run_cli(TRAIN, *TINY, '--max-steps', 3, '--resume', '--out-dir', run_dir)
    monkeypatch.undo()
    assert_refused(r, 1, ('permission', 'denied', 'cannot be written', 'not writable'))
    assert_untouched(run_dir, before)


def test_c4_analyze_out_dir_becomes_unwritable(ckpt, tmp_path, monkeypatch):
    unwritable(monkeypatch, 'savefig')
    r = run_cli(ANALYZE, '--checkpoint', ckpt, '--text', TEXT, '--out-dir', tmp_path / 'figs', '--device', 'cpu')
    monkeypatch.undo()
    assert_refused(r, 1, ('permission', 'denied', 'cannot be written', 'not writable'), 'figs')


OUT_DIR_IS_A_FILE = {
    'train': (TRAIN, lambda ck, out: [*TINY, '--max-steps', 2, '--out-dir', out]),
    'analyze': (ANALYZE, lambda ck, out: ['--checkpoint', ck, '--text', TEXT, '--device', 'cpu', '--out-dir', out]),
    'finetune': (FINETUNE, lambda ck, out: finetune_args(out)),
}


@pytest.mark.parametrize('case', OUT_DIR_IS_A_FILE)
def test_c4_out_dir_is_a_file(case, ckpt, tmp_path, stories_txt):
    "--out-dir names an existing file: refused before any work (exit 2), naming --out-dir; the file untouched."
    script, argv = OUT_DIR_IS_A_FILE[case]
    target = tmp_path / 'notes.txt'
    target.write_text('keep me')
    r = run_cli(script, *argv(ckpt, target))
    assert_refused(r, 2, '--out-dir')
    assert target.read_text() == 'keep me'


@needs_non_root
@pytest.mark.parametrize('case', OUT_DIR_IS_A_FILE)
def test_c4_out_dir_read_only(case, ckpt, tmp_path, stories_txt):
    script, argv = OUT_DIR_IS_A_FILE[case]
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o500)
    try:
        r = run_cli(script, *argv(ckpt, locked / 'out'))
    finally:
        locked.chmod(0o700)
    assert_refused(r, 2, '--out-dir')


@pytest.mark.parametrize('script', [FINETUNE, TRAIN])
def test_c4_closed_pipe_before_the_work(script, tmp_path, stories_txt):
    "The reader goes away at the first line, which these tools print before their work: exit 0, quietly."
    argv = (
        finetune_args(tmp_path / 'ft')
        if script == FINETUNE
        else [*TINY, '--max-steps', 2, '--out-dir', tmp_path / 'out']
    )
    pipe = Pipe(10)
    r = run_cli(script, *argv, stdout=pipe)
    pipe.close()
    assert_ok(r)


@pytest.fixture
def shipped_in_run_dir(tmp_path) -> Path:
    "A run folder whose best_model.pt is the shipped model (a model fine-tuning can start from)."
    import importlib.resources

    folder = tmp_path / 'run'
    folder.mkdir()
    with importlib.resources.as_file(
        importlib.resources.files('gpt_nb') / 'assets' / PRETRAINED['tinystories']
    ) as path:
        shutil.copy(path, folder / 'best_model.pt')
    return folder


@pytest.mark.parametrize('flag', ['--checkpoint', '--pretrained'])
def test_c4_finetune_out_dir_holds_its_input(flag, shipped_in_run_dir, stories_txt):
    "Fine-tuning DIR/best_model.pt into --out-dir DIR would replace it: refused (exit 2) naming both; it is untouched."
    before = snapshot(shipped_in_run_dir)
    r = run_cli(FINETUNE, *finetune_args(shipped_in_run_dir, flag, shipped_in_run_dir / 'best_model.pt'))
    assert_refused(r, 2, '--out-dir', flag)
    assert_untouched(shipped_in_run_dir, before)


@pytest.mark.parametrize('name', ['best_model.pt', 'last.pt'])
def test_c4_train_out_dir_holds_its_init_from(name, run_dir):
    before = snapshot(run_dir)
    r = run_cli(TRAIN, *RUN, '--max-steps', 1, '--init-from', run_dir / name, '--out-dir', run_dir)
    assert_refused(r, 2, '--out-dir', '--init-from')
    assert_untouched(run_dir, before)


def test_c4_checkpoint_is_a_directory(tmp_path):
    (tmp_path / 'model.pt').mkdir()
    r = run_cli(GENERATE, '--checkpoint', tmp_path / 'model.pt', *GEN)
    assert_refused(r, 2, 'model.pt')


# ================================================================================================
# C5  Data files: the reader names the file (and the line) it cannot read; small data is used, not lost
# ================================================================================================
def _stories(n=12, seed=5):
    return generate_stories(n, seed=seed)


def _jsonl(lines):
    return ''.join(l + '\n' for l in lines)


def _with_line(lines, number, text):
    lines = list(lines)
    lines[number - 1] = text
    return lines


_GOOD_LINES = [json.dumps({'text': s}) for s in _stories()]
BAD_DATA = {  # file name: (content, what the message must mention besides the file name)
    'bad-json-line7.jsonl': (_jsonl(_with_line(_GOOD_LINES, 7, '{"text": "unterminated')), ('7',)),
    'null-text-line3.jsonl': (_jsonl(_with_line(_GOOD_LINES, 3, '{"text": null}')), ('3',)),
    'number-text-line4.jsonl': (_jsonl(_with_line(_GOOD_LINES, 4, '{"text": 42}')), ('4',)),
    'invalid-utf8.txt': (
        ENDOFTEXT.join(_stories()).encode() + b'\n\xff\xfe broken \xc3\x28\n',
        (('utf-8', 'utf8', 'decode', 'encoding'),),
    ),
    'invalid-utf8.jsonl': (
        _jsonl(_GOOD_LINES).encode() + b'{"text": "\xff\xfe"}\n',
        (('utf-8', 'utf8', 'decode', 'encoding'),),
    ),
    'empty.txt': ('', (('empty', 'no stor', 'no text'),)),
    'blank.txt': ('\n   \n\t\n', (('empty', 'no stor', 'no text'),)),
    'empty.jsonl': ('', (('empty', 'no stor', 'no text'),)),
    'blank.jsonl': ('\n\n  \n', (('empty', 'no stor', 'no text'),)),
    'random-bytes.txt': (bytes(range(256)) * 40, (('utf-8', 'utf8', 'decode', 'encoding', 'text'),)),
}


def _write(path: Path, content) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize('name', BAD_DATA)
def test_c5_train_bad_data(name, tmp_path):
    path = _write(tmp_path / name, BAD_DATA[name][0])
    r = run_cli(TRAIN, *MODEL, *RUN[2:], '--data', path, '--max-steps', 2, '--out-dir', tmp_path / 'out')
    assert_refused(r, 2, name, *BAD_DATA[name][1])
    assert not (tmp_path / 'out').exists() or not list((tmp_path / 'out').glob('*.pt'))


@pytest.mark.parametrize('name', ['bad-json-line7.jsonl', 'invalid-utf8.txt', 'empty.txt', 'empty.jsonl'])
def test_c5_finetune_bad_data(name, tmp_path, stories_txt):
    path = _write(tmp_path / name, BAD_DATA[name][0])
    argv = finetune_args(tmp_path / 'ft')
    argv[1] = path
    r = run_cli(FINETUNE, *argv)
    assert_refused(r, 2, name, *BAD_DATA[name][1])
    _no_outputs(tmp_path / 'ft')


@pytest.mark.parametrize('name', ['bad-json-line7.jsonl', 'null-text-line3.jsonl', 'invalid-utf8.txt'])
def test_c5_load_stories_api(name, tmp_path):
    "load_stories raises a ValueError naming the file (and line) rather than a decoder's or datasets' own error."
    path = _write(tmp_path / name, BAD_DATA[name][0])
    with pytest.raises(ValueError) as e:
        stories = load_stories(path, verbose=False)
        list(stories.train)
        list(stories.valid)
    assert not _mentions(str(e.value), [name, *BAD_DATA[name][1]]), f'{type(e.value).__name__}: {e.value}'


SMALL_DATA = {  # a little data that must be used for training, not lost to the validation split
    'single-story.txt': ' '.join(_stories(6, seed=8)).replace('\n', ' '),
    'single-line.jsonl': json.dumps({'text': ' '.join(_stories(6, seed=9))}) + '\n',
}


@pytest.mark.parametrize('name', SMALL_DATA)
def test_c5_single_story(name, tmp_path):
    path = _write(tmp_path / name, SMALL_DATA[name])
    r = run_cli(TRAIN, *MODEL, *RUN[2:], '--data', path, '--max-steps', 2, '--out-dir', tmp_path / 'out')
    assert_ok(r)
    assert (tmp_path / 'out' / 'best_model.pt').is_file()
    assert_loadable(tmp_path / 'out')


def test_c5_data_dot_ignores_own_cache(tmp_path, monkeypatch):
    "`--data .` twice: the second run must not train on the first run's .gpt_nb_cache/*.json (nor on anything hidden)."
    monkeypatch.delenv('GPT_NB_CACHE')
    (tmp_path / 'stories.txt').write_text(f'\n{ENDOFTEXT}\n'.join(_stories(60, seed=11)))
    argv = [*MODEL, *RUN[2:], '--data', '.', '--max-steps', 1, '--out-dir', 'out']
    first = run_cli(TRAIN, *argv)
    assert_ok(first)
    assert (tmp_path / '.gpt_nb_cache').is_dir()
    second = run_cli(TRAIN, *argv)
    assert_ok(second)
    data_line = next((l for l in second.out.splitlines() if l.startswith('data:')), '')
    assert 'json' not in data_line.lower() and 'text' in data_line.lower(), data_line


def test_c5_data_is_a_checkpoint(ckpt, tmp_path):
    r = run_cli(TRAIN, *MODEL, *RUN[2:], '--data', ckpt, '--max-steps', 2, '--out-dir', tmp_path / 'out')
    assert_refused(r, 2, ckpt.name)


# ================================================================================================
# C6  Concurrency and leftovers: one run per out-dir; stale temporary files cleaned at the next save
# ================================================================================================
def _stale(folder: Path, *names) -> list[Path]:
    paths = []
    for name in names:
        p = folder / f'.{name}.x9y8z7.tmp'
        p.write_bytes(b'half a checkpoint from a run killed long ago')
        os.utime(p, (time.time() - 7200, time.time() - 7200))
        paths.append(p)
    return paths


def test_c6_train_cleans_stale_temp_files(run_dir):
    _stale(run_dir, 'last.pt', 'best_model.pt')
    r = run_cli(TRAIN, *TINY, '--max-steps', 3, '--resume', '--out-dir', run_dir)
    assert_ok(r)
    assert_loadable(run_dir)


def test_c6_finetune_cleans_stale_temp_files(tmp_path, stories_txt):
    (tmp_path / 'ft').mkdir()
    _stale(tmp_path / 'ft', 'best_model.pt')
    r = run_cli(FINETUNE, *finetune_args(tmp_path / 'ft'))
    assert_ok(r)
    assert_loadable(tmp_path / 'ft')


def test_c6_fresh_run_cleans_stale_temp_files(tmp_path):
    (tmp_path / 'out').mkdir()
    _stale(tmp_path / 'out', 'last.pt')
    r = train(tmp_path / 'out', '--max-steps', 2)
    assert_ok(r)
    assert_loadable(tmp_path / 'out')


# ================================================================================================
# C7  Flags that contradict the run being resumed: refused (exit 2) naming the flag; nothing changes
# ================================================================================================
RESUME = ['--resume', '--max-steps', 3, *RUN]  # the run's own data and batch settings, no architecture
CONTRADICTIONS = {
    'preset': ['--preset', 'gpt2'],
    'tokenizer-gpt2': ['--tokenizer', 'gpt2'],
    'tokenizer-other-bpe': ['--tokenizer', 'bpe:400'],
    'n-layer': ['--n-layer', 2],
    'n-head': ['--n-head', 4],
    'd-model': ['--d-model', 32],
    'dropout': ['--dropout', 0.3],
    'context-length': ['--context-length', 64],
    'optimizer': ['--optimizer', 'muon'],
}


@pytest.mark.parametrize('case', CONTRADICTIONS)
def test_c7_resume_contradiction(case, run_dir):
    before = snapshot(run_dir)
    argv = CONTRADICTIONS[case]
    r = run_cli(TRAIN, *RESUME, *argv, '--out-dir', run_dir)
    assert_refused(r, 2, argv[0])
    assert_untouched(run_dir, before)


@pytest.mark.parametrize('extra', [[], MODEL], ids=['no-architecture-flags', 'the-same-flags'])
def test_c7_resume_consistent(extra, run_dir):
    "Flags that agree with the run (or are left out) resume it: exit 0, three steps done."
    r = run_cli(TRAIN, *RESUME, *extra, '--out-dir', run_dir)
    assert_ok(r)
    assert load_checkpoint(run_dir / 'last.pt').extra['step'] == 3
    assert_loadable(run_dir)


def test_c7_resume_and_init_from(run_dir, ckpt):
    before = snapshot(run_dir)
    r = run_cli(TRAIN, *RESUME, '--init-from', ckpt, '--out-dir', run_dir)
    assert_refused(r, 2, ('--init-from', '--resume'))
    assert_untouched(run_dir, before)


CONTRADICTORY = {  # flags that contradict each other when both are typed: refused (exit 2) naming both
    'generate-checkpoint-pretrained': (
        GENERATE,
        ['--pretrained', 'tinystories', *GEN],
        ('--checkpoint', '--pretrained'),
    ),
    'analyze-checkpoint-pretrained': (
        ANALYZE,
        ['--pretrained', 'tinystories', '--text', TEXT, '--device', 'cpu'],
        ('--checkpoint', '--pretrained'),
    ),
    'finetune-checkpoint-pretrained': (FINETUNE, 'FT', ('--checkpoint', '--pretrained')),
    'generate-instruction-prompt': (
        GENERATE,
        ['--instruction', 'Write.', '--prompt', 'Once', *GEN],
        ('--instruction', '--prompt'),
    ),
    'init-from-architecture': (TRAIN, ['--architecture', 'modern'], ('--architecture', '--init-from')),
    'init-from-n-layer': (TRAIN, ['--n-layer', 2], ('--n-layer', '--init-from')),
    'init-from-n-head': (TRAIN, ['--n-head', 4], ('--n-head', '--init-from')),
    'init-from-d-model': (TRAIN, ['--d-model', 32], ('--d-model', '--init-from')),
    'init-from-preset': (TRAIN, ['--preset', 'gpt2'], ('--preset', '--init-from')),
    'init-from-tokenizer': (TRAIN, ['--tokenizer', 'gpt2'], ('--tokenizer', '--init-from')),
}


@pytest.mark.parametrize('case', CONTRADICTORY)
def test_c7_contradictory_flags(case, ckpt, tmp_path, stories_txt):
    script, argv, both = CONTRADICTORY[case]
    if script == TRAIN:
        argv = [*RUN, *argv, '--max-steps', 1, '--init-from', ckpt, '--out-dir', tmp_path / 'out']
    elif argv == 'FT':
        argv = finetune_args(tmp_path / 'out', '--checkpoint', ckpt, '--pretrained', 'tinystories')
    else:
        argv = ['--checkpoint', ckpt, *argv]
    r = run_cli(script, *argv)
    assert_refused(r, 2, *both)
    assert not r.out.strip() and not (tmp_path / 'out').exists()


@pytest.mark.parametrize(
    'script,argv',
    [
        (GENERATE, ['--pretrained', 'tinystories', *GEN]),  # --checkpoint left at its default: no contradiction
        (TRAIN, [*TINY, '--architecture', 'gpt2', '--preset', 'tiny']),  # what the model is: no contradiction
    ],
    ids=['generate-pretrained', 'init-from-the-same-flags'],
)
def test_c7_agreeing_flags(script, argv, ckpt, tmp_path):
    if script == TRAIN:
        argv = [*argv, '--max-steps', 1, '--init-from', ckpt, '--out-dir', tmp_path / 'out']
    assert_ok(run_cli(script, *argv))


# ================================================================================================
# C8  Unbounded work: output streams from the first token, memory stays bounded, Ctrl-C exits 130
# ================================================================================================
def test_c8_generate_huge_stops_when_reader_goes(ckpt):
    "--max-new-tokens 1e12 | head: generation streams (no 1e12-token buffer) and stops quietly when the reader goes."
    pipe = Pipe(200)
    r = run_cli(
        GENERATE,
        '--checkpoint',
        ckpt,
        '--max-new-tokens',
        10**12,
        '--device',
        'cpu',
        '--temperature',
        0,
        stdout=pipe,
        timeout=30,
        memory=2 << 30,
    )  # greedy: this model never reaches <|endoftext|>
    pipe.close()
    assert_ok(r)


def test_c8_analyze_long_text_is_bounded(ckpt, tmp_path):
    "A text 3,000 times the model's context is cropped (and said), in bounded time and memory."
    r = run_cli(
        ANALYZE,
        '--checkpoint',
        ckpt,
        '--text',
        TEXT * 1500,
        '--out-dir',
        tmp_path / 'figs',
        '--device',
        'cpu',
        timeout=30,
        memory=2 << 30,
    )
    assert_ok(r)


def test_c8_train_minutes_budget_is_kept(tmp_path):
    "--minutes bounds a run whose step count would be endless."
    r = train(tmp_path / 'out', '--max-steps', 10**9, '--minutes', 0.02, '--eval-minutes', 0.01, timeout=40)
    assert_ok(r)
    assert r.seconds < 30
    assert_loadable(tmp_path / 'out')


# ================================================================================================
# C9  Messages that mislead: a refused pickle is not "corrupt", an unreadable file is not "corrupt",
#     non-finite values name their flag, undecodable text names its file or flag
# ================================================================================================
class Evil:
    "Unpickling this runs a shell command: a safe loader must refuse it (and say that it refused)."

    def __reduce__(self):
        return (os.system, ('touch PWNED',))


class Plain:
    "A harmless object of a class the safe loader does not know."

    def __init__(self):
        self.x = 1


def _payload_with(ckpt, obj):
    payload = torch.load(ckpt, weights_only=True)
    payload['extra']['note'] = obj
    return payload


REFUSED_PICKLE = ('refus', 'unsafe', 'not allowed', 'untrusted', 'arbitrary', 'not plain', 'pickle')
NOT_A_CHECKPOINT = ('truncated', 'corrupt', 'not a pytorch', 'not a gpt_nb', 'incomplete', 'empty', 'not a checkpoint')
BAD_FILES = {  # file name: (write it, words the message must contain (any), words it must not contain)
    'evil-reduce.pt': (
        lambda p, ck: torch.save(_payload_with(ck, Evil()), p),
        REFUSED_PICKLE,
        ('truncated', 'corrupt'),
    ),
    'custom-class.pt': (
        lambda p, ck: torch.save(_payload_with(ck, Plain()), p),
        REFUSED_PICKLE,
        ('truncated', 'corrupt'),
    ),
    'truncated.pt': (
        lambda p, ck: p.write_bytes(ck.read_bytes()[: len(ck.read_bytes()) // 2]),
        ('truncated', 'corrupt', 'incomplete'),
        (),
    ),
    'random-bytes.pt': (lambda p, ck: p.write_bytes(os.urandom(4096)), NOT_A_CHECKPOINT, ('refus',)),
    'empty.pt': (lambda p, ck: p.write_bytes(b''), ('empty', 'truncated', 'corrupt', '0 bytes'), ('refus',)),
    'json.pt': (lambda p, ck: p.write_text('{"config": {}}'), NOT_A_CHECKPOINT, ('refus',)),
    'bare-state-dict.pt': (
        lambda p, ck: torch.save(torch.load(ck, weights_only=True)['model'], p),
        ('not a gpt_nb', 'gpt_nb checkpoint'),
        ('corrupt',),
    ),
}


@pytest.fixture
def bad_file(ckpt, tmp_path):
    def make(name):
        path = tmp_path / 'files' / name
        path.parent.mkdir(exist_ok=True)
        BAD_FILES[name][0](path, ckpt)
        return path

    return make


@pytest.mark.parametrize('script', [GENERATE, ANALYZE, TRAIN, 'api'])
@pytest.mark.parametrize('name', BAD_FILES)
def test_c9_checkpoint_messages(name, script, bad_file, tmp_path):
    path = bad_file(name)
    _, wanted, unwanted = BAD_FILES[name]
    if script == 'api':
        with pytest.raises(ValueError) as e:
            load_checkpoint(path)
        message = str(e.value)
        assert not _mentions(message, [path.name, wanted]), message
    else:
        argv = {
            GENERATE: ['--checkpoint', path, *GEN],
            ANALYZE: ['--checkpoint', path, '--text', TEXT, '--device', 'cpu'],
            TRAIN: [*RUN, '--init-from', path, '--max-steps', 1, '--out-dir', tmp_path / 'out'],
        }[script]
        r = run_cli(script, *argv)
        assert_refused(r, 2, path.name, wanted)
        message = r.message
    assert not any(w in message.lower() for w in unwanted), f'misleading: {message!r}'
    assert not (tmp_path / 'PWNED').exists() and not Path('PWNED').exists(), 'the pickle ran its payload'


@needs_non_root
def test_c9_unreadable_checkpoint(ckpt, tmp_path):
    path = tmp_path / 'private.pt'
    shutil.copy(ckpt, path)
    path.chmod(0)
    r = run_cli(GENERATE, '--checkpoint', path, *GEN)
    assert_refused(r, 2, 'private.pt', ('permission', 'cannot be read', 'not readable', 'denied'))
    assert 'corrupt' not in r.message.lower()


NON_FINITE = {  # script: the float flags that must refuse nan (and inf) naming themselves
    TRAIN: [
        '--lr',
        '--epochs',
        '--minutes',
        '--muon-lr',
        '--dropout',
        '--min-lr-ratio',
        '--weight-decay',
        '--grad-clip',
        '--eval-minutes',
        '--warmup-fraction',
        '--cooldown',
        '--short-until',
    ],
    GENERATE: ['--temperature', '--top-p', '--repetition-penalty'],
    FINETUNE: ['--lr', '--lora-alpha', '--minutes'],
    RL: ['--lr', '--minutes', '--temperature', '--clip', '--kl-coef', '--grad-clip'],
}


@pytest.mark.parametrize('script,flag', [(s, f) for s, flags in NON_FINITE.items() for f in flags])
def test_c9_nan_names_the_flag(script, flag, ckpt, instruct_ckpt, tmp_path, stories_txt):
    argv = {
        TRAIN: [*TINY, '--out-dir', tmp_path / 'out'],
        GENERATE: ['--checkpoint', ckpt, *GEN],
        FINETUNE: finetune_args(tmp_path / 'ft'),
        RL: rl_args(tmp_path / 'rl', '--checkpoint', instruct_ckpt),
    }[script]
    r = run_cli(script, *argv, flag, 'nan')
    assert_refused(r, 2, flag)


@pytest.mark.parametrize('flag', ['--lr', '--weight-decay', '--grad-clip'])
def test_c9_train_inf_names_the_flag(flag, tmp_path):
    r = run_cli(TRAIN, *TINY, '--out-dir', tmp_path / 'out', flag, 'inf')
    assert_refused(r, 2, flag)


@pytest.mark.parametrize(
    'flag,value,mention',
    [
        ('--cooldown', '0', '--cooldown'),
        ('--cooldown', '1.5', '--cooldown'),
        ('--warmup-fraction', '1', '--warmup-fraction'),
        ('--short-until', '-0.1', '--short-until'),
        ('--short-context', '0', '--short-context'),
        ('--short-context', '5', ('--short-context', 'divide')),  # refused once the context is known
        ('--short-context', '32', ('--short-context', 'shorter')),
    ],
)
def test_c9_train_schedule_refused(flag, value, mention, tmp_path):
    r = run_cli(TRAIN, *TINY, '--max-steps', 2, '--out-dir', tmp_path / 'out', flag, value)
    assert_refused(r, 2, mention)
    assert not (tmp_path / 'out' / 'last.pt').exists()


def test_c9_train_schedule_runs(tmp_path):
    schedule = ['--short-context', 16, '--short-until', 0.5, '--cooldown', 0.5, '--warmup-fraction', 0.0]
    r = run_cli(TRAIN, *TINY, '--max-steps', 4, '--out-dir', tmp_path / 'out', *schedule)
    assert r.code == 0, r.summary()
    assert (tmp_path / 'out' / 'last.pt').exists()


def _tiny_gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=V, context_length=16, n_layer=1, n_head=2, d_model=16))


API_REFUSALS = {  # the public API: a ValueError (or TypeError) that names what is wrong, not torch's own error
    'targets-outside-vocabulary': (lambda: _tiny_gpt()(torch.tensor([[1, 2]]), torch.tensor([[1, V]])), ('targets',)),
    'targets-negative': (lambda: _tiny_gpt()(torch.tensor([[1, 2]]), torch.tensor([[1, -5]])), ('targets',)),
    'targets-all-ignored': (
        lambda: _tiny_gpt()(torch.tensor([[1, 2]]), torch.full((1, 2), IGNORE_INDEX)),
        (('IGNORE_INDEX', '-100'),),
    ),
    'empty-batch': (lambda: _tiny_gpt()(torch.zeros(0, 4, dtype=torch.long)), (('batch', 'empty', 'shape'),)),
    'empty-sequence': (lambda: _tiny_gpt()(torch.zeros(1, 0, dtype=torch.long)), (('time', 'empty', 'shape'),)),
    'load-on-tpu': (lambda ck: load_checkpoint(ck, device='tpu'), ('tpu',)),
    'load-on-absent-cuda': (lambda ck: load_checkpoint(ck, device='cuda'), ('cuda',)),
}


@pytest.mark.parametrize('case', API_REFUSALS)
def test_c9_api_refusals(case, ckpt):
    call, mentions = API_REFUSALS[case]
    if case == 'load-on-absent-cuda' and torch.cuda.is_available():
        pytest.skip('CUDA is available here')
    with pytest.raises((ValueError, TypeError)) as e:
        result = call(ckpt) if case.startswith('load') else call()
        pytest.fail(f'no error: returned {type(result).__name__}')
    assert not _mentions(str(e.value), mentions), f'{type(e.value).__name__}: {e.value}'


UNDECODABLE = '\udcff\udcfe'  # what Python makes of the bytes ff fe in a command-line argument (surrogateescape)


@pytest.mark.parametrize(
    'script,argv,flag',
    [
        (GENERATE, ['--prompt', f'Once {UNDECODABLE}'], '--prompt'),
        (ANALYZE, ['--text', f'Once upon a time {UNDECODABLE} there'], '--text'),
        (QUICKSTART, ['--prompt', f'Once {UNDECODABLE}'], '--prompt'),
    ],
    ids=['generate-prompt', 'analyze-text', 'quickstart-prompt'],
)
def test_c9_undecodable_argument(script, argv, flag, ckpt, tmp_path):
    "An argument that is not valid UTF-8: either used (with replacement characters) or refused naming the flag."
    extra = {
        GENERATE: ['--checkpoint', ckpt, *GEN],
        ANALYZE: ['--checkpoint', ckpt, '--device', 'cpu', '--out-dir', tmp_path / 'f'],
        QUICKSTART: ['--max-new-tokens', 2],
    }[script]
    r = run_cli(script, *extra, *argv)
    assert_clean(r)
    assert r.code in (0, 2), r.summary()
    if r.code == 2:
        assert not _mentions(r.message, [flag])


# ================================================================================================
# gpt-nb-rl (chapter 11): its start must be instruction-tuned; bad settings and a resume with nothing to resume
# are refused before any work; a run saves a model gpt-nb-generate-text --instruction uses, and --resume continues it
# ================================================================================================
def test_rl_refuses_a_model_not_instruction_tuned(ckpt, tmp_path, stories_txt):
    "The base run's model was never fine-tuned: it cannot read the prompts, so RL has nothing to reinforce."
    r = run_cli(RL, '--checkpoint', ckpt, *rl_args(tmp_path / 'rl'))
    assert_refused(r, 2, '--checkpoint', ckpt.name, 'instruction')
    assert not (tmp_path / 'rl').exists()


RL_REFUSALS = {  # name: (flags, what the message must mention)
    'group-of-1': (['--group-size', 1], ('--group-size', '2')),
    'minutes-0': (['--minutes', 0], ('--minutes', 'positive')),
    'minutes-negative': (['--minutes', -1], ('--minutes', 'positive')),
    'max-steps-0': (['--max-steps', 0], ('--max-steps', 'positive')),
    'unknown-reward': (['--reward', 'length'], ('--reward', 'words')),
    'unknown-per': (['--per', 'word'], ('--per', 'token')),
    'stories-past-the-context': (['--max-new-tokens', 10**6], ('--max-new-tokens', 'context')),
    'no-checkpoint': (['--checkpoint', ''], ('--checkpoint', 'required')),
    'missing-checkpoint': (['--checkpoint', 'missing.pt'], ('--checkpoint', 'missing.pt', 'not found')),
    'corrupt-checkpoint': (['--checkpoint', 'corrupt.pt'], ('--checkpoint', 'corrupt.pt', 'corrupt')),
    'resume-without-last-pt': (['--resume'], ('--resume', 'last.pt')),
}


@pytest.mark.parametrize('case', RL_REFUSALS)
def test_rl_refuses_bad_input(case, instruct_ckpt, tmp_path, stories_txt):
    Path('corrupt.pt').write_bytes(b'not a checkpoint')
    flags, mentions = RL_REFUSALS[case]
    r = run_cli(RL, *rl_args(tmp_path / 'rl', '--checkpoint', instruct_ckpt, *flags))
    assert_refused(r, 2, *mentions)
    assert not (tmp_path / 'rl').exists() or not any((tmp_path / 'rl').iterdir()), 'a refused run wrote'


def test_rl_run_generate_and_resume(instruct_ckpt, tmp_path, stories_txt):
    "Two steps: best_model.pt keeps the prompt template, so --instruction uses it; --resume continues from step 2."
    out = tmp_path / 'rl'
    r = run_cli(RL, '--checkpoint', instruct_ckpt, *rl_args(out))
    assert_ok(r)
    assert f'--checkpoint {out / "best_model.pt"} --instruction' in r.out, r.out[-500:]
    best = load_checkpoint(out / 'best_model.pt')
    assert best.extra['instruction_template'] == INSTRUCTION_TEMPLATE and best.extra['step'] == 2
    instruction = 'Write a story that uses the words: dog, ball, sun.'
    g = run_cli(GENERATE, '--checkpoint', out / 'best_model.pt', '--instruction', instruction, *GEN)
    assert_ok(g)
    assert g.out.startswith(INSTRUCTION_TEMPLATE.format(instruction=instruction)), g.out[:200]
    before = load_checkpoint(out / 'last.pt').extra
    r = run_cli(RL, *rl_args(out, '--resume', '--max-steps', 4))
    assert_ok(r)
    after = load_checkpoint(out / 'last.pt').extra
    assert after['step'] == 4, after['step']
    assert after['history']['step'][:2] == before['history']['step'] == [1, 2], after['history']['step']
    assert after['rl_checkpoint'] == str(instruct_ckpt.resolve())
    assert_loadable(out)


def test_rl_resume_refusals(instruct_ckpt, base, tmp_path, stories_txt):
    "--resume of a folder no RL run wrote, or with a --checkpoint other than the run's: refused, nothing changes."
    run_dir = Path(shutil.copytree(base, tmp_path / 'run'))  # a training run's folder: its last.pt is not RL's
    before = snapshot(run_dir)
    r = run_cli(RL, *rl_args(run_dir, '--resume', '--checkpoint', instruct_ckpt))
    assert_refused(r, 2, '--resume', 'gpt-nb-rl')
    assert_untouched(run_dir, before)
    out = tmp_path / 'rl'
    assert_ok(run_cli(RL, '--checkpoint', instruct_ckpt, *rl_args(out)))
    other = shutil.copy(instruct_ckpt, tmp_path / 'other.pt')
    before = snapshot(out)
    r = run_cli(RL, *rl_args(out, '--resume', '--max-steps', 4, '--checkpoint', other))
    assert_refused(r, 2, '--checkpoint', 'other.pt', 'contradicts')
    assert_untouched(out, before)


# ================================================================================================
# Real processes (C4 closed pipe, C6 concurrency and kill -9, C8 Ctrl-C): one batch, started in the background
# at the beginning of the session so that its start-up overlaps the in-process probes above.
# ================================================================================================
class Scenario(threading.Thread):
    "Starts the child processes, sends their signals when they are ready, and keeps what each did."

    def __init__(self, root: Path, base: Path, stories: Path):
        super().__init__(daemon=True)
        self.root, self.base, self.stories = root, base, stories
        self.results, self.facts, self.error, self.children, self.stopped = {}, {}, None, [], False

    def start_child(self, cmd, cwd, **kw) -> Child:
        if self.stopped:
            raise RuntimeError('the session is over')
        self.children.append(Child(cmd, cwd, **kw))
        return self.children[-1]

    def run(self):
        try:
            self._run()
        except BaseException as e:
            self.error = e
        finally:
            for c in self.children:
                c.kill()

    def _run(self):
        root, ck = self.root, self.base / 'best_model.pt'
        busy = root / 'busy'
        busy.mkdir()
        killed = Path(shutil.copytree(self.base, root / 'killed'))
        self.facts['killed_before'] = snapshot(killed)
        prompt = 'Once upon a time there was a little dog named Max'
        head = lambda cmd: ['bash', '-c', f'{shlex.join(cmd)} | head -c 20; exit ${{PIPESTATUS[0]}}']
        a = self.start_child(
            child_command(TRAIN, *TINY, '--max-steps', 10**7, '--eval-minutes', 100, '--out-dir', 'busy'), root
        )
        g = self.start_child(
            child_command(
                GENERATE, '--checkpoint', ck, '--max-new-tokens', 10**9, '--device', 'cpu', '--temperature', 0
            ),
            root,
        )
        q = self.start_child(child_command(QUICKSTART, '--max-new-tokens', 10**9, '--prompt', 'Zebra crossing'), root)
        f = self.start_child(
            child_command(
                FINETUNE,
                '--data',
                self.stories,
                '--max-steps',
                10**7,
                '--eval-prompts',
                0,
                '--batch-size',
                2,
                '--eval-stories',
                2,
                '--device',
                'cpu',
                '--out-dir',
                'ft',
            ),
            root,
        )
        pg = self.start_child(
            head(
                child_command(
                    GENERATE,
                    '--checkpoint',
                    ck,
                    '--max-new-tokens',
                    100000,
                    '--device',
                    'cpu',
                    '--temperature',
                    0,
                    '--prompt',
                    prompt,
                )
            ),
            root,
        )
        pq = self.start_child(head(child_command(QUICKSTART, '--max-new-tokens', 40)), root)
        pf = self.start_child(
            head(
                child_command(
                    FINETUNE,
                    '--data',
                    self.stories,
                    '--max-steps',
                    2,
                    '--eval-prompts',
                    0,
                    '--batch-size',
                    2,
                    '--eval-stories',
                    2,
                    '--device',
                    'cpu',
                    '--lora-rank',
                    2,
                    '--out-dir',
                    'ft-pipe',
                )
            ),
            root,
        )
        k = self.start_child(
            child_command(TRAIN, *TINY, '--max-steps', 3, '--resume', '--out-dir', 'killed', prelude='kill-mid-save'),
            root,
        )
        # a second run into the folder of a run in progress
        self.facts['a_training'] = a.wait_for(lambda out: 'training:' in out, 120)
        b = self.start_child(child_command(TRAIN, *TINY, '--max-steps', 2, '--out-dir', 'busy'), root)
        self.results['second-run'] = b.finish(120)
        self.facts['a_alive_after_b'] = a.proc.poll() is None
        a.signal(signal.SIGINT)
        # Ctrl-C in the middle of a long generation
        self.facts['g_streamed'] = g.wait_for(lambda out: len(out) > 60, 60)
        g.signal(signal.SIGINT)
        # the quickstart: the model summary, then the text as it is generated
        self.facts['q_built'] = q.wait_for(lambda out: 'total' in out, 90)
        t0 = time.perf_counter()
        self.facts['q_streamed'] = q.wait_for(lambda out: 'Zebra crossing' in out.split('total', 1)[-1], 10)
        self.facts['q_stream_seconds'] = time.perf_counter() - t0
        if self.facts['q_streamed']:
            q.wait_for(lambda out: False, 3)  # let it run on a little: is memory flat?
        self.facts['q_rss'] = q.rss()
        q.signal(signal.SIGINT)
        self.facts['f_started'] = f.wait_for(lambda out: 'training examples' in out, 90)
        f.wait_for(lambda out: False, 1.5)
        f.signal(signal.SIGINT)
        for name, child in [
            ('train-sigint', a),
            ('generate-sigint', g),
            ('quickstart-sigint', q),
            ('finetune-sigint', f),
            ('generate-pipe', pg),
            ('quickstart-pipe', pq),
            ('finetune-pipe', pf),
            ('kill-9', k),
        ]:
            self.results[name] = child.finish(60)
        self.facts['q_peak_rss'] = q.peak_rss

    def get(self, name: str) -> Result:
        self.join(400)
        if self.error:
            raise self.error
        return self.results[name]


@pytest.fixture(scope='session')
def scenario(base, stories_txt, session_tmp):
    s = Scenario(session_tmp / 'processes', base, stories_txt)
    s.root.mkdir()
    s.start()
    yield s
    s.stopped = True
    for c in s.children:
        c.kill()


@pytest.fixture(scope='session', autouse=True)
def _start_processes_early(request):
    "Start the batch of child processes at the beginning of the session when its probes are selected."
    if any('process' in item.name for item in request.session.items):
        request.getfixturevalue('scenario')


def test_process_c4_generate_closed_pipe(scenario):
    "gpt-nb-generate-text ... | head -c 20: exit 0 (or 141, killed by SIGPIPE), quietly, soon."
    r = scenario.get('generate-pipe')
    assert_clean(r)
    assert r.code in (0, 141), r.summary()


def test_process_c4_quickstart_closed_pipe(scenario):
    r = scenario.get('quickstart-pipe')
    assert_clean(r)
    assert r.code in (0, 141), r.summary()


def test_process_c4_finetune_closed_pipe(scenario):
    "gpt-nb-finetune ... | head -c 20: its first lines are printed before the work; exit 0 (or 141), quietly."
    r = scenario.get('finetune-pipe')
    assert_clean(r)
    assert r.code in (0, 141), r.summary()


def test_process_c6_second_run_into_busy_out_dir(scenario):
    "A second run into the out-dir of a run in progress is refused (or waits), never silently overwrites it."
    r = scenario.get('second-run')
    assert scenario.facts['a_training'], 'the first run never started training'
    assert scenario.facts['a_alive_after_b'], 'the first run ended while the second one ran'
    assert r.code != 0 or any(w in (r.out + r.err).lower() for w in ('lock', 'wait')), (
        f'both runs wrote {scenario.root / "busy"} and reported success: {r.summary()}'
    )
    assert_refused(r, (1, 2), ('busy', 'lock', 'another', 'in use', 'running'))


def test_process_c6_kill_9_mid_save_keeps_checkpoints(scenario):
    "kill -9 in the middle of a save: the previous last.pt and best_model.pt are byte-identical and load."
    r = scenario.get('kill-9')
    assert r.code == 137, r.summary()
    folder = scenario.root / 'killed'
    after = snapshot(folder)
    before = scenario.facts['killed_before']
    kept = lambda files: {
        k: v for k, v in files.items() if not k.endswith(('.tmp', '.gpt_nb.lock'))
    }  # the run's lock names its process
    assert kept(after) == kept(before)
    for p in folder.glob('*.pt'):
        load_checkpoint(p)


def test_process_c6_next_save_cleans_what_kill_9_left(scenario):
    "The temporary file the killed save left is cleaned up by the next save into that folder."
    scenario.get('kill-9')
    folder = scenario.root / 'killed'
    r = run_cli(TRAIN, *TINY, '--max-steps', 3, '--resume', '--out-dir', folder)
    assert_ok(r)
    assert_loadable(folder)


def test_process_c8_train_ctrl_c(scenario):
    "Ctrl-C during training: saves last.pt, says how to continue, exits 130."
    r = scenario.get('train-sigint')
    assert_clean(r)
    assert r.code == 130, r.summary()
    assert '--resume' in r.out + r.err
    ck = load_checkpoint(scenario.root / 'busy' / 'last.pt')
    assert ck.extra['train_config']['max_steps'] == 10**7, 'last.pt is not the interrupted run\'s'
    assert_loadable(scenario.root / 'busy')


def test_process_c8_generate_ctrl_c(scenario):
    r = scenario.get('generate-sigint')
    assert scenario.facts['g_streamed'], f'no streamed text before Ctrl-C: {r.out[:200]!r}'
    assert_clean(r)
    assert r.code == 130, r.summary()


def test_process_c8_quickstart_streams(scenario):
    "--max-new-tokens 1e9: the text appears as it is generated, not after a billion tokens."
    r = scenario.get('quickstart-sigint')
    assert scenario.facts['q_built'], f'the model was never built: {r.summary()}'
    assert scenario.facts['q_streamed'], f'nothing generated was printed within 10 s: stdout ends {r.out[-200:]!r}'


def test_process_c8_quickstart_ctrl_c(scenario):
    r = scenario.get('quickstart-sigint')
    assert_clean(r)
    assert r.code == 130, r.summary()


def test_process_c8_quickstart_memory_bounded(scenario):
    scenario.get('quickstart-sigint')
    assert 0 < scenario.facts['q_peak_rss'] < 1.5 * 2**30, f"peak RSS {scenario.facts['q_peak_rss'] / 2**20:.0f} MiB"


def test_process_c8_finetune_ctrl_c(scenario):
    "Ctrl-C during fine-tuning: exit 130, no traceback, no half-written file (a saved model, if any, loads)."
    r = scenario.get('finetune-sigint')
    assert scenario.facts['f_started'], f'fine-tuning never started: {r.summary()}'
    assert_clean(r)
    assert r.code == 130, r.summary()
    assert_loadable(scenario.root / 'ft') if (scenario.root / 'ft').exists() else None


@pytest.mark.parametrize('script', [QUICKSTART, GENERATE, ANALYZE, TRAIN, FINETUNE, RL])
def test_process_c8_ctrl_c_while_importing(script, children, tmp_path):
    "Ctrl-C while the tool is still importing torch (before its main runs): one line, exit 130, no traceback."
    child = children(child_command(script, '--help', prelude='slow-import'), tmp_path)
    assert child.wait_for(lambda out: 'importing torch' in out, 30), 'the tool never started importing torch'
    child.signal(signal.SIGINT)
    r = child.finish(30)
    assert_refused(r, 130, 'interrupted')


def test_process_c8_rl_ctrl_c_then_resume(instruct_ckpt, stories_txt, children, tmp_path):
    "Ctrl-C during RL: saves last.pt, says how to continue, exits 130; --resume then continues from the saved step."
    argv = rl_args('rl', '--checkpoint', instruct_ckpt, '--max-steps', 10**7, '--eval-minutes', 100)
    child = children(child_command(RL, *argv), tmp_path)
    assert child.wait_for(lambda out: 'GRPO:' in out, 120), f'RL never started: {child.finish(5).summary()}'
    child.wait_for(lambda out: False, 1.5)
    child.signal(signal.SIGINT)
    r = child.finish(60)
    assert_clean(r)
    assert r.code == 130, r.summary()
    assert 'last.pt; continue with --resume' in r.out + r.err, r.out[-500:]
    step = load_checkpoint(tmp_path / 'rl' / 'last.pt').extra['step']
    assert_ok(run_cli(RL, *rl_args(tmp_path / 'rl', '--resume', '--max-steps', step + 1)))
    assert load_checkpoint(tmp_path / 'rl' / 'last.pt').extra['step'] == step + 1


def test_process_c4_rl_closed_pipe(instruct_ckpt, stories_txt, children, tmp_path):
    "gpt-nb-rl ... | head -c 20: its first lines are printed before the work; exit 0 (or 141), quietly."
    cmd = child_command(RL, *rl_args('rl', '--checkpoint', instruct_ckpt))
    child = children(['bash', '-c', f'{shlex.join(cmd)} | head -c 20; exit ${{PIPESTATUS[0]}}'], tmp_path)
    r = child.finish(120)
    assert_clean(r)
    assert r.code in (0, 141), r.summary()
