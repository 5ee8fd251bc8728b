"""Exercise the CUDA paths that no CPU test reaches, on a machine with an NVIDIA GPU, and print what each one did.

    python tools/gpu_check.py                     # about 5 minutes on one H100 or H200
    python tools/gpu_check.py --speedrun-minutes 0 --out /tmp/gpu_check

CI has no GPU, so this is run by hand wherever one is lent. Every check prints one PASS or FAIL line with its
figures, a failing check does not stop the others, and the last line counts them (exit status 1 if any failed):

- numerics: fp32 logits on the GPU against the CPU; PyTorch's fused attention against the course's explicit one
  in fp32, bf16 and fp16; cached against uncached logits (GPT-2's layout and the modern one); a left-padded batch
  against each prompt alone; the shipped model's bits per byte in fp32 and bf16 under autocast
- speed: cached against uncached generation of the 124M GPT-2 preset (a ratio measured in the same run)
- the command-line tools as a user runs them: training steps in bf16, in fp16 (gradient scaler), with --compile,
  the modern architecture with Muon, DDP through torchrun, a resumed run; generate_text from the trained
  checkpoint; LoRA fine-tuning, then generate_text --instruction
- chapter 09's speedrun recipe (gpt2-rope, bpe:4096, context 256, Muon) for --speedrun-minutes on the GPU
"""

import argparse, os, platform, subprocess, sys, tempfile, time, traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpt_nb.attention import CausalSelfAttention  # noqa: E402
from gpt_nb.checkpoint import load_checkpoint, load_pretrained  # noqa: E402
from gpt_nb.config import ARCHITECTURES, GPTConfig  # noqa: E402
from gpt_nb.evaluation import autocast, evaluate  # noqa: E402
from gpt_nb.generation import generate, generate_text  # noqa: E402
from gpt_nb.model import GPT  # noqa: E402
from gpt_nb.files import bundled_stories  # noqa: E402
from gpt_nb.tokens import eval_tokens  # noqa: E402
from gpt_nb.train_config import CPU_RECIPE  # noqa: E402
from gpt_nb.training import train  # noqa: E402

results = []  # (name, passed, detail)


def check(name):
    "Run the decorated function now as one check: it returns (passed, detail); an exception is a failure with its traceback."

    def run(fn):
        t0 = time.time()
        try:
            passed, detail = fn()
        except Exception as e:
            passed, detail = False, f'{type(e).__name__}: {e}'
            traceback.print_exc()
        results.append((name, passed, detail))
        print(f'{"PASS" if passed else "FAIL"} {name} ({time.time() - t0:.0f} s): {detail}', flush=True)

    return run


def cli(script: str, *args, timeout: float = 240, launcher: list | None = None) -> str:
    "Run `examples/SCRIPT ARGS` as a user would; its output, or an exception naming its exit status and last lines."
    cmd = (launcher or [sys.executable]) + [str(ROOT / 'examples' / script), *map(str, args)]
    p = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))},
    )
    out = p.stdout + p.stderr
    if p.returncode:
        raise RuntimeError(f'{script} exited {p.returncode}:\n' + '\n'.join(out.splitlines()[-15:]))
    return out


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


