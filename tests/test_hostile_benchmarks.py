"""Hostile input to the benchmarks (issue #28): the scripts in benchmarks/ are tools too, and follow the tools' rules.

The README tells users to run them, so every probe asserts what tests/test_hostile.py asserts of the console tools:
  * the exit status: 0 success, 2 bad input refused before any work, 1 a failure during the work, 130 interrupted,
    and a quiet 0 when the reader of stdout goes away;
  * that an error is one line ending stderr (argparse's usage line may come before it), with no 'Traceback', naming
    the flag;
  * that a refused command wrote nothing (each probe runs in its own empty working directory, see conftest.py).

benchmarks/ is not a package: each script is imported by path and its `main(argv)` called in this process. Only the
smallest real run that takes a second is run for real (bench_generation.py); the others would take minutes, so the
work of each script is replaced by one that fails, is interrupted, or meets a closed pipe, to check how the script
answers.

    pytest -q tests/test_hostile_benchmarks.py
"""

import errno, importlib.util, os, re, subprocess, sys, types
from pathlib import Path

import numpy as np
import pytest
import torch

try:
    import fcntl  # POSIX file locks
except ImportError:
    fcntl = None

from conftest import Result, run_main
from test_hostile import Pipe, assert_clean, assert_ok, assert_refused

import gpt_nb
from gpt_nb.checkpoint import save_checkpoint
from gpt_nb.config import ARCHITECTURES, GPTConfig
from gpt_nb.model import GPT
from gpt_nb.tokenizer import get_encoding  # GPT-2's, from the files the package ships

BENCHMARKS = Path(__file__).resolve().parent.parent / 'benchmarks'
SHIPPED = Path(gpt_nb.__file__).parent / 'assets' / 'tinystories.pt'  # a checkpoint file for instruction_source.py


def benchmark(name: str) -> types.ModuleType:
    "benchmarks/NAME.py as a module, imported once by path (under its own name, as its neighbours import it)."
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f'{name}.py')
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def run_benchmark(name: str, *argv, timeout: float = 20, stdout=None) -> Result:
    "Run `benchmarks/NAME.py ARGV` in this process, as the shell would (conftest.run_main), under a time limit."
    return run_main(benchmark(name).main, *argv, timeout=timeout, memory=None, stdout=stdout)


def files_in(folder: Path) -> dict:
    "Every file and folder under `folder` (relative name -> size, or None for a folder)."
    return {str(p.relative_to(folder)): (p.stat().st_size if p.is_file() else None) for p in sorted(folder.rglob('*'))}


# Settings that make each script's work as small as it gets, should a probe ever reach the work. A probe's own flags
# come after them: the last value of a flag is the one argparse keeps.
SMALL = {
    'speedrun': ['--minutes', 0.01, '--threads', 1],
    'bench_model': ['--d-model', 16, '--n-layer', 1, '--n-head', 2, '--context-length', 16, '--vocab-size', 64]
    + ['--batch-size', 1, '--steps', 1, '--warmup', 0, '--threads', 1],
    'bench_training throughput': ['throughput', '--vocab-sizes', 64, '--context-length', 16, '--batch-size', 1]
    + ['--steps', 1, '--warmup', 0, '--threads', 1],
    'bench_training quality': ['quality', '--minutes', 0.01, '--tokenizers', 'bpe:300', '--threads', 1],
    'bench_generation': ['--presets', 'tiny', '--new-tokens', 4, '--repeats', 1, '--estimate-uncached'],
    'bench_finetune': ['--minutes', 0.01, '--prompts', 2, '--samples', 1, '--threads', 1],
    'bench_rl': ['--minutes', 0.01, '--lora-minutes', 0.01, '--prompts', 2, '--samples', 1, '--threads', 1],
    'lora_rank': ['--ranks', 2, '--lora-steps', 1, '--full-steps', 0, '--samples', 1, '--device', 'cpu'],
    'instruction_source': [SHIPPED, '--steps', 1, '--prompts', 2, '--threads', 1],
    'demo_recipe tries': ['tries', '--tries', 'base', '--steps', 1, '--threads', 1],
    'demo_recipe side-by-side': ['side-by-side', '--demos', 'today', '--threads', 1],  # refused before it runs
    'bench_hot_paths': ['--rounds', 1, '--threads', 1],
    'scaling': ['--budgets', '1e10,3e10', '--sizes', '1x32x2,2x32x2', '--jobs', 1, '--max-stories', 300]
    + ['--eval-stories', 50, '--out-dir', 'sweep', '--threads', 1],  # the probe's own folder (conftest.py)
}


