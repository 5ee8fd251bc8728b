"""Training benchmarks: (1) training-step throughput and MFU against transformers, (2) time to quality.

(1) `throughput`: tokens/s of one optimiser step exactly as `gpt_nb.training.train` takes it (autocast, fused AdamW
    with decay on matrices, gradient clipping) against transformers' GPT2LMHeadModel with the same config, weights,
    batch and optimiser, in the same run, and gpt_nb's model-FLOPs utilisation against a measured matmul peak. The timing helpers
    are those of benchmarks/bench_model.py (the model benchmark), so both report comparable figures.
(2) `quality`: train on the bundled TinyStories excerpt for a wall-clock budget (`train(minutes=...)`, so each run ends
    annealed) and report bits per byte on all 1,000 bundled validation stories (the same text for every tokenizer).

    python benchmarks/bench_training.py throughput                    # tiny preset, batch 4x128 (the CPU default), vocab 50,257 and 4,096
    python benchmarks/bench_training.py quality --minutes 10          # 10 minutes per tokenizer
    python benchmarks/bench_training.py quality --minutes 0.5 --tokenizers bpe:4096
"""
import argparse, platform, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import make_models, matmul_peak_flops, time_steps   # noqa: E402

from gpt_nb.model import GPTConfig   # noqa: E402
from gpt_nb.training import autocast, configure_optimizer, train   # noqa: E402


def throughput(args):
    "Training-step tokens/s of gpt_nb (as train() steps) and transformers, for each vocabulary size."
    peak = matmul_peak_flops()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads; measured fp32 matmul peak {peak / 1e9:.1f} GFLOP/s')
    print(f'{"config":<44}{"gpt_nb tok/s":>14}{"transformers":>14}{"ratio":>8}{"MFU":>8}')
    for vocab in args.vocab_sizes:
        torch.manual_seed(0)
        cfg = GPTConfig.from_preset(args.preset, vocab_size=vocab, context_length=args.context_length)
        ours, theirs = make_models(cfg)
        B, T = args.batch_size, args.context_length
        x, y = torch.randint(0, vocab, (B, T)), torch.randint(0, vocab, (B, T))
        [opt] = configure_optimizer(ours.train(), 1e-4)
        def ours_step():
            with autocast(torch.device('cpu'), 'fp32'): _, loss = ours(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
            opt.step(); opt.zero_grad(set_to_none=True)
        [hf_opt] = configure_optimizer(theirs.train(), 1e-4)   # the same optimiser, so the ratio compares the models
        def theirs_step():
            theirs(x, labels=y).loss.backward()
            torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
            hf_opt.step(); hf_opt.zero_grad(set_to_none=True)
        t_ours, t_theirs = (time_steps(f, args.warmup, args.steps) for f in (ours_step, theirs_step))
        mfu = ours.flops_per_token(T) * B * T / t_ours / peak
        name = f'{args.preset} (vocab {vocab:,}), batch {B}x{T}'
        print(f'{name:<44}{B * T / t_ours:>14,.0f}{B * T / t_theirs:>14,.0f}{t_theirs / t_ours:>7.2f}x{mfu:>7.1%}')


def quality(args):
    "Train each tokenizer for `--minutes` on the bundled TinyStories excerpt; report validation bits per byte."
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()} CPU; {args.minutes:g} minutes of '
          'training per tokenizer; evaluation: all 1,000 bundled validation stories, each followed by <|endoftext|>')
    results = []
    for tok in args.tokenizers:
        run = train(data='bundled', tokenizer=tok, preset=args.preset, context_length=args.context_length,
                    batch_size=args.batch_size, lr=args.lr, minutes=args.minutes, seed=0, out_dir=None, progress=False,
                    eval_minutes=args.minutes, sample_tokens=60, device='cpu')
        final = run.history['eval'][-1]
        tokens = run.step * args.batch_size * run.model.config.context_length
        results.append((tok, run.step, tokens, run.seconds, final))
        print(f'{tok}: {run.step} steps ({tokens:,} tokens) in {run.seconds:.0f} s -> val loss {final["loss"]:.3f}, '
              f'{final["bits_per_byte"]:.3f} bits/byte\n  sample: Once upon a time{final["sample"]!r}')
    print(f'\npreset {args.preset}, context {args.context_length}, batch {args.batch_size}, lr {args.lr:g} '
          '(warmup 10% of the budget, cosine decay to 0), AdamW wd 0.1, grad clip 1.0')
    print(f'{"tokenizer":<12}{"steps":>8}{"tokens":>12}{"train s":>9}{"val loss":>10}{"bits/byte":>11}')
    for tok, steps, tokens, seconds, final in results:
        print(f'{tok:<12}{steps:>8,}{tokens:>12,}{seconds:>9.0f}{final["loss"]:>10.3f}{final["bits_per_byte"]:>11.3f}')


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='what', required=True)
    t = sub.add_parser('throughput', help='training-step tokens/s and MFU against transformers')
    t.add_argument('--preset', default='tiny'); t.add_argument('--context-length', type=int, default=128)
    t.add_argument('--batch-size', type=int, default=4); t.add_argument('--vocab-sizes', type=int, nargs='+', default=[50257, 4096])
    t.add_argument('--steps', type=int, default=5); t.add_argument('--warmup', type=int, default=2)
    q = sub.add_parser('quality', help='validation bits per byte after a fixed training budget')
    q.add_argument('--minutes', type=float, default=10, help='minutes of training per tokenizer (default 10)')
    q.add_argument('--tokenizers', nargs='+', default=['gpt2', 'bpe:4096'])
    q.add_argument('--preset', default='tiny'); q.add_argument('--context-length', type=int, default=256)
    q.add_argument('--batch-size', type=int, default=8); q.add_argument('--lr', type=float, default=3e-3)
    for s in (t, q): s.add_argument('--threads', type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    (throughput if args.what == 'throughput' else quality)(args)


if __name__ == '__main__':
    main()
