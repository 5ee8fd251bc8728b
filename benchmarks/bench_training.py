"""Training benchmarks: (1) training-step throughput and MFU against transformers, (2) time to quality.

(1) `throughput`: tokens/s of one optimiser step exactly as `gpt_nb.training.train` takes it (autocast, fused AdamW
    with decay on matrices, gradient clipping) against transformers' GPT2LMHeadModel with the same config, weights,
    batch and optimiser, in the same run, and gpt_nb's model-FLOPs utilisation against a measured matmul peak. The
    timing helpers are those of benchmarks/bench_model.py (the model benchmark), so both report comparable figures.
(2) `quality`: train on the bundled TinyStories excerpt for a wall-clock budget (`train(minutes=...)`, so each run ends
    annealed) and report bits per byte on all 1,000 bundled validation stories (the same text for every tokenizer),
    measured by the project's metric, `gpt_nb.evaluation.validation_bits_per_byte`.

    python benchmarks/bench_training.py throughput   # tiny preset, batch 4x128 (the CPU default), vocab 50,257, 4,096
    python benchmarks/bench_training.py throughput --nanogpt ~/nanoGPT --batch-size 16 --context-length 256 \
        --vocab-sizes 4096 --threads 2

    With `--nanogpt PATH` (a checkout of github.com/karpathy/nanoGPT, or its model.py), throughput also times nanoGPT's
    model.py (imported from PATH at run time; its code is not part of this project) against gpt_nb's GPT: same config,
    weights and batch, plain AdamW for both, training steps interleaved in one process (the order rotated every round,
    `--rounds` rounds), reporting median steps/s of each and the median per-round ratio; twice at equal config, with
    the exact GELU nanoGPT uses and with GPT-2's tanh GELU in both (nanoGPT's MLP given `nn.GELU(approximate='tanh')`).
    python benchmarks/bench_training.py quality --minutes 10          # 10 minutes per tokenizer
    python benchmarks/bench_training.py quality --minutes 0.5 --tokenizers bpe:4096
"""

if __name__ == '__main__':  # run as a script: a Ctrl-C while the libraries below load is one line, exit 130
    from gpt_nb.commands import answer_ctrl_c_at_start

    answer_ctrl_c_at_start(__file__.rsplit('/', 1)[-1])

import contextlib, copy, dataclasses, importlib.util, io, math, platform, re, sys, time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import (  # the benchmarks' shared helpers
    add_bench_options,
    apply_bench_options,
    bench_parser,
    benchmark_command,
    check_settings,
    cpu_name,
    finished,
    make_models,
    matmul_peak_flops,
    run_benchmark,
    time_steps,
)

from gpt_nb.config import PRESETS, GPTConfig, check_choice, check_positive, check_range
from gpt_nb.model import GPT
from gpt_nb.evaluation import autocast, validation_bits_per_byte
from gpt_nb.optim import configure_optimizer
from gpt_nb.train_config import TrainConfig
from gpt_nb.training import train