def run_small(script: str, *argv, **kw) -> Result:
    "Run `script` (a key of SMALL) with its smallest settings and then `argv`."
    name = script.split()[0]
    return run_benchmark(name, *SMALL[script], *argv, **kw)


# ================================================================================================
# B1  --help: every script explains itself and exits 0
# ================================================================================================
@pytest.mark.parametrize('script', ['speedrun', 'bench_model', 'bench_training', 'bench_generation', 'bench_finetune']
                         + ['bench_rl', 'lora_rank', 'instruction_source', 'demo_recipe']
                         + ['bench_hot_paths', 'scaling', 'recipe_changes'])  # fmt: skip
def test_b1_help(script):
    r = run_benchmark(script, '--help')
    assert_ok(r)
    assert r.out.startswith(f'usage: {script}.py'), r.out[:200]


# ================================================================================================
# B2  Values a benchmark cannot use: one line naming the flag, exit 2, before any work, nothing written
# ================================================================================================
INF, NAN = 'inf', 'nan'
BAD_VALUES = {  # script: [(flag, bad value, what the message must mention: the flag if nothing else is said)]
    'speedrun': [
        ('--minutes', INF, ()),
        ('--minutes', NAN, ()),
        ('--minutes', -1, ()),
        ('--minutes', 0, ()),
        ('--minutes', 'ten', ()),
        ('--preset', 'nope', ('--preset', 'tiny')),
        ('--architecture', 'nope', ('--architecture', 'gpt2-rope')),
        ('--batch-size', 0, ()),
        ('--batch-size', -8, ()),
        ('--seed', -1, ()),
        ('--seed', 2**64, ()),
        ('--seed', 1.5, ()),
        ('--threads', 0, ()),
        ('--threads', -2, ()),
        ('--out-dir', '', ()),
        ('--out-dir', '  ', ()),
        ('--cache-dir', '', ()),
    ],
    'bench_model': [
        ('--d-model', 0, ()),
        ('--d-model', -16, ()),
        ('--n-head', 5, (('--n-head', '--d-model'), 'n_head', 'divisible')),
        ('--n-layer', 0, ()),
        ('--context-length', -1, ()),
        ('--vocab-size', 0, ()),
        ('--batch-size', 0, ()),
        ('--steps', 0, ()),
        ('--warmup', -1, ()),
        ('--seed', -1, ()),
        ('--threads', 0, ()),
    ],
    'bench_training throughput': [
        ('--preset', 'nope', ('--preset', 'tiny')),
        ('--vocab-sizes', 0, ()),
        ('--vocab-sizes', -5, ()),
        ('--context-length', 0, ()),
        ('--batch-size', 0, ()),
        ('--steps', 0, ()),
        ('--warmup', -1, ()),
        ('--rounds', 0, ()),
        ('--nanogpt', 'no/such/nanoGPT', ('--nanogpt', 'model.py')),
        ('--seed', -1, ()),
        ('--threads', 0, ()),
    ],
    'bench_training quality': [
        ('--minutes', INF, ()),
        ('--minutes', NAN, ()),
        ('--minutes', 0, ()),
        ('--tokenizers', 'nope', ('--tokenizers', 'bpe')),
        ('--tokenizers', 'bpe:1', ('--tokenizers', 'bpe')),
        ('--preset', 'nope', ('--preset', 'tiny')),
        ('--context-length', 0, ()),
        ('--batch-size', -1, ()),
        ('--lr', INF, ()),
        ('--lr', NAN, ()),
        ('--lr', 0, ()),
        ('--seed', -1, ()),
    ],
    'bench_generation': [
        ('--presets', 'nope', ('--presets', 'tiny')),
        ('--new-tokens', 0, ()),
        ('--new-tokens', -4, ()),
        ('--repeats', 0, ()),
        ('--estimate-uncached', 'nope', ('--estimate-uncached', 'tiny')),
        ('--threads', 0, ()),
        ('--checkpoint', SHIPPED, ('--checkpoint', "'checkpoint'")),  # a checkpoint, but not asked to time it
    ],
    'bench_finetune': [
        ('--minutes', INF, ()),
        ('--minutes', NAN, ()),
        ('--minutes', -5, ()),
        ('--prompts', 0, ()),
        ('--samples', 0, ()),
        ('--lora-rank', 0, ()),
        ('--seed', -1, ()),
        ('--threads', 0, ()),
    ],
    'bench_rl': [
        ('--minutes', INF, ()),
        ('--minutes', NAN, ()),
        ('--minutes', 0, ()),
        ('--lora-minutes', -1, ()),
        ('--lora-minutes', NAN, ()),
        ('--prompts', 0, ()),
        ('--samples', 0, ()),
        ('--seed', -1, ()),
        ('--threads', 0, ()),
    ],
    'lora_rank': [
        ('--ranks', 0, ()),
        ('--lora-steps', 0, ()),
        ('--full-steps', -1, ()),
        ('--samples', 0, ()),
        ('--device', 'tpu', ()),
        ('--device', 'cuda:7', ()),
        ('--seed', -1, ()),
        ('--threads', 0, ()),
    ],
    'demo_recipe tries': [
        ('--tries', 'nope', ('--tries', 'base')),
        ('--steps', 0, ()),
        ('--seeds', -1, ()),
        ('--minutes', 0, ()),
        ('--minutes', NAN, ()),
        ('--threads', 0, ()),
    ],
    'demo_recipe side-by-side': [
        ('--demos', 'nope', ('--demos', 'today')),
        ('--seeds', -1, ()),
    ],
    'bench_hot_paths': [
        ('--rounds', 0, ()),
        ('--threads', 0, ()),
    ],
    'scaling': [
        ('--budgets', 'lots', ()),
        ('--budgets', 0, ()),
        ('--budgets', '-1e12', ()),
        ('--budgets', INF, ()),
        ('--budgets', NAN, ()),
        ('--budgets', '1e12,,2e12', ()),
        ('--sizes', 'big', ()),
        ('--sizes', '2x64x3', ('--sizes', 'multiple of the heads')),
        ('--sizes', '0x32x2', ()),
        ('--jobs', 0, ()),
        ('--eval-stories', 0, ()),
        ('--max-stories', 0, ()),
        ('--out-dir', '', ()),
        ('--device', 'tpu', ()),
        ('--seed', -1, ()),
        ('--threads', 0, ()),
    ],
    'instruction_source': [
        ('--held-out', 0, ()),
        ('--held-out', 5000, ()),
        ('--steps', 0, ()),
        ('--prompts', 0, ()),
        ('--seed', -1, ()),
        ('--threads', 0, ()),
    ],
}
BAD = [(script, flag, value, mentions) for script, cases in BAD_VALUES.items() for flag, value, mentions in cases]


