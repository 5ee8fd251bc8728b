"""Training-step and forward-pass throughput of gpt_nb's GPT against transformers' GPT2LMHeadModel.

Both models get the same config, the same batch and the same AdamW, in the same run; the script prints
tokens/s for each, their ratio, and gpt_nb's model-FLOPs utilisation (MFU) against a matmul peak it measures.

    python benchmarks/bench_model.py                       # d_model 384, 6 layers, context 256, vocab 4096
    python benchmarks/bench_model.py --d-model 768 --n-layer 12 --vocab-size 50257 --batch-size 4
"""

import argparse, os, platform, tempfile, time

import torch

from gpt_nb.config import GPTConfig
from gpt_nb.huggingface import save_pretrained
from gpt_nb.model import GPT


def cpu_name() -> str:
    "The CPU's model name where Linux tells it, else the machine type."
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            return next(line.split(':', 1)[1].strip() for line in cpuinfo if line.startswith('model name'))
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
    left, right = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        left @ right
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        left @ right
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def time_steps(step, warmup: int, steps: int) -> float:
    "Median seconds of `step()` over `steps` runs after `warmup` runs."
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def make_models(config: GPTConfig):
    "A gpt_nb GPT and a transformers GPT2LMHeadModel with the same architecture and weights."
    # here, not at the top: the other benchmarks import this module's helpers without needing transformers
    from transformers import GPT2LMHeadModel

    ours = GPT(config)
    with tempfile.TemporaryDirectory() as folder:
        save_pretrained(ours, folder)
        theirs = GPT2LMHeadModel.from_pretrained(folder, attn_implementation='sdpa')
    return ours, theirs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--d-model', type=int, default=384)
    parser.add_argument('--n-layer', type=int, default=6)
    parser.add_argument('--n-head', type=int, default=6)
    parser.add_argument('--context-length', type=int, default=256)
    parser.add_argument('--vocab-size', type=int, default=4096)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=args.vocab_size,
        context_length=args.context_length,
        n_layer=args.n_layer,
        n_head=args.n_head,
        d_model=args.d_model,
    )
    ours, theirs = make_models(config)
    batch, context = args.batch_size, args.context_length
    inputs = torch.randint(0, config.vocab_size, (batch, context))
    targets = torch.randint(0, config.vocab_size, (batch, context))

    def train_step(model, loss_of):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)

        def step():
            loss = loss_of(model)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    our_train_step = train_step(ours.train(), lambda model: model(inputs, targets)[1])
    # transformers shifts the labels itself
    their_train_step = train_step(theirs.train(), lambda model: model(inputs, labels=targets).loss)
    peak = matmul_peak_flops()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads; config {config}; batch {batch}x{context}')
    print(f'measured fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s')
    rows = []
    tokens = batch * context
    for what, steps in (
        ('train step (fwd+bwd+AdamW)', (our_train_step, their_train_step)),
        ('forward (inference)', (lambda: ours.eval()(inputs), lambda: theirs.eval()(inputs))),
    ):
        with torch.inference_mode(what.startswith('forward')):
            our_seconds, their_seconds = (time_steps(step, args.warmup, args.steps) for step in steps)
        rows.append((what, tokens / our_seconds, tokens / their_seconds))
    flops_per_token = ours.flops_per_token(context)
    for what, our_rate, their_rate in rows:
        # a forward pass is a third of forward + backward
        flops = flops_per_token if what.startswith('train') else flops_per_token / 3
        print(
            f'{what:28s} gpt_nb {our_rate:9.0f} tok/s | transformers {their_rate:9.0f} tok/s | '
            f'ratio {our_rate / their_rate:.2f}x | gpt_nb MFU {our_rate * flops / peak:.1%}'
        )


if __name__ == '__main__':
    main()