def throughput(args, configs: list[GPTConfig]):
    "Training-step tokens/s of gpt_nb (as train() steps) and transformers, for each model (vocabulary size)."
    peak = matmul_peak_flops()
    print(
        f'torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()}; '
        f'measured fp32 matmul peak {peak / 1e9:.1f} GFLOP/s'
    )
    print(f'{"config":<44}{"gpt_nb tok/s":>14}{"transformers":>14}{"ratio":>8}{"MFU":>8}')
    for config in configs:
        torch.manual_seed(args.seed)
        vocab = config.vocab_size
        ours, theirs = make_models(config)
        batch, context = args.batch_size, args.context_length
        tokens = batch * context
        inputs, targets = torch.randint(0, vocab, (batch, context)), torch.randint(0, vocab, (batch, context))
        [our_optimizer] = configure_optimizer(ours.train(), 1e-4)

        def our_step():
            with autocast(torch.device('cpu'), 'fp32'):
                _, loss = ours(inputs, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
            our_optimizer.step()
            our_optimizer.zero_grad(set_to_none=True)

        # the same optimiser, so that the ratio compares the models
        [their_optimizer] = configure_optimizer(theirs.train(), 1e-4)

        def their_step():
            theirs(inputs, labels=targets).loss.backward()
            torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
            their_optimizer.step()
            their_optimizer.zero_grad(set_to_none=True)

        our_seconds, their_seconds = (time_steps(step, args.warmup, args.steps) for step in (our_step, their_step))
        mfu = ours.flops_per_token(context) * tokens / our_seconds / peak
        name = f'{args.preset} (vocab {vocab:,}), batch {batch}x{context}'
        print(
            f'{name:<44}{tokens / our_seconds:>14,.0f}{tokens / their_seconds:>14,.0f}'
            f'{their_seconds / our_seconds:>7.2f}x{mfu:>7.1%}'
        )
        if args.nanogpt:
            against_nanogpt(args, config, inputs, targets)


def nanogpt_file(path: str) -> Path:
    "nanoGPT's model.py in the user's checkout (a directory holding model.py, or the file), which may not exist."
    file = Path(path).expanduser()
    return file / 'model.py' if file.is_dir() else file


def load_nanogpt(path: str):
    "nanoGPT's model.py as a module, imported from the user's checkout (a directory holding model.py, or the file)."
    file = nanogpt_file(path)
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


def against_nanogpt(args, config: GPTConfig, inputs, targets):
    """Training steps/s of nanoGPT's GPT and gpt_nb's, with GPT-2's tanh GELU and with the exact GELU nanoGPT uses (same
    config otherwise, same weights, batch and plain AdamW), interleaved."""
    nano = load_nanogpt(args.nanogpt)
    with contextlib.redirect_stdout(io.StringIO()):  # nanoGPT prints its parameter count
        theirs = nano.GPT(
            nano.GPTConfig(
                block_size=config.context_length,
                vocab_size=config.vocab_size,
                n_layer=config.n_layer,
                n_head=config.n_head,
                n_embd=config.d_model,
                dropout=0.0,
                bias=True,
            )
        )
    models = {}
    for mlp in ('gelu', 'gelu_exact'):
        torch.manual_seed(0)
        models[f'gpt_nb {mlp}'] = GPT(dataclasses.replace(config, mlp=mlp))
    state = {}
    for name, tensor in models['gpt_nb gelu'].state_dict().items():
        for pattern, replacement in _NANOGPT_NAMES:
            name = re.sub(pattern, replacement, name)
        state[name] = tensor
    # nanoGPT ties the embedding and the head the other way round
    theirs.load_state_dict({**state, 'lm_head.weight': state['transformer.wte.weight']})
    models['nanoGPT'] = theirs
    theirs_tanh = copy.deepcopy(theirs)
    for block in theirs_tanh.transformer.h:  # nanoGPT's MLP with GPT-2's own tanh GELU: equal config to gpt_nb's 'gelu'
        block.mlp.gelu = nn.GELU(approximate='tanh')
    models['nanoGPT tanh'] = theirs_tanh
    steps = {}
    for who, model in models.items():
        optimizer = torch.optim.AdamW(model.train().parameters(), lr=1e-4)

        def step(model=model, optimizer=optimizer):
            model(inputs, targets)[1].backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        steps[who] = step
    times = {who: [] for who in steps}
    order = list(steps)
    for round_number in range(args.warmup + args.rounds):
        first = round_number % len(order)
        for who in order[first:] + order[:first]:  # rotate: no model always runs first
            start = time.perf_counter()
            steps[who]()
            times[who].append(time.perf_counter() - start)
    kept = {who: seconds[args.warmup :] for who, seconds in times.items()}
    print(
        f'  vs nanoGPT model.py ({args.rounds} interleaved rounds, plain AdamW, no clipping): '
        f'nanoGPT {1 / median(kept["nanoGPT"]):.2f} steps/s'
    )
    peers = [  # gpt_nb's model, the nanoGPT it is compared with, and what the pair shares
        ('gpt_nb gelu_exact', 'nanoGPT', 'exact GELU, nanoGPT as it is: equal config'),
        ('gpt_nb gelu', 'nanoGPT tanh', "GPT-2's tanh GELU in both: equal config"),
        ('gpt_nb gelu', 'nanoGPT', "gpt_nb with GPT-2's tanh GELU, nanoGPT with the exact one"),
    ]
    print(f'    nanoGPT with the tanh GELU: {1 / median(kept["nanoGPT tanh"]):.2f} steps/s')
    for ours_name, theirs_name, what in peers:
        # per round: >1 means gpt_nb is faster
        ratio = median([nano / ours for ours, nano in zip(kept[ours_name], kept[theirs_name])])
        print(f'    {ours_name:<18} {1 / median(kept[ours_name]):.2f} steps/s, {ratio:.3f}x {theirs_name}  ({what})')


def median(values: list) -> float:
    return sorted(values)[len(values) // 2]


def quality_settings(args) -> list[TrainConfig]:
    "The training run of each tokenizer of `--tokenizers`, checked as gpt-nb-train-tiny-stories checks its flags."
    return [
        TrainConfig(
            data='bundled',
            tokenizer=tokenizer,
            preset=args.preset,
            context_length=args.context_length,
            batch_size=args.batch_size,
            lr=args.lr,
            minutes=args.minutes,
            seed=args.seed,
            out_dir=None,
            progress=False,
            eval_minutes=args.minutes,
            eval_stories=200,  # the training's own evaluation: its last one gives the sample
            sample_tokens=60,
            device='cpu',
        )
        for tokenizer in args.tokenizers
    ]


def quality(args, runs: list[TrainConfig]):
    "Train each tokenizer for `--minutes` on the bundled TinyStories excerpt; report validation bits per byte."
    print(
        f'torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()} CPU; {args.minutes:g} '
        'minutes of training per tokenizer; evaluation: all 1,000 bundled validation stories, each followed by '
        '<|endoftext|> (validation_bits_per_byte)'
    )
    results = []
    for run_settings in runs:
        tokenizer = run_settings.tokenizer
        run = finished(train(run_settings))
        bits_per_byte = validation_bits_per_byte(run.model, run.tokenizer)
        tokens = run.step * args.batch_size * run.model.config.context_length
        results.append((tokenizer, run.step, tokens, run.seconds, bits_per_byte))
        print(
            f'{tokenizer}: {run.step} steps ({tokens:,} tokens) in {run.seconds:.0f} s -> {bits_per_byte:.3f} '
            f'bits/byte\n  sample: Once upon a time{run.history["eval"][-1]["sample"]!r}'
        )
    settings = run.config  # the last run's, the device's recipe filled in: the same for every tokenizer
    print(
        f'\npreset {args.preset}, context {args.context_length}, batch {args.batch_size}, lr {args.lr:g} '
        f'(warmup 10% of the budget, cosine decay to 0), {settings.optimizer} '
        f'(weight decay {settings.weight_decay:g}), grad clip {settings.grad_clip:g}'
    )
    print(f'{"tokenizer":<12}{"steps":>8}{"tokens":>12}{"train s":>9}{"bits/byte":>11}')
    for tokenizer, steps, tokens, seconds, bits_per_byte in results:
        print(f'{tokenizer:<12}{steps:>8,}{tokens:>12,}{seconds:>9.0f}{bits_per_byte:>11.3f}')


@benchmark_command(__file__)
def main(argv=None) -> int:
    parser = bench_parser(__file__, __doc__)
    benchmarks = parser.add_subparsers(dest='what', required=True)
    speed = benchmarks.add_parser('throughput', help='training-step tokens/s and MFU against transformers')
    speed.add_argument('--preset', default='tiny')
    speed.add_argument('--context-length', type=int, default=128)
    speed.add_argument('--batch-size', type=int, default=4)
    speed.add_argument('--vocab-sizes', type=int, nargs='+', default=[50257, 4096])
    speed.add_argument('--steps', type=int, default=5)
    speed.add_argument('--warmup', type=int, default=2)
    speed.add_argument('--nanogpt', metavar='PATH', help="also time nanoGPT's model.py from this checkout, interleaved")
    speed.add_argument(
        '--rounds', type=int, default=20, help='interleaved rounds of the nanoGPT comparison (default 20)'
    )
    add_bench_options(speed, seed=0, seed_help='seed of the weights and the batch')
    quality_parser = benchmarks.add_parser('quality', help='validation bits per byte after a fixed training budget')
    quality_parser.add_argument('--tokenizers', nargs='+', default=['gpt2', 'bpe:4096'])
    quality_parser.add_argument('--preset', default='tiny')
    quality_parser.add_argument('--context-length', type=int, default=256)
    quality_parser.add_argument('--batch-size', type=int, default=8)
    quality_parser.add_argument('--lr', type=float, default=3e-3)
    add_bench_options(
        quality_parser,
        seed=0,
        seed_help='seed of the weights and the batches',
        minutes=10.0,
        minutes_help='minutes of training per tokenizer',
    )
    args = parser.parse_args(argv)
    if args.what == 'throughput':
        configs = check_settings(speed, lambda: throughput_settings(args), {'vocab_size': '--vocab-sizes'})
        if args.nanogpt and not nanogpt_file(args.nanogpt).is_file():
            speed.error(f'--nanogpt {args.nanogpt!r}: no model.py at {nanogpt_file(args.nanogpt)}')
        apply_bench_options(speed, args)
        return run_benchmark(speed, lambda: throughput(args, configs))
    runs = check_settings(
        quality_parser, lambda: quality_settings(args), {'tokenizer': '--tokenizers', 'eval_minutes': '--minutes'}
    )
    apply_bench_options(quality_parser, args)
    return run_benchmark(quality_parser, lambda: quality(args, runs))


def throughput_settings(args) -> list[GPTConfig]:
    "The model of each vocabulary size of `--vocab-sizes`, the other flags checked."
    check_choice('preset', args.preset, PRESETS)
    for name in ('batch_size', 'steps', 'rounds'):
        check_positive(name, getattr(args, name))
    check_range('warmup', args.warmup, 0, math.inf)
    for vocab in args.vocab_sizes:
        check_positive('vocab_sizes', vocab)
    return [
        GPTConfig.from_preset(args.preset, vocab_size=vocab, context_length=args.context_length)
        for vocab in args.vocab_sizes
    ]


if __name__ == '__main__':
    sys.exit(main())
