"""Training-step and forward-pass throughput of gpt_nb's GPT against transformers' GPT2LMHeadModel.

Both models get the same config, the same batch and the same AdamW, in the same run; the script prints
tokens/s for each, their ratio, and gpt_nb's model-FLOPs utilisation (MFU) against a matmul peak it measures.

    python benchmarks/bench_model.py                       # d_model 384, 6 layers, context 256, vocab 4096
    python benchmarks/bench_model.py --d-model 768 --n-layer 12 --vocab-size 50257 --batch-size 4
"""

import argparse, os, platform, time

import torch

from gpt_nb.config import GPTConfig

from gpt_nb.huggingface import save_pretrained
from gpt_nb.model import GPT


def cpu_name() -> str:
    "The CPU's model name where Linux tells it, else the machine type."
    try:
        return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_line() -> str:
    "torch's version and threads, the CPU, its logical cores and the OS: the line every figure is reported beside."
    return (
        f'torch {torch.__version__}, {torch.get_num_threads()} threads; {cpu_name()}, {os.cpu_count()} logical CPUs, '
        f'{platform.system()} {platform.machine()}'
    )


def matmul_peak_flops(n: int = 2048, repeats: int = 10) -> float:
    "Best observed FLOP/s of an fp32 (n, n) @ (n, n) matmul on this machine, with the current thread count."
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def time_steps(step, warmup: int, steps: int) -> float:
    "Median seconds of `step()` over `steps` runs after `warmup` runs."
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def make_models(cfg: GPTConfig):
    "A gpt_nb GPT and a transformers GPT2LMHeadModel with the same architecture and weights."
    from transformers import GPT2LMHeadModel
    import tempfile

    ours = GPT(cfg)
    with tempfile.TemporaryDirectory() as d:
        save_pretrained(ours, d)
        theirs = GPT2LMHeadModel.from_pretrained(d, attn_implementation='sdpa')
    return ours, theirs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--d-model', type=int, default=384)
    p.add_argument('--n-layer', type=int, default=6)
    p.add_argument('--n-head', type=int, default=6)
    p.add_argument('--context-length', type=int, default=256)
    p.add_argument('--vocab-size', type=int, default=4096)
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--threads', type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = GPTConfig(
        vocab_size=args.vocab_size,
        context_length=args.context_length,
        n_layer=args.n_layer,
        n_head=args.n_head,
        d_model=args.d_model,
    )
    ours, theirs = make_models(cfg)
    B, T = args.batch_size, args.context_length
    x = torch.randint(0, cfg.vocab_size, (B, T))
    y = torch.randint(0, cfg.vocab_size, (B, T))

    def train_step(model, loss_of):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)

        def step():
            loss = loss_of(model)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        return step

    ours_train = train_step(ours.train(), lambda m: m(x, y)[1])
    theirs_train = train_step(theirs.train(), lambda m: m(x, labels=y).loss)  # HF shifts labels itself
    peak = matmul_peak_flops()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads; config {cfg}; batch {B}x{T}')
    print(f'measured fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s')
    rows = []
    for what, fns in (
        ('train step (fwd+bwd+AdamW)', (ours_train, theirs_train)),
        ('forward (inference)', (lambda: ours.eval()(x), lambda: theirs.eval()(x))),
    ):
        with torch.inference_mode(what.startswith('forward')):
            t_ours, t_theirs = (time_steps(f, args.warmup, args.steps) for f in fns)
        rows.append((what, B * T / t_ours, B * T / t_theirs))
    flops = ours.flops_per_token(T)
    for what, ours_tps, theirs_tps in rows:
        f = flops if what.startswith('train') else flops / 3  # forward is a third of fwd+bwd
        print(
            f'{what:28s} gpt_nb {ours_tps:9.0f} tok/s | transformers {theirs_tps:9.0f} tok/s | '
            f'ratio {ours_tps / theirs_tps:.2f}x | gpt_nb MFU {ours_tps * f / peak:.1%}'
        )


if __name__ == '__main__':
    main()