@pytest.mark.parametrize(
    'script,flag,value,mentions',
    BAD,
    ids=[f'{script.replace(" ", "-")}{flag}={value}' for script, flag, value, _ in BAD],
)
def test_b2_bad_value(script, flag, value, mentions, tmp_path):
    r = run_small(script, flag, value, timeout=10)
    assert_refused(r, 2, *(mentions or (flag,)))
    assert files_in(tmp_path) == {}, f'a refused run wrote {files_in(tmp_path)}'


@pytest.mark.parametrize(
    'script,argv,flag',
    [
        ('bench_finetune', ['--lora-rank', 1000], '--lora-rank'),
        ('lora_rank', ['--ranks', 8, 1000], '--ranks'),
    ],
    ids=['bench_finetune-lora-rank-wider-than-the-model', 'lora_rank-rank-wider-than-the-model'],
)
def test_b2_rank_wider_than_the_model(script, argv, flag):
    "A LoRA rank above the shipped model's width (128) is refused once the model is loaded, before any measurement."
    r = run_small(script, *argv)
    assert_refused(r, 2, flag, '128')
    assert r.out == '', r.out[:300]


BAD_CHECKPOINT = {  # script: the arguments around the checkpoint's path, what the message names besides the file
    'instruction_source': (lambda path: [path, '--steps', 1, '--prompts', 2], ()),
    'bench_generation': (lambda path: ['--presets', 'checkpoint', '--checkpoint', path], ('--checkpoint',)),
}


