"""Training benchmarks: (1) training-step throughput and MFU against transformers, (2) time to quality.

(1) `throughput`: tokens/s of one optimiser step exactly as `gpt_nb.training.train` takes it (autocast, fused AdamW
    with decay on matrices, gradient clipping) against transformers' GPT2LMHeadModel with the same config, weights,
    batch and optimiser, in the same run, and gpt_nb's model-FLOPs utilisation against a measured matmul peak. The timing helpers
    are those of benchmarks/bench_model.py (the model benchmark), so both report comparable figures.
(2) `quality`: train on the bundled TinyStories excerpt for a wall-clock budget (`train(minutes=...)`, so each run ends
    annealed) and report bits per byte on all 1,000 bundled validation stories (the same text for every tokenizer).

    python benchmarks/bench_training.py throughput                    # tiny preset, batch 4x128 (the CPU default), vocab 50,257 and 4,096
    python benchmarks/bench_training.py throughput --nanogpt ~/nanoGPT --batch-size 16 --context-length 256 --vocab-sizes 4096 --threads 2

    With `--nanogpt PATH` (a checkout of github.com/karpathy/nanoGPT, or its model.py), throughput also times nanoGPT's
    model.py (imported from PATH at run time; its code is not part of this project) against gpt_nb's GPT: same config,
    weights and batch, plain AdamW for both, training steps interleaved in one process (ABBA order, `--rounds` rounds),
    reporting median steps/s of each and the median per-round ratio.
    python benchmarks/bench_training.py quality --minutes 10          # 10 minutes per tokenizer
    python benchmarks/bench_training.py quality --minutes 0.5 --tokenizers bpe:4096
"""

import argparse, contextlib, dataclasses, importlib.util, io, platform, re, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import cpu_name, make_models, matmul_peak_flops, time_steps  # noqa: E402

from gpt_nb.config import GPTConfig  # noqa: E402
from gpt_nb.model import GPT  # noqa: E402
from gpt_nb.evaluation import autocast  # noqa: E402
from gpt_nb.optim import configure_optimizer  # noqa: E402
from gpt_nb.training import train  # noqa: E402


