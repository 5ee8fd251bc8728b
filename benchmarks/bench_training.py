"""Training benchmarks: (1) training-step throughput and MFU against transformers, (2) time to quality.

(1) `throughput`: tokens/s of one optimiser step exactly as `gpt_nb.training.train` takes it (autocast, fused AdamW
    with decay on matrices, gradient clipping) against transformers' GPT2LMHeadModel with the same config, weights,
    batch and optimiser, in the same run, and gpt_nb's model-FLOPs utilisation against a measured matmul peak. The timing helpers
    are those of benchmarks/bench_model.py (the model benchmark), so both report comparable figures.
(2) `quality`: train on ../shared/tinystories/train.txt for a fixed wall-clock budget and report bits per byte on
    the first --eval-bytes of ../shared/tinystories/valid.txt (the same text for every tokenizer), for each tokenizer.

    python benchmarks/bench_training.py throughput                    # tiny preset, batch 4x128 (the CPU default), vocab 50,257 and 4,096
    python benchmarks/bench_training.py quality --budget 600          # 10 minutes per tokenizer
    python benchmarks/bench_training.py quality --budget 30 --tokenizers bpe:4096
"""
import argparse, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import make_models, matmul_peak_flops, time_steps   # noqa: E402

from gpt_nb.model import GPTConfig   # noqa: E402
from gpt_nb.training import autocast, configure_optimizer, train   # noqa: E402

SHARED = Path(__file__).resolve().parents[1] / '..' / 'shared' / 'tinystories'


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
        opt = configure_optimizer(ours.train(), 1e-4)
        def ours_step():
            with autocast(torch.device('cpu'), 'fp32'): _, loss = ours(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
            opt.step(); opt.zero_grad(set_to_none=True)
        hf_opt = configure_optimizer(theirs.train(), 1e-4)   # the same optimiser, so the ratio compares the models
        def theirs_step():
            theirs(x, labels=y).loss.backward()
            torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
            hf_opt.step(); hf_opt.zero_grad(set_to_none=True)
        t_ours, t_theirs = (time_steps(f, args.warmup, args.steps) for f in (ours_step, theirs_step))
        mfu = ours.flops_per_token(T) * B * T / t_ours / peak
        name = f'{args.preset} (vocab {vocab:,}), batch {B}x{T}'
        print(f'{name:<44}{B * T / t_ours:>14,.0f}{B * T / t_theirs:>14,.0f}{t_theirs / t_ours:>7.2f}x{mfu:>7.1%}')


def steps_for_budget(seconds: float, config: dict, probe_steps: int = 4) -> tuple[int, float]:
    "How many steps of `config` fit in `seconds` of training, from the time of a few probe steps (after one warm-up)."
    times = []
    train(**dict(config, eval_bytes=1), max_steps=1 + probe_steps, eval_interval=10**9, out_dir=None, progress=False,
          sample_prompt='', on_step=lambda step, loss: times.append(time.perf_counter()))
    per_step = (times[-1] - times[0]) / (len(times) - 1)
    return max(1, int(seconds / per_step)), per_step


def quality(args):
    "Train each tokenizer for `--budget` seconds on TinyStories; report validation bits per byte."
    train_txt, valid_txt = SHARED / 'train.txt', SHARED / 'valid.txt'
    if not (train_txt.exists() and valid_txt.exists()):
        sys.exit(f'bench_training: {train_txt} and {valid_txt} are needed for the quality benchmark')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads; budget {args.budget:g} s of training per tokenizer; '
          f'evaluation: the first {args.eval_bytes:,} bytes of {valid_txt.name}')
    results = []
    for tok in args.tokenizers:
        config = dict(preset=args.preset, data=str(train_txt), tokenizer=tok, context_length=args.context_length,
                      batch_size=args.batch_size, lr=args.lr, eval_bytes=args.eval_bytes, seed=0)
        steps, per_step = steps_for_budget(args.budget, config)
        stamps = [time.perf_counter()]
        run = train(**config, max_steps=steps, eval_interval=steps, out_dir=None, progress=False, sample_tokens=60,
                    on_step=lambda step, loss: stamps.append(time.perf_counter()))
        train_s = stamps[-1] - stamps[0]   # from the start (data preparation included) to the last step
        final = run.history['eval'][-1]
        tokens = steps * args.batch_size * args.context_length
        results.append((tok, steps, tokens, train_s, final))
        print(f'{tok}: {steps} steps ({per_step:.2f} s each, {tokens:,} tokens) in {train_s:.0f} s -> val loss {final["loss"]:.3f}, '
              f'{final["bits_per_byte"]:.3f} bits/byte\n  sample: Once upon a time{final["sample"]!r}')
    print(f'\npreset {args.preset}, context {args.context_length}, batch {args.batch_size}, lr {args.lr:g} '
          '(warmup 10% of the steps, cosine decay to 10%), AdamW wd 0.1, grad clip 1.0')
    print(f'{"tokenizer":<12}{"steps":>8}{"tokens":>12}{"train s":>9}{"val loss":>10}{"bits/byte":>11}')
    for tok, steps, tokens, train_s, final in results:
        print(f'{tok:<12}{steps:>8,}{tokens:>12,}{train_s:>9.0f}{final["loss"]:>10.3f}{final["bits_per_byte"]:>11.3f}')


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='what', required=True)
    t = sub.add_parser('throughput', help='training-step tokens/s and MFU against transformers')
    t.add_argument('--preset', default='tiny'); t.add_argument('--context-length', type=int, default=128)
    t.add_argument('--batch-size', type=int, default=4); t.add_argument('--vocab-sizes', type=int, nargs='+', default=[50257, 4096])
    t.add_argument('--steps', type=int, default=5); t.add_argument('--warmup', type=int, default=2)
    q = sub.add_parser('quality', help='validation bits per byte after a fixed training budget')
    q.add_argument('--budget', type=float, default=600, help='seconds of training per tokenizer (default 600)')
    q.add_argument('--tokenizers', nargs='+', default=['gpt2', 'bpe:4096'])
    q.add_argument('--preset', default='tiny'); q.add_argument('--context-length', type=int, default=256)
    q.add_argument('--batch-size', type=int, default=8); q.add_argument('--lr', type=float, default=3e-3)
    q.add_argument('--eval-bytes', type=int, default=128 * 1024, help='bytes of valid.txt to evaluate on (default 128 KiB)')
    for s in (t, q): s.add_argument('--threads', type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    (throughput if args.what == 'throughput' else quality)(args)


if __name__ == '__main__':
    main()