@pytest.mark.parametrize('script', list(BAD_CHECKPOINT))
@pytest.mark.parametrize('case', ['missing', 'not-a-checkpoint', 'a-folder'])
def test_b2_bad_checkpoint(script, case, tmp_path):
    "The checkpoint to fine-tune or to time cannot be used: one line naming the file, exit 2."
    path = tmp_path / 'model.pt'
    if case == 'not-a-checkpoint':
        path.write_bytes(b'PK\x03\x04 not a checkpoint')
    elif case == 'a-folder':
        path.mkdir()
    argv, mentions = BAD_CHECKPOINT[script]
    r = run_benchmark(script, *argv(path))
    assert_refused(r, 2, 'model.pt', *mentions)


def test_b2_generation_checkpoint_without_peer(tmp_path):
    "A checkpoint whose architecture transformers cannot hold (RMSNorm here) is refused, naming the flag and why."
    encoding = get_encoding('gpt2')
    config = GPTConfig(vocab_size=encoding.n_vocab, context_length=32, n_layer=1, n_head=2, d_model=16, norm='rmsnorm')
    save_checkpoint(tmp_path / 'modern.pt', GPT(config), encoding)
    r = run_benchmark('bench_generation', '--presets', 'checkpoint', '--checkpoint', tmp_path / 'modern.pt')
    assert_refused(r, 2, '--checkpoint', "norm='rmsnorm'")


# ================================================================================================
# B3  Folders that cannot be written (the machine may run as root, so chmod is simulated): refused naming the flag
# ================================================================================================
def read_only(monkeypatch, folder: Path):
    "Make every file or folder made in `folder` (or below it) fail with EACCES, as in a read-only folder."
    write_bytes, mkdir = Path.write_bytes, Path.mkdir

    def refused(path: Path) -> bool:
        if folder == path.parent or folder in path.parents:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return False

    monkeypatch.setattr(Path, 'write_bytes', lambda self, data: refused(self) or write_bytes(self, data))
    monkeypatch.setattr(Path, 'mkdir', lambda self, *args, **kwargs: refused(self) or mkdir(self, *args, **kwargs))


FOLDERS = {  # case: (flag, the folder given, in a folder where 'notes.txt' is a file)
    'out-dir-is-a-file': ('--out-dir', 'notes.txt'),
    'out-dir-below-a-file': ('--out-dir', 'notes.txt/runs'),
    'run-folder-is-a-file': ('--out-dir', 'runs'),  # runs/gpt2-rope, where the run's checkpoints go, is a file
    'out-dir-read-only': ('--out-dir', 'locked/runs'),
    'cache-dir-is-a-file': ('--cache-dir', 'notes.txt'),
    'cache-dir-below-a-file': ('--cache-dir', 'notes.txt/cache'),
    'cache-dir-read-only': ('--cache-dir', 'locked/cache'),
}


@pytest.mark.parametrize('case', FOLDERS)
def test_b3_speedrun_unwritable_folder(case, tmp_path, monkeypatch):
    flag, folder = FOLDERS[case]
    (tmp_path / 'notes.txt').write_text('keep me')
    if case == 'run-folder-is-a-file':
        (tmp_path / 'runs').mkdir()
        (tmp_path / 'runs' / 'gpt2-rope').write_text('keep me too')
    if 'read-only' in case:
        (tmp_path / 'locked').mkdir()
        read_only(monkeypatch, tmp_path / 'locked')
    before = files_in(tmp_path)
    r = run_small('speedrun', flag, tmp_path / folder)
    monkeypatch.undo()
    assert_refused(r, 2, flag)
    assert files_in(tmp_path) == before, f'a refused run wrote {set(files_in(tmp_path)) - set(before)}'
    assert (tmp_path / 'notes.txt').read_text() == 'keep me'