def throughput(args):
    "Training-step tokens/s of gpt_nb (as train() steps) and transformers, for each vocabulary size."
    peak = matmul_peak_flops()
    print(
        f'torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()}; measured fp32 matmul peak {peak / 1e9:.1f} GFLOP/s'
    )
    print(f'{"config":<44}{"gpt_nb tok/s":>14}{"transformers":>14}{"ratio":>8}{"MFU":>8}')
    for vocab in args.vocab_sizes:
        torch.manual_seed(0)
        cfg = GPTConfig.from_preset(args.preset, vocab_size=vocab, context_length=args.context_length)
        ours, theirs = make_models(cfg)
        B, T = args.batch_size, args.context_length
        x, y = torch.randint(0, vocab, (B, T)), torch.randint(0, vocab, (B, T))
        [opt] = configure_optimizer(ours.train(), 1e-4)

        def ours_step():
            with autocast(torch.device('cpu'), 'fp32'):
                _, loss = ours(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        [hf_opt] = configure_optimizer(theirs.train(), 1e-4)  # the same optimiser, so the ratio compares the models

        def theirs_step():
            theirs(x, labels=y).loss.backward()
            torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
            hf_opt.step()
            hf_opt.zero_grad(set_to_none=True)

        t_ours, t_theirs = (time_steps(f, args.warmup, args.steps) for f in (ours_step, theirs_step))
        mfu = ours.flops_per_token(T) * B * T / t_ours / peak
        name = f'{args.preset} (vocab {vocab:,}), batch {B}x{T}'
        print(f'{name:<44}{B * T / t_ours:>14,.0f}{B * T / t_theirs:>14,.0f}{t_theirs / t_ours:>7.2f}x{mfu:>7.1%}')
        if args.nanogpt:
            against_nanogpt(args, cfg, x, y)


def load_nanogpt(path: str):
    "nanoGPT's model.py as a module, imported from the user's checkout (a directory holding model.py, or the file)."
    file = Path(path).expanduser()
    file = file / 'model.py' if file.is_dir() else file
    if not file.is_file():
        sys.exit(f'--nanogpt: no model.py at {file}')
    spec = importlib.util.spec_from_file_location('nanogpt_model', file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_NANOGPT_NAMES = [
    (r'^embed\.tok\.', 'transformer.wte.'),
    (r'^embed\.pos\.', 'transformer.wpe.'),
    (r'^ln_f\.', 'transformer.ln_f.'),
    (r'^blocks\.', 'transformer.h.'),
    (r'\.ln(\d)\.', r'.ln_\1.'),
    (r'\.qkv\.', '.c_attn.'),
    (r'\.fc\.', '.c_fc.'),
    (r'\.proj\.', '.c_proj.'),
]


def against_nanogpt(args, cfg: GPTConfig, x, y):
    """Training steps/s of nanoGPT's GPT and gpt_nb's, with GPT-2's tanh GELU and with the exact GELU nanoGPT uses (same
    config otherwise, same weights, batch and plain AdamW), interleaved."""
    nano = load_nanogpt(args.nanogpt)
    with contextlib.redirect_stdout(io.StringIO()):  # nanoGPT prints its parameter count
        theirs = nano.GPT(
            nano.GPTConfig(
                block_size=cfg.context_length,
                vocab_size=cfg.vocab_size,
                n_layer=cfg.n_layer,
                n_head=cfg.n_head,
                n_embd=cfg.d_model,
                dropout=0.0,
                bias=True,
            )
        )
    models = {}
    for mlp in ('gelu', 'gelu_exact'):
        torch.manual_seed(0)
        models[f'gpt_nb {mlp}'] = GPT(dataclasses.replace(cfg, mlp=mlp))
    sd = {}
    for name, p in models['gpt_nb gelu'].state_dict().items():
        for a, b in _NANOGPT_NAMES:
            name = re.sub(a, b, name)
        sd[name] = p
    theirs.load_state_dict({**sd, 'lm_head.weight': sd['transformer.wte.weight']})  # nanoGPT ties the other way round
    models['nanoGPT'] = theirs
    steps = {}
    for who, model in models.items():
        opt = torch.optim.AdamW(model.train().parameters(), lr=1e-4)

        def step(model=model, opt=opt):
            model(x, y)[1].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        steps[who] = step
    times = {who: [] for who in steps}
    order = list(steps)
    for r in range(args.warmup + args.rounds):
        for who in order[r % 3 :] + order[: r % 3]:  # rotate: no model always runs first
            t = time.perf_counter()
            steps[who]()
            times[who].append(time.perf_counter() - t)
    median = lambda v: sorted(v)[len(v) // 2]
    kept = {who: t[args.warmup :] for who, t in times.items()}
    print(
        f'  vs nanoGPT model.py ({args.rounds} interleaved rounds, plain AdamW, no clipping): nanoGPT {1 / median(kept["nanoGPT"]):.2f} steps/s'
    )
    for who in ('gpt_nb gelu', 'gpt_nb gelu_exact'):
        ratio = median([n / o for o, n in zip(kept[who], kept['nanoGPT'])])  # per round: >1 means gpt_nb is faster
        print(
            f'    {who:<18} {1 / median(kept[who]):.2f} steps/s, ratio {ratio:.3f}x'
            + ('  (GPT-2\'s tanh GELU)' if who.endswith(' gelu') else '  (exact GELU, as nanoGPT: equal config)')
        )


def quality(args):
    "Train each tokenizer for `--minutes` on the bundled TinyStories excerpt; report validation bits per byte."
    print(
        f'torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()} CPU; {args.minutes:g} minutes of '
        'training per tokenizer; evaluation: all 1,000 bundled validation stories, each followed by <|endoftext|>'
    )
    results = []
    for tok in args.tokenizers:
        run = train(
            data='bundled',
            tokenizer=tok,
            preset=args.preset,
            context_length=args.context_length,
            batch_size=args.batch_size,
            lr=args.lr,
            minutes=args.minutes,
            seed=0,
            out_dir=None,
            progress=False,
            eval_minutes=args.minutes,
            sample_tokens=60,
            device='cpu',
        )
        final = run.history['eval'][-1]
        tokens = run.step * args.batch_size * run.model.config.context_length
        results.append((tok, run.step, tokens, run.seconds, final))
        print(
            f'{tok}: {run.step} steps ({tokens:,} tokens) in {run.seconds:.0f} s -> val loss {final["loss"]:.3f}, '
            f'{final["bits_per_byte"]:.3f} bits/byte\n  sample: Once upon a time{final["sample"]!r}'
        )
    print(
        f'\npreset {args.preset}, context {args.context_length}, batch {args.batch_size}, lr {args.lr:g} '
        '(warmup 10% of the budget, cosine decay to 0), AdamW wd 0.1, grad clip 1.0'
    )
    print(f'{"tokenizer":<12}{"steps":>8}{"tokens":>12}{"train s":>9}{"val loss":>10}{"bits/byte":>11}')
    for tok, steps, tokens, seconds, final in results:
        print(f'{tok:<12}{steps:>8,}{tokens:>12,}{seconds:>9.0f}{final["loss"]:>10.3f}{final["bits_per_byte"]:>11.3f}')


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='what', required=True)
    t = sub.add_parser('throughput', help='training-step tokens/s and MFU against transformers')
    t.add_argument('--preset', default='tiny')
    t.add_argument('--context-length', type=int, default=128)
    t.add_argument('--batch-size', type=int, default=4)
    t.add_argument('--vocab-sizes', type=int, nargs='+', default=[50257, 4096])
    t.add_argument('--steps', type=int, default=5)
    t.add_argument('--warmup', type=int, default=2)
    t.add_argument('--nanogpt', metavar='PATH', help="also time nanoGPT's model.py from this checkout, interleaved")
    t.add_argument('--rounds', type=int, default=20, help='interleaved rounds of the nanoGPT comparison (default 20)')
    q = sub.add_parser('quality', help='validation bits per byte after a fixed training budget')
    q.add_argument('--minutes', type=float, default=10, help='minutes of training per tokenizer (default 10)')
    q.add_argument('--tokenizers', nargs='+', default=['gpt2', 'bpe:4096'])
    q.add_argument('--preset', default='tiny')
    q.add_argument('--context-length', type=int, default=256)
    q.add_argument('--batch-size', type=int, default=8)
    q.add_argument('--lr', type=float, default=3e-3)
    for s in (t, q):
        s.add_argument('--threads', type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    (throughput if args.what == 'throughput' else quality)(args)


if __name__ == '__main__':
    main()
