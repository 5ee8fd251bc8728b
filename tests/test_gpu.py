"""The CUDA paths that no CPU test reaches, as pytest tests marked `gpu`: skipped where CUDA is absent (as in CI).

    python -m pytest -s -m gpu tests/test_gpu.py                       # about 5 minutes on one H100 or H200
    GPT_NB_SPEEDRUN_MINUTES=0 python -m pytest -s tests/test_gpu.py    # without chapter 09's speedrun
    python -m pytest -s tests/test_gpu.py --basetemp /tmp/gpu_runs     # keep the runs' checkpoints in that folder

With -s, every test prints its figures (differences, tokens/s, losses, bits per byte, samples); a failing test
shows them in its report too. What they cover:

- numerics: fp32 logits on the GPU against the CPU; PyTorch's fused attention against the course's explicit one in
  fp32, bf16 and fp16; cached against uncached logits (GPT-2's layout and the modern one); a left-padded batch
  against each prompt alone; the shipped model's bits per byte in fp32 and bf16 under autocast
- speed: cached against uncached generation of the 124M GPT-2 preset (a ratio measured in the same run)
- the command-line tools as a user runs them: training in bf16, in fp16 (gradient scaler), with --compile, the
  modern architecture with Muon, DDP through torchrun, a resumed run; gpt-nb-generate-text from the trained
  checkpoint; LoRA fine-tuning, then gpt-nb-generate-text --instruction
- chapter 09's speedrun recipe (gpt2-rope and the CPU recipe) for $GPT_NB_SPEEDRUN_MINUTES (default 1.5) on the GPU
"""

import contextlib, importlib.metadata, io, os, platform, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from gpt_nb.attention import CausalSelfAttention
from gpt_nb.checkpoint import load_checkpoint, load_pretrained
from gpt_nb.config import ARCHITECTURES, GPTConfig
from gpt_nb.evaluation import autocast, validation_bits_per_byte
from gpt_nb.generation import generate, generate_text
from gpt_nb.model import GPT
from gpt_nb.train_config import CPU_RECIPE

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason='needs an NVIDIA GPU (CUDA is not available here)'),
]

ROOT = Path(__file__).resolve().parent.parent
CUDA = torch.device('cuda')
SPEEDRUN_MINUTES = float(os.environ.get('GPT_NB_SPEEDRUN_MINUTES', '1.5'))
# the training runs' shared flags: the bundled stories, a short evaluation, a short sample
COMMON_FLAGS = ['--device', 'cuda', '--data', 'bundled', '--eval-stories', '200', '--sample-tokens', '20']
COMMON_FLAGS += ['--eval-minutes', '10']
TRAIN, GENERATE, FINETUNE = 'gpt-nb-train-tiny-stories', 'gpt-nb-generate-text', 'gpt-nb-finetune'  # console scripts
TINY = dict(vocab_size=512, context_length=64, n_layer=2, n_head=4, d_model=64)  # a model small enough to test fast


# ------------------------------------------------------------------------------------------------- helpers
def last_lines(text: str, count: int = 15) -> str:
    return '\n'.join(text.splitlines()[-count:])


def run_tool(script: str, *argv) -> str:
    """Run console script `script` (`gpt-nb-train-tiny-stories`, ...) with `argv` in this process, as the installed
    command runs it; its output, or a failure that shows its last lines."""
    [entry_point] = importlib.metadata.entry_points(group='console_scripts', name=script)
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            status = entry_point.load()([str(arg) for arg in argv])
        except SystemExit as stop:  # argparse's refusals
            status = stop.code
    text = output.getvalue()
    assert status == 0, f'{script} {" ".join(map(str, argv))} exited {status}:\n{last_lines(text)}'
    return text


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


def training_summary(out_dir: Path) -> tuple[float, float, str]:
    "The mean loss of the first and of the last five steps of the run saved in `out_dir`, and a line that says so."
    checkpoint = load_checkpoint(out_dir / 'last.pt')
    losses, evaluations = checkpoint.extra['history']['loss'], checkpoint.extra['history']['eval']
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    bits = f', {evaluations[-1]["bits_per_byte"]:.3f} bits/byte' if evaluations else ''
    return first, last, f'{checkpoint.extra["step"]} steps, loss {first:.2f} -> {last:.2f}{bits}'