@pytest.mark.skipif(fcntl is None, reason='no file locks on this system')
def test_b3_speedrun_out_dir_busy(tmp_path):
    "A speedrun into the folder another run is writing: refused naming --out-dir, the other run's files untouched."
    out = tmp_path / 'runs'
    (out / 'gpt2-rope').mkdir(parents=True)
    with open(out / '.gpt_nb.lock', 'a+') as lock:  # as the other run holds it (gpt_nb.cli.out_dir_lock)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write('12345')
        lock.flush()
        before = files_in(tmp_path)
        r = run_small('speedrun', '--out-dir', out)
    assert_refused(r, 2, '--out-dir', 'another run')
    assert files_in(tmp_path) == before, f'a refused run wrote {set(files_in(tmp_path)) - set(before)}'


# ================================================================================================
# B4  During the work: a failure is one line and exit 1, Ctrl-C 130, a reader that goes away a quiet 0
# ================================================================================================
WORK = {  # script: the module and the name of what its work calls first, replaced by a probe
    'speedrun': ('speedrun', 'train'),
    'bench_model': ('bench_model', 'make_models'),
    'bench_training throughput': ('bench_training', 'matmul_peak_flops'),
    'bench_training quality': ('bench_training', 'train'),
    'bench_generation': ('bench_generation', 'build'),
    'bench_finetune': ('bench_finetune', 'instruction_benchmark'),
    'bench_rl': ('bench_rl', 'instruction_benchmark'),
    'lora_rank': ('lora_rank', 'instruction_benchmark'),
    'instruction_source': ('instruction_source', 'make_examples'),
    'scaling': ('scaling', 'sweep'),
}
OUTCOMES = {  # what the work meets: (exception, exit status, what the last line of stderr must mention; None: nothing)
    'disk-full': (lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), 1, ('no space',)),
    'out-of-memory': (lambda: RuntimeError("DefaultCPUAllocator: can't allocate memory"), 1, ('allocate',)),
    'ctrl-c': (KeyboardInterrupt, 130, ('interrupted',)),
    'closed-pipe': (lambda: BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)), 0, None),
}


@pytest.mark.parametrize('outcome', OUTCOMES)
@pytest.mark.parametrize('script', WORK, ids=[script.replace(' ', '-') for script in WORK])
def test_b4_during_the_work(script, outcome, monkeypatch):
    module, name = WORK[script]
    make_error, code, mentions = OUTCOMES[outcome]

    def work(*args, **kwargs):
        raise make_error()

    monkeypatch.setattr(benchmark(module), name, work)
    if script == 'instruction_source':  # a stand-in for the checkpoint, which takes seconds to load
        model = types.SimpleNamespace(config=types.SimpleNamespace(context_length=256), tokenizer=None)
        monkeypatch.setattr(benchmark(module), 'load_checkpoint', lambda path: model)
    r = run_small(script)
    monkeypatch.undo()
    if mentions is None:
        assert r.code == code, r.summary()
        assert r.err == '', r.err[-500:]
    else:
        assert_refused(r, code, *mentions)


def test_b4_speedrun_stopped_by_ctrl_c(monkeypatch):
    "The training loop stops at Ctrl-C and saves (train returns 'interrupted'): the speedrun then ends with 130."
    monkeypatch.setattr(
        benchmark('speedrun'), 'train', lambda *args, **kwargs: types.SimpleNamespace(status='interrupted')
    )
    r = run_small('speedrun')
    monkeypatch.undo()
    assert_refused(r, 130, 'interrupted')


# ================================================================================================
# B5  The smallest real run, where it takes a second: bench_generation.py, and with a reader that goes away
# ================================================================================================
def test_b5_generation_smallest_run():
    r = run_small('bench_generation', timeout=60)
    assert_ok(r)
    assert 'tiny    4 |' in r.out and r.out.rstrip().endswith('yes'), r.out


