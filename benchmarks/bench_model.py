"""Training-step and forward-pass throughput of gpt_nb's GPT against transformers' GPT2LMHeadModel.

Both models get the same config, the same batch and the same AdamW, in the same run; the script prints
tokens/s for each, their ratio, and gpt_nb's model-FLOPs utilisation (MFU) against a matmul peak it measures.

    python benchmarks/bench_model.py                       # d_model 384, 6 layers, context 256, vocab 4096
    python benchmarks/bench_model.py --d-model 768 --n-layer 12 --vocab-size 50257 --batch-size 4
"""

if __name__ == '__main__':  # run as a script: a Ctrl-C while the libraries below load is one line, exit 130
    from gpt_nb.commands import answer_ctrl_c_at_start

    answer_ctrl_c_at_start(__file__.rsplit('/', 1)[-1])

import argparse, functools, math, os, platform, sys, tempfile, time
from collections.abc import Callable
from pathlib import Path

import torch

from gpt_nb.cli import (
    check_cache_dir,
    ToolParser,
    add_run_options,
    add_threads_option,
    apply_run_options,
    check_out_dir,
    flag_name,
    run_work,
    settings_from_args,
)
from gpt_nb.commands import run_tool
from gpt_nb.config import GPTConfig, SettingError, check_positive, check_range
from gpt_nb.huggingface import save_pretrained
from gpt_nb.model import GPT
from gpt_nb.tokens import default_cache_dir


# ---------------------------------------------------------------------------------------------------------------------
# What every script in benchmarks/ shares: its command line follows the rules of gpt_nb's tools (gpt_nb.cli): a wrong
# value is one line naming its flag and exit 2 before any work, a failure during the work one line and exit 1, Ctrl-C
# 130, a closed pipe a quiet 0. Then the machine every figure is reported beside, and the timing helpers.
def benchmark_command(script: str):
    """Decorator: `body(argv) -> int` becomes benchmark `script`'s `main(argv=None) -> int`, run as the console scripts
    run (gpt_nb.commands.run_tool): 130 with one line on Ctrl-C, quietly 0 when the reader of stdout goes away."""

    def command(body: Callable[[list[str] | None], int | None]):
        @functools.wraps(body)
        def main(argv: list[str] | None = None) -> int:
            return run_tool(Path(script).name, lambda: body(argv))

        return main

    return command


def bench_parser(script: str, description: str) -> ToolParser:
    "The parser of benchmark `script` (its `__file__`): refusals exit 2 with one line, `description` shown as written."
    return ToolParser(
        prog=Path(script).name, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_bench_options(
    parser: argparse.ArgumentParser,
    *,
    seed: int | None = None,
    seed_help: str = 'random seed',
    device: bool = False,
    threads: int | None = None,
    threads_help: str = '',
    minutes: float | None = None,
    minutes_help: str = 'wall-clock budget of each run, in minutes',
    out_dir: str | None = None,
    out_dir_help: str = 'where the checkpoints go',
    cache_dir: bool = False,
):
    """The options the benchmarks share, those a benchmark has: `--seed` (with `seed`, its default) and `--device` as
    the tools have them, `--threads` (PyTorch's choice unless `threads` is given), `--minutes` (with `minutes`, its
    default), `--out-dir` (with `out_dir`, its default) and `--cache-dir`."""
    if seed is not None:
        add_run_options(parser, seed=seed, seed_help=seed_help, device=device)
    elif threads is None:
        add_threads_option(parser)
    if threads is not None:
        parser.add_argument('--threads', type=int, default=threads, help=f'{threads_help} (default: %(default)s)')
    if minutes is not None:
        parser.add_argument('--minutes', type=float, default=minutes, help=f'{minutes_help} (default: %(default)s)')
    if out_dir is not None:
        parser.add_argument('--out-dir', default=out_dir, help=f'{out_dir_help} (default: %(default)s)')
    if cache_dir:
        parser.add_argument(
            '--cache-dir', default=None, help='token and tokenizer cache (default: $GPT_NB_CACHE or .gpt_nb_cache)'
        )


def check_settings(parser: argparse.ArgumentParser, checks: Callable, flags: dict[str, str] | None = None):
    """What `checks()` returns: gpt_nb.config's checks, or settings dataclasses made; a `SettingError` exits 2 with one
    line naming the flag of its field (`flags` maps a field to its flag where the two differ)."""
    try:
        return checks()
    except SettingError as error:
        refuse_setting(parser, error, flags)


def refuse_setting(parser: argparse.ArgumentParser, error: SettingError, flags: dict[str, str] | None = None):
    "Exit 2 with one line: the flag of the setting `error` names, and why it cannot be used."
    parser.error(f'{(flags or {}).get(error.field, flag_name(error.field))} {error.reason}')


def apply_bench_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> torch.device:
    """Check and apply the shared options of `add_bench_options` that `args` has: `--minutes`, then `--seed`,
    `--threads` and `--device` (gpt_nb.cli.apply_run_options), then the folders, which `--out-dir` creates; call it
    after a benchmark's own checks. The device, the CPU where a benchmark has no `--device`."""
    if hasattr(args, 'minutes'):
        check_settings(parser, lambda: check_positive('minutes', args.minutes, integer=False))
    for name in ('out_dir', 'cache_dir'):
        if getattr(args, name, None) is not None and not getattr(args, name).strip():
            parser.error(f'{flag_name(name)} is empty: name a folder (see --help)')
    run_options = argparse.Namespace(
        seed=getattr(args, 'seed', None), threads=args.threads, device=getattr(args, 'device', 'cpu')
    )
    device = apply_run_options(parser, run_options)
    if hasattr(args, 'cache_dir'):
        check_cache_dir(parser, args.cache_dir or default_cache_dir())
    if hasattr(args, 'out_dir'):
        check_out_dir(parser, args.out_dir)
    return device


def run_benchmark(
    parser: argparse.ArgumentParser, work: Callable[[], int | None], flags: dict[str, str] | None = None
) -> int:
    """Run a benchmark's work after its options were checked, as the tools run theirs (gpt_nb.cli.run_work): its exit
    status; a setting the work finds unusable (a `SettingError`) exits 2 naming its flag, as `check_settings`."""

    def checked_work():
        try:
            return work()
        except SettingError as error:
            refuse_setting(parser, error, flags)

    return run_work(parser.prog, checked_work)


def finished(run):
    "A training or fine-tuning run's result, unless Ctrl-C stopped it (its checkpoints saved): then KeyboardInterrupt."
    if run.status == 'interrupted':
        raise KeyboardInterrupt
    return run


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


@benchmark_command(__file__)
def main(argv=None) -> int:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument('--d-model', type=int, default=384)
    parser.add_argument('--n-layer', type=int, default=6)
    parser.add_argument('--n-head', type=int, default=6)
    parser.add_argument('--context-length', type=int, default=256)
    parser.add_argument('--vocab-size', type=int, default=4096)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    add_bench_options(parser, seed=0, seed_help='seed of the weights and the batch')
    args = parser.parse_args(argv)
    config = settings_from_args(parser, GPTConfig, args)

    def checks():
        for name in ('batch_size', 'steps'):
            check_positive(name, getattr(args, name))
        check_range('warmup', args.warmup, 0, math.inf)

    check_settings(parser, checks)
    apply_bench_options(parser, args)
    return run_benchmark(parser, lambda: compare(config, args))


def compare(config: GPTConfig, args: argparse.Namespace):
    "Time gpt_nb's model and transformers' on the same batch: a training step and a forward pass; print the figures."
    torch.manual_seed(args.seed)
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
    sys.exit(main())