def assert_trained(out_dir: Path, min_drop: float = 0.5) -> str:
    "Check that the run saved in `out_dir` ended with a loss well below its first steps'; the summary line."
    first, last, summary = training_summary(out_dir)
    assert last < first - min_drop, summary
    return summary


def recipe_flags(recipe: dict) -> list[str]:
    "A recipe (`CPU_RECIPE`) as the training command's flags: each setting's flag is its name with dashes."
    flags = []
    for name, value in recipe.items():
        if value is not None:
            flags += ['--' + name.replace('_', '-'), str(value)]
    return flags


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope='module', autouse=True)
def machine():
    "Print the machine every figure below was measured on."
    props = torch.cuda.get_device_properties(0)
    print(
        f'\ntorch {torch.__version__}, CUDA {torch.version.cuda}, {props.name} ({props.total_memory / 2**30:.0f} GiB, '
        f'sm_{props.major}{props.minor}), bf16 {torch.cuda.is_bf16_supported()}, python {platform.python_version()}'
    )


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> Path:
    "The folder of this module's training runs."
    return tmp_path_factory.mktemp('gpu_runs')


@pytest.fixture(scope='module')
def shipped():
    "The model that ships with gpt_nb, on the GPU."
    return load_pretrained('tinystories', device=CUDA)


@pytest.fixture(scope='module')
def bf16_run(runs) -> Path:
    "300 steps of the GPU recipe (gpt2 tokens, batch 32, AdamW) in bf16; the run's folder."
    out_dir = runs / 'bf16'
    run_tool(TRAIN, *COMMON_FLAGS, '--precision', 'bf16', '--max-steps', '300', '--out-dir', out_dir)
    return out_dir


# ------------------------------------------------------------------------------------------------ numerics
def test_fp32_logits_match_the_cpu():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**TINY)).eval()
    idx = torch.randint(0, 512, (2, 64))
    with torch.no_grad():
        on_cpu = model(idx)[0]
        on_gpu = model.to(CUDA)(idx.to(CUDA))[0].cpu()
    difference = max_difference(on_cpu, on_gpu)
    print(f'fp32 logits, GPU against CPU: max |difference| {difference:.1e}')
    assert difference < 1e-4


@pytest.mark.parametrize('precision, tolerance', [('fp32', 1e-5), ('bf16', 3e-2), ('fp16', 3e-3)])
def test_fused_attention_matches_the_explicit_one(precision, tolerance):
    "F.scaled_dot_product_attention against the course's explicit attention (need_weights=True)."
    torch.manual_seed(0)
    attention = CausalSelfAttention(GPTConfig(d_model=256, n_head=4)).to(CUDA).eval()
    x = torch.randn(4, 128, 256, device=CUDA)
    with torch.no_grad(), autocast(CUDA, precision):
        fused = attention(x)
        explicit, _ = attention(x, need_weights=True)
    relative = max_difference(fused, explicit) / explicit.float().abs().max().item()
    print(f'fused against explicit attention, {precision}: relative max |difference| {relative:.1e}')
    assert relative < tolerance


@pytest.mark.parametrize('architecture', ['gpt2', 'modern'])
def test_cached_logits_match_uncached(architecture):
    "The key-value cache, token by token after a 16-token prompt, against the whole sequence at once."
    torch.manual_seed(0)
    config = GPTConfig(**TINY, **ARCHITECTURES[architecture])
    model = GPT(config).to(CUDA).eval()
    idx = torch.randint(0, 512, (2, 48), device=CUDA)
    with torch.no_grad():
        whole = model(idx)[0]
        cache = model.new_cache(2)
        steps = [model(idx[:, :16], cache=cache)[0]]
        steps += [model(idx[:, t : t + 1], cache=cache)[0] for t in range(16, 48)]
    difference = max_difference(whole, torch.cat(steps, 1))
    print(f'cached against uncached logits, {architecture}: max |difference| {difference:.1e}')
    assert difference < 1e-4