def test_b5_generation_rotary_peer(tmp_path):
    "A model with rotary positions is timed against transformers' GPT-NeoX holding its weights: the same tokens."
    encoding = get_encoding('gpt2')
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=encoding.n_vocab, context_length=32, n_layer=2, n_head=2, d_model=16, position='rope')
    save_checkpoint(tmp_path / 'rope.pt', GPT(config), encoding)
    argv = ['--presets', 'checkpoint', '--checkpoint', tmp_path / 'rope.pt', '--new-tokens', 8, '--repeats', 1]
    r = run_benchmark('bench_generation', *argv, '--estimate-uncached', '--threads', 1, timeout=60)
    assert_ok(r)
    assert 'peer: GPTNeoXForCausalLM' in r.out and r.out.rstrip().endswith('yes'), r.out


def test_b5_demo_recipe_smallest_try(monkeypatch):
    "A try of demo_recipe.py trains, is evaluated on the 1,000 validation stories and gets its row (a smallest model)."
    smallest = dict(max_stories=50, tokenizer='bpe:300', d_model=16, n_layer=1, n_head=2, context_length=32)
    monkeypatch.setitem(benchmark('demo_recipe').TRIES, 'smallest', (smallest | dict(batch_size=2), 'a smallest model'))
    r = run_benchmark('demo_recipe', 'tries', '--tries', 'smallest', '--steps', 1, '--threads', 1, timeout=120)
    assert_ok(r)
    assert re.search(r'smallest seed 1337: \d\.\d{4} bits per byte, 1 step,', r.out), r.out[-1000:]


def test_b5_demo_recipe_residual_dropout_only():
    "The sixth round's dropout tries keep dropout off the attention weights, and only while they train."
    config = GPTConfig(vocab_size=64, context_length=16, n_layer=2, n_head=2, d_model=16, dropout=0.1, position='rope')
    with benchmark('recipe_changes').residual_dropout_only():
        inside = GPT(config)
    outside = GPT(config)
    assert [block.attn.dropout for block in inside.blocks] == [0.0, 0.0]
    assert [block.mlp.drop.p for block in inside.blocks] == [0.1, 0.1]
    assert [block.attn.dropout for block in outside.blocks] == [0.1, 0.1]


def test_b5_demo_recipe_try_architectures():
    "The tries' architectures are there while a try trains, and the library's list is its own again after."
    script = benchmark('recipe_changes')
    before = dict(ARCHITECTURES)
    with script.try_architectures():
        assert GPTConfig(**ARCHITECTURES['gpt2-rope+qk_norm']).qk_norm
    assert ARCHITECTURES == before


def rotary_config_and_tokens() -> tuple[GPTConfig, torch.Tensor]:
    "A GPT small enough to build in a test, with the demo's rotary positions, and a batch of two windows for it."
    config = GPTConfig(vocab_size=64, context_length=16, n_layer=2, n_head=2, d_model=16, position='rope')
    return config, torch.randint(0, 64, (2, 16))


def test_b5_demo_recipe_changes():
    "The seventh round's changes hold for the models and runs made inside them, and only there."
    from gpt_nb import optim, training

    changes = benchmark('recipe_changes').CHANGES
    config, tokens = rotary_config_and_tokens()
    with changes['zero_projections']():
        zeroed = GPT(config)
    projections = lambda model: [p for name, p in model.named_parameters() if name.endswith('proj.weight')]
    assert len(projections(zeroed)) == 4 and all(not p.any() for p in projections(zeroed))
    assert all(p.any() for p in projections(GPT(config)))
    with changes['logit_softcap'](0.05):
        capped = GPT(config)
    plain = GPT(config)
    capped.load_state_dict(plain.state_dict())
    logits = plain(tokens)[0]
    assert logits.abs().max() > 0.05 and torch.allclose(capped(tokens)[0], 0.05 * torch.tanh(logits / 0.05))
    with changes['sqrt_cooldown']():
        halfway = training.lr_at(0.7, 1.0, 0.0, 0.02, 0.6)  # half the cooldown left: 1 - sqrt(0.5), not 0.5
        warming = training.lr_at(0.01, 1.0, 0.0, 0.02, 0.6)
    assert abs(halfway - (1 - 0.5**0.5)) < 1e-9 and warming == 0.5
    assert training.lr_at is optim.lr_at and abs(training.lr_at(0.7, 1.0, 0.0, 0.02, 0.6) - 0.5) < 1e-9