def trained(out_dir: Path, min_drop: float = 0.5) -> tuple[bool, str]:
    "Whether the run saved in `out_dir` finished with a finite loss well below its first steps'."
    ckpt = load_checkpoint(out_dir / 'last.pt')
    losses = ckpt.extra['history']['loss']
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    evals = ckpt.extra['history']['eval']
    bpb = f', {evals[-1]["bits_per_byte"]:.3f} bits/byte' if evals else ''
    return last < first - min_drop, f'{ckpt.extra["step"]} steps, loss {first:.2f} -> {last:.2f}{bpb}'


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default=None, help='folder for the runs (default: a temporary one)')
    p.add_argument(
        '--speedrun-minutes',
        type=float,
        default=1.5,
        help="minutes of chapter 09's recipe on the GPU; 0 = skip (default: %(default)s)",
    )
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit('gpu_check: no CUDA device here; this script checks the GPU paths')
    out = Path(args.out or tempfile.mkdtemp(prefix='gpu_check_'))
    cuda = torch.device('cuda')
    props = torch.cuda.get_device_properties(0)
    print(
        f'torch {torch.__version__}, CUDA {torch.version.cuda}, {props.name} ({props.total_memory / 2**30:.0f} GiB, '
        f'sm_{props.major}{props.minor}), bf16 {torch.cuda.is_bf16_supported()}, python {platform.python_version()}',
        flush=True,
    )

    @check('fp32 logits: GPU against CPU')
    def _():
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=512, context_length=64, n_layer=2, n_head=4, d_model=64)).eval()
        idx = torch.randint(0, 512, (2, 64))
        with torch.no_grad():
            cpu, gpu = model(idx)[0], model.to(cuda)(idx.to(cuda))[0].cpu()
        d = max_diff(cpu, gpu)
        return d < 1e-4, f'max |difference| {d:.1e}'

    @check("fused attention (F.scaled_dot_product_attention) against the explicit one, fp32/bf16/fp16")
    def _():
        torch.manual_seed(0)
        attn = CausalSelfAttention(GPTConfig(d_model=256, n_head=4)).to(cuda).eval()
        x = torch.randn(4, 128, 256, device=cuda)
        details, ok = [], True
        for precision, tol in (('fp32', 1e-5), ('bf16', 3e-2), ('fp16', 3e-3)):
            with torch.no_grad(), autocast(cuda, precision):
                fused, (explicit, _) = attn(x), attn(x, need_weights=True)
            d = max_diff(fused, explicit) / explicit.float().abs().max().item()
            ok &= d < tol
            details.append(f'{precision} {d:.1e}')
        return ok, 'relative max |difference| ' + ', '.join(details)

    @check('cached against uncached logits, token by token (gpt2 and modern layouts)')
    def _():
        details, ok = [], True
        for name in ('gpt2', 'modern'):
            torch.manual_seed(0)
            model = (
                GPT(
                    GPTConfig(vocab_size=512, context_length=64, n_layer=2, n_head=4, d_model=64, **ARCHITECTURES[name])
                )
                .to(cuda)
                .eval()
            )
            idx = torch.randint(0, 512, (2, 48), device=cuda)
            with torch.no_grad():
                full = model(idx)[0]
                cache = model.new_cache(2)
                steps = [model(idx[:, :16], cache=cache)[0]] + [
                    model(idx[:, t : t + 1], cache=cache)[0] for t in range(16, 48)
                ]
            d = max_diff(full, torch.cat(steps, 1))
            ok &= d < 1e-4
            details.append(f'{name} {d:.1e}')
        return ok, 'max |difference| ' + ', '.join(details)

    shipped = load_pretrained('tinystories', device=cuda)

    @check('generation on the GPU: cached = uncached greedy; a left-padded batch = each prompt alone')
    def _():
        model, tok = shipped.model, shipped.tokenizer
        prompts = ['Once upon a time', 'Tom and his little sister Lily went to the park to play']
        cached = generate_text(model, tok, prompts[0], 120, temperature=0)
        uncached = generate_text(model, tok, prompts[0], 120, temperature=0, use_cache=False)
        batch = generate_text(model, tok, prompts, 60, temperature=0)
        alone = [generate_text(model, tok, q, 60, temperature=0) for q in prompts]
        sampled = generate_text(model, tok, prompts[0], 60, temperature=0.8, top_k=200, top_p=0.95, seed=0)
        ok = (
            cached == uncached
            and batch == alone
            and sampled == generate_text(model, tok, prompts[0], 60, temperature=0.8, top_k=200, top_p=0.95, seed=0)
        )
        return (
            ok,
            f'{len(tok.encode(cached))} greedy tokens identical: {cached == uncached}; batch = alone: {batch == alone}; sample: {sampled[:70]!r}…',
        )

    @check("the shipped model's bits per byte on the 1,000 validation stories, fp32 and bf16 (CPU figure: 0.995)")
    def _():
        ids, n_bytes = eval_tokens(bundled_stories('valid'), shipped.tokenizer)
        fp32 = evaluate(shipped.model, ids, n_bytes, shipped.config.context_length, batch_size=64)['bits_per_byte']
        bf16 = evaluate(shipped.model, ids, n_bytes, shipped.config.context_length, batch_size=64, precision='bf16')[
            'bits_per_byte'
        ]
        return abs(fp32 - 0.995) < 0.001 and abs(bf16 - fp32) < 0.01, f'fp32 {fp32:.4f}, bf16 {bf16:.4f}'

    @check('generation speed of the 124M gpt2 preset (random weights), 256 new tokens after 16')
    def _():
        torch.manual_seed(0)
        model = GPT(GPTConfig()).to(cuda).eval()
        idx = torch.randint(0, 50257, (1, 16), device=cuda)
        rates = {}
        for use_cache in (True, False, True):  # the first run warms up
            torch.cuda.synchronize()
            t0 = time.time()
            generate(model, idx, 256, temperature=0, stop_tokens=[], use_cache=use_cache)
            torch.cuda.synchronize()
            rates[use_cache] = 256 / (time.time() - t0)
        return (
            rates[True] > rates[False],
            f'cached {rates[True]:.0f} tokens/s, uncached {rates[False]:.0f} tokens/s ({rates[True] / rates[False]:.1f}x)',
        )

    common = [
        '--device',
        'cuda',
        '--data',
        'bundled',
        '--eval-stories',
        '200',
        '--sample-tokens',
        '20',
        '--eval-minutes',
        '10',
    ]

    @check('train: bf16, 300 steps (GPU recipe: gpt2 tokens, batch 32, AdamW)')
    def _():
        cli('train_tiny_stories.py', *common, '--precision', 'bf16', '--max-steps', '300', '--out-dir', out / 'bf16')
        return trained(out / 'bf16')

    @check('train: resume the bf16 run to 400 steps')
    def _():
        cli(
            'train_tiny_stories.py',
            *common,
            '--precision',
            'bf16',
            '--max-steps',
            '400',
            '--out-dir',
            out / 'bf16',
            '--resume',
        )
        ckpt = load_checkpoint(out / 'bf16' / 'last.pt')
        return ckpt.extra['step'] == 400 and len(
            ckpt.extra['history']['loss']
        ) == 400, f'step {ckpt.extra["step"]}, {len(ckpt.extra["history"]["loss"])} losses in the history'

    @check('generate_text.py from the bf16 checkpoint on the GPU')
    def _():
        text = cli(
            'generate_text.py',
            '--checkpoint',
            out / 'bf16' / 'best_model.pt',
            '--device',
            'cuda',
            '--seed',
            '0',
            '--max-new-tokens',
            '40',
        )
        return len(text.strip()) > 40, repr(text.strip()[-120:])

    @check('train: fp16 with the gradient scaler, 300 steps')
    def _():
        cli('train_tiny_stories.py', *common, '--precision', 'fp16', '--max-steps', '300', '--out-dir', out / 'fp16')
        ckpt = load_checkpoint(out / 'fp16' / 'last.pt')
        ok, detail = trained(out / 'fp16')
        return ok, f'{detail}, loss scale {ckpt.extra["scaler"].get("scale")}'

    @check('train: --compile, bf16, 300 steps')
    def _():
        t0 = time.time()
        cli(
            'train_tiny_stories.py',
            *common,
            '--precision',
            'bf16',
            '--compile',
            '--max-steps',
            '300',
            '--out-dir',
            out / 'compiled',
        )
        ok, detail = trained(out / 'compiled')
        return ok, f'{detail}; {time.time() - t0:.0f} s with compilation'

    @check('train: the modern architecture with Muon, bf16, 300 steps')
    def _():
        cli(
            'train_tiny_stories.py',
            *common,
            '--architecture',
            'modern',
            '--optimizer',
            'muon',
            '--precision',
            'bf16',
            '--max-steps',
            '300',
            '--out-dir',
            out / 'modern',
        )
        return trained(out / 'modern')

    @check('train: DDP through torchrun (1 process, NCCL), bf16, 100 steps')
    def _():
        cli(
            'train_tiny_stories.py',
            *common,
            '--precision',
            'bf16',
            '--max-steps',
            '100',
            '--out-dir',
            out / 'ddp',
            launcher=[sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=1'],
        )
        return trained(out / 'ddp', min_drop=0.3)

    @check('finetune.py: LoRA on the GPU, 150 steps, then generate_text.py --instruction')
    def _():
        text = cli(
            'finetune.py',
            '--device',
            'cuda',
            '--max-steps',
            '150',
            '--eval-prompts',
            '50',
            '--eval-stories',
            '200',
            '--out-dir',
            out / 'finetuned',
        )
        lines = text.splitlines()
        head = next(i for i, line in enumerate(lines) if 'uses all words' in line)  # metrics_table: before and after
        table = '\n'.join(lines[head : head + 3])
        story = cli(
            'generate_text.py',
            '--checkpoint',
            out / 'finetuned' / 'best_model.pt',
            '--device',
            'cuda',
            '--seed',
            '0',
            '--instruction',
            'Write a story that uses the words: ball, happy, tree.',
            '--max-new-tokens',
            '80',
        )
        return 'saved' in text and len(story.strip()) > 40, f'\n{table}\n  sample: {story.strip()[-200:]!r}'

    if args.speedrun_minutes > 0:

        @check(
            f"chapter 09's speedrun recipe (gpt2-rope and the CPU recipe: {CPU_RECIPE}) for {args.speedrun_minutes:g} min on the GPU"
        )
        def _():
            result = train(
                architecture='gpt2-rope',
                data='bundled',
                device='cuda',
                minutes=args.speedrun_minutes,
                **CPU_RECIPE,
                eval_minutes=args.speedrun_minutes,
                eval_stories=200,
                out_dir=str(out / 'speedrun'),
                progress=False,
                sample_prompt='',
                precision='bf16',
            )
            ckpt = load_checkpoint(out / 'speedrun' / 'last.pt', device=cuda)
            ids, n_bytes = eval_tokens(bundled_stories('valid'), ckpt.tokenizer)
            bpb = evaluate(ckpt.model, ids, n_bytes, ckpt.config.context_length, batch_size=64)['bits_per_byte']
            return bpb < 1.5, (
                f'{result.step:,} steps in {result.seconds / 60:.1f} min: {bpb:.4f} bits per byte on the 1,000 validation '
                f'stories (CPU, 10 min: 1.0884 after 1,316 steps)'
            )

    failed = [name for name, passed, _ in results if not passed]
    print(
        f'\ngpu checks: {len(results) - len(failed)} passed, {len(failed)} failed'
        + (f' ({"; ".join(failed)})' if failed else '')
    )
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