def test_generation_on_the_gpu(shipped):
    "Cached = uncached greedy text; a left-padded batch = each prompt alone; a seeded sample is reproducible."
    model, tokenizer = shipped.model, shipped.tokenizer
    prompts = ['Once upon a time', 'Tom and his little sister Lily went to the park to play']
    cached = generate_text(model, tokenizer, prompts[0], 120, temperature=0)
    uncached = generate_text(model, tokenizer, prompts[0], 120, temperature=0, use_cache=False)
    batch = generate_text(model, tokenizer, prompts, 60, temperature=0)
    alone = [generate_text(model, tokenizer, prompt, 60, temperature=0) for prompt in prompts]
    sampling = dict(temperature=0.8, top_k=200, top_p=0.95, seed=0)
    sample = generate_text(model, tokenizer, prompts[0], 60, **sampling)
    again = generate_text(model, tokenizer, prompts[0], 60, **sampling)
    print(
        f'{len(tokenizer.encode(cached))} greedy tokens identical: {cached == uncached}; batch = alone: '
        f'{batch == alone}; sample: {sample[:70]!r}…'
    )
    assert cached == uncached
    assert batch == alone
    assert sample == again


def test_shipped_bits_per_byte_in_fp32_and_bf16(shipped):
    "The shipped model on the 1,000 validation stories, in fp32 and in bf16 under autocast, against its CPU figure."
    on_cpu = shipped.extra['bits_per_byte']  # what tools/make_pretrained.py measured when it wrote the model
    fp32 = validation_bits_per_byte(shipped.model, shipped.tokenizer, batch_size=64)
    bf16 = validation_bits_per_byte(shipped.model, shipped.tokenizer, batch_size=64, precision='bf16')
    print(f"the shipped model's bits per byte: fp32 {fp32:.4f}, bf16 {bf16:.4f} (CPU: {on_cpu:.4f})")
    assert abs(fp32 - on_cpu) < 0.001
    assert abs(bf16 - fp32) < 0.01


# --------------------------------------------------------------------------------------------------- speed
def test_cached_generation_is_faster():
    "256 new tokens after 16 from the 124M gpt2 preset (random weights), with and without the cache."
    torch.manual_seed(0)
    model = GPT(GPTConfig()).to(CUDA).eval()
    idx = torch.randint(0, 50257, (1, 16), device=CUDA)
    tokens_per_second = {}
    for use_cache in (True, False, True):  # the first run warms up
        torch.cuda.synchronize()
        start = time.perf_counter()
        generate(model, idx, 256, temperature=0, stop_tokens=[], use_cache=use_cache)
        torch.cuda.synchronize()
        tokens_per_second[use_cache] = 256 / (time.perf_counter() - start)
    cached, uncached = tokens_per_second[True], tokens_per_second[False]
    print(f'cached {cached:.0f} tokens/s, uncached {uncached:.0f} tokens/s ({cached / uncached:.1f}x)')
    assert cached > uncached


# ------------------------------------------------------------------------------ the command-line tools
def test_train_in_bf16(bf16_run):
    print(f'train, bf16, 300 steps: {assert_trained(bf16_run)}')


def test_resume_the_bf16_run(bf16_run):
    run_tool(TRAIN, *COMMON_FLAGS, '--precision', 'bf16', '--max-steps', '400', '--out-dir', bf16_run, '--resume')
    checkpoint = load_checkpoint(bf16_run / 'last.pt')
    losses = len(checkpoint.extra['history']['loss'])
    print(f'resumed to step {checkpoint.extra["step"]}, {losses} losses in the history')
    assert checkpoint.extra['step'] == 400
    assert losses == 400


def test_generate_from_the_bf16_checkpoint(bf16_run):
    flags = ['--device', 'cuda', '--seed', '0', '--max-new-tokens', '40']
    text = run_tool(GENERATE, '--checkpoint', bf16_run / 'best_model.pt', *flags).strip()
    print(f'gpt-nb-generate-text from the bf16 checkpoint: {text[-120:]!r}')
    assert len(text) > 40


def test_train_in_fp16_with_the_gradient_scaler(runs):
    out_dir = runs / 'fp16'
    run_tool(TRAIN, *COMMON_FLAGS, '--precision', 'fp16', '--max-steps', '300', '--out-dir', out_dir)
    scale = load_checkpoint(out_dir / 'last.pt').extra['scaler'].get('scale')
    print(f'train, fp16, 300 steps: {assert_trained(out_dir)}, loss scale {scale}')