def test_b5_demo_recipe_smear():
    "The eighth round's smear starts as the plain model, adds the previous position only, and only inside."
    config, tokens = rotary_config_and_tokens()
    with benchmark('recipe_changes').smear():
        smeared = GPT(config)
    assert not smeared.embed.smear.any()  # starts as the plain model
    before = smeared(tokens)[0]
    with torch.no_grad():
        smeared.embed.smear.fill_(1.0)
    after = smeared(tokens)[0]
    assert torch.allclose(after[:, 0], before[:, 0], atol=1e-6) and not torch.allclose(after[:, 1:], before[:, 1:])
    assert not hasattr(GPT(config).embed, 'smear')


def test_b5_demo_recipe_eighth_round_run_changes():
    "The eighth round's changes to a run (embedding undecayed, noisy inputs, Muon's 3 steps) hold inside, only there."
    from gpt_nb import run_setup

    model = GPT(rotary_config_and_tokens()[0])
    changes = benchmark('recipe_changes').CHANGES
    with changes['undecayed_embedding']():
        adamw = run_setup.configure_optimizer(model, 1e-3, kind='muon')[-1]
    decayed, undecayed = adamw.param_groups
    embedding = model.embed.tok.weight
    assert decayed['weight_decay'] > 0 and not any(param is embedding for param in decayed['params'])
    assert undecayed['weight_decay'] == 0 and any(param is embedding for param in undecayed['params'])
    assert any(param is embedding for param in run_setup.configure_optimizer(model, 1e-3)[-1].param_groups[0]['params'])
    stream = (np.arange(1_000) % 50).astype(np.uint16)
    clean = run_setup.story_batches(stream, 4, 32, 0, torch.device('cpu'))
    with changes['noisy_inputs'](0.5):
        noisy = run_setup.story_batches(stream, 4, 32, 0, torch.device('cpu'))
    (inputs, targets), (noisy_inputs, noisy_targets) = clean(3, 0, 1), noisy(3, 0, 1)
    assert torch.equal(targets, noisy_targets)
    assert 0.3 < (inputs != noisy_inputs).float().mean() < 0.6 and int(noisy_inputs.max()) < 50
    assert torch.equal(noisy(3, 0, 1)[0], noisy_inputs)  # a function of the step: a resumed run sees the same
    assert run_setup.story_batches(stream, 4, 32, 0, torch.device('cpu'))(3, 0, 1)[0].equal(inputs)
    with changes['fewer_newton_schulz_steps']():
        muon = run_setup.configure_optimizer(model, 1e-3, kind='muon')[0]
    assert muon.param_groups[0]['ns_steps'] == 3
    assert run_setup.configure_optimizer(model, 1e-3, kind='muon')[0].param_groups[0]['ns_steps'] == 5