def test_train_compiled(runs):
    out_dir, start = runs / 'compiled', time.perf_counter()
    run_tool(TRAIN, *COMMON_FLAGS, '--precision', 'bf16', '--compile', '--max-steps', '300', '--out-dir', out_dir)
    summary = assert_trained(out_dir)
    print(f'train, --compile, bf16, 300 steps: {summary}; {time.perf_counter() - start:.0f} s with compilation')


def test_train_the_modern_architecture_with_muon(runs):
    out_dir = runs / 'modern'
    flags = ['--architecture', 'modern', '--optimizer', 'muon', '--precision', 'bf16', '--max-steps', '300']
    run_tool(TRAIN, *COMMON_FLAGS, *flags, '--out-dir', out_dir)
    print(f'train, the modern architecture with Muon, bf16: {assert_trained(out_dir)}')


def test_train_with_ddp_through_torchrun(runs):
    "One process under torchrun (NCCL), 100 steps in bf16: the data-parallel path, as a user starts it."
    out_dir = runs / 'ddp'
    launcher = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=1']
    script = ROOT / 'examples' / 'train_tiny_stories.py'
    flags = [*COMMON_FLAGS, '--precision', 'bf16', '--max-steps', '100', '--out-dir', str(out_dir)]
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))
    done = subprocess.run(
        [*launcher, str(script), *flags],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env={**os.environ, 'PYTHONPATH': python_path},
    )
    assert done.returncode == 0, f'torchrun exited {done.returncode}:\n{last_lines(done.stdout + done.stderr)}'
    print(f'train, DDP through torchrun, 1 process: {assert_trained(out_dir, min_drop=0.3)}')


def test_finetune_with_lora_then_follow_an_instruction(runs):
    "LoRA fine-tuning of the shipped model on the GPU, 150 steps, then gpt-nb-generate-text --instruction."
    out_dir = runs / 'finetuned'
    flags = ['--device', 'cuda', '--max-steps', '150', '--eval-prompts', '50', '--eval-stories', '200']
    report = run_tool(FINETUNE, *flags, '--out-dir', out_dir)
    lines = report.splitlines()
    head = next(i for i, line in enumerate(lines) if 'uses all words' in line)  # the metrics table: before and after
    table = '\n'.join(lines[head : head + 3])
    instruction = 'Write a story that uses the words: ball, happy, tree.'
    flags = ['--device', 'cuda', '--seed', '0', '--instruction', instruction, '--max-new-tokens', '80']
    story = run_tool(GENERATE, '--checkpoint', out_dir / 'best_model.pt', *flags).strip()
    print(f'fine-tuned with LoRA:\n{table}\n  sample: {story[-200:]!r}')
    assert 'saved' in report
    assert len(story) > 40


# ------------------------------------------------------------------------------------------- the speedrun
@pytest.mark.skipif(SPEEDRUN_MINUTES <= 0, reason='GPT_NB_SPEEDRUN_MINUTES is 0')
def test_the_speedrun_recipe(runs):
    "Chapter 09's speedrun (gpt2-rope and the CPU recipe: bpe:4096, context 256, batch 8, Muon), in bf16 on the GPU."
    out_dir = runs / 'speedrun'
    flags = ['--architecture', 'gpt2-rope', '--data', 'bundled', '--device', 'cuda', '--precision', 'bf16']
    flags += ['--minutes', SPEEDRUN_MINUTES, '--eval-minutes', SPEEDRUN_MINUTES, '--eval-stories', '200']
    run_tool(TRAIN, *flags, *recipe_flags(CPU_RECIPE), '--sample-prompt', '', '--out-dir', out_dir)
    checkpoint = load_checkpoint(out_dir / 'last.pt', device=CUDA)
    bits = validation_bits_per_byte(checkpoint.model, checkpoint.tokenizer, batch_size=64)
    print(
        f'speedrun recipe ({CPU_RECIPE}), {SPEEDRUN_MINUTES:g} min: {checkpoint.extra["step"]:,} steps in '
        f'{checkpoint.extra["seconds"] / 60:.1f} min, {bits:.4f} bits per byte on the 1,000 validation stories '
        '(CPU, 10 min: 1.0884 after 1,316 steps)'
    )
    assert bits < 1.5