def test_b5_demo_recipe_ninth_round_changes():
    """The ninth round's value residuals and embedding shortcut: the plain model at mix 1 (shortcut 0), cached decoding
    the same as the whole window, only inside; Muon's momentum warms up inside only."""
    from gpt_nb import optim, run_setup, training

    changes = benchmark('recipe_changes').CHANGES
    config, tokens = rotary_config_and_tokens()
    torch.manual_seed(0)
    plain = GPT(config).eval()
    for name, start in (('value_residual', 'value_mix'), ('embedding_shortcut', 'embedding_weight')):
        with changes[name]():
            changed = GPT(config).eval()
        changed.load_state_dict(plain.state_dict(), strict=False)
        assert [key for key in changed.state_dict() if key not in plain.state_dict()], name  # its own weights
        with torch.no_grad():
            whole = changed(tokens)[0]
            cache = changed.new_cache(2)
            steps = [changed(tokens[:, :4], cache=cache)[0]]
            steps += [changed(tokens[:, position : position + 1], cache=cache)[0] for position in range(4, 16)]
        assert torch.allclose(torch.cat(steps, 1), whole, atol=1e-5), name
        assert torch.allclose(whole, plain(tokens)[0], atol=1e-5) == (name == 'embedding_shortcut'), name
        with torch.no_grad():
            getattr(changed.blocks[1].attn if name == 'value_residual' else changed.blocks[1], start).fill_(
                1.0 if name == 'value_residual' else 0.0
            )
        assert torch.allclose(changed(tokens)[0], plain(tokens)[0], atol=1e-5), name  # the plain model again
    assert not hasattr(GPT(config).blocks[1].attn, 'value_mix') and not hasattr(GPT(config).blocks[1], 'stream_scale')
    run = types.SimpleNamespace(
        config=types.SimpleNamespace(warmup_fraction=0.0, warmup_steps=None, min_lr_ratio=0.0, cooldown=None, lr=1.0),
        progress=0.5,
        step=150,
        optimizers=run_setup.configure_optimizer(GPT(config), 1e-3, kind='muon'),
    )
    with changes['muon_momentum_warmup']():
        training.set_learning_rate(run)
    muon = run.optimizers[0]
    assert isinstance(muon, optim.Muon) and abs(muon.param_groups[0]['momentum'] - 0.9) < 1e-9  # halfway to 0.95
    assert training.set_learning_rate.__name__ == 'set_learning_rate'


def test_b5_generation_closed_pipe():
    "`bench_generation.py | head -c 20`: a quiet 0, no traceback, no error."
    pipe = Pipe(20)
    r = run_small('bench_generation', timeout=60, stdout=pipe)
    pipe.close()
    assert r.code == 0, r.summary()
    assert_clean(r)


def test_b5_scaling_sweep_resumes_and_fits():
    """Two sizes at two budgets end to end (4 runs); then a third size in 2 processes: only its 2 runs are trained, the
    first 4 are read from the CSV, and with 3 sizes the laws are fitted and drawn."""
    r = run_small('scaling', timeout=240)
    assert_ok(r)
    csv_path = Path('sweep') / 'sweep.csv'
    assert len(csv_path.read_text().splitlines()) == 1 + 4, csv_path.read_text()
    assert 'the fits need at least 3 sizes' in r.out, r.out[-1000:]
    first = csv_path.read_text()
    r = run_small('scaling', '--sizes', '1x32x2,2x32x2,2x48x3', '--jobs', 2, timeout=240)
    assert_ok(r)
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 1 + 6 and csv_path.read_text().startswith(first), lines  # the first 4 untouched
    assert sum(line.startswith('2x48x3,') for line in lines) == 2, lines
    assert 'L(N, D): E ' in r.out and (Path('sweep') / 'sweep.png').stat().st_size > 0, r.out[-1500:]


# ================================================================================================
# B6  Ctrl-C while a benchmark still loads its libraries (torch): one line and 130, no traceback, every script
# ================================================================================================
INTERRUPT_AT_TORCH = '''
import os, runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if a background job started pytest
class InterruptAtTorch:  # Ctrl-C arrives exactly when the script starts to import torch
    def find_spec(self, name, path=None, target=None):
        if name == 'torch':
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, InterruptAtTorch())
sys.argv = [sys.argv[1], '--help']
runpy.run_path(sys.argv[0], run_name='__main__')
'''


@pytest.mark.parametrize('name', sorted(path.stem for path in BENCHMARKS.glob('*.py')))
def test_b6_ctrl_c_while_importing(name):
    script = BENCHMARKS / f'{name}.py'
    done = subprocess.run(
        [sys.executable, '-c', INTERRUPT_AT_TORCH, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 130, (done.returncode, done.stderr[-2000:])
    assert done.stderr == f'{name}.py: interrupted\n', done.stderr[-2000:]
