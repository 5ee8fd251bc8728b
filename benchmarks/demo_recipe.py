"""The demo's recipe: every try that led to it, and the demo against the previous one, side by side.

    python benchmarks/demo_recipe.py tries                        # every try of the table, a budget each
    python benchmarks/demo_recipe.py tries --tries base bpe2048 --minutes 6 --seeds 1337 1338
    python benchmarks/demo_recipe.py side-by-side                 # the previous demo, then today's, each alone
    python benchmarks/demo_recipe.py side-by-side --demos today   # today's demo alone
    python benchmarks/demo_recipe.py side-by-side --demos today previous today --seeds 1337 1338   # interleaved

`tries` trains each named try of TRIES on the bundled stories for the same wall-clock budget (each run ends
annealed: the schedule follows the time) or, with `--steps`, for a number of steps (the figure then does not depend
on the machine's load: pass the steps the budget gives the try on a quiet machine). It prints the bits per byte of
each, on all 1,000 bundled validation stories, by the project's metric (`validation_bits_per_byte`, which the
training's last evaluation computes), with its steps and seconds, and the machine.

`side-by-side` times the two demos as a learner runs them, one after the other, alone on the machine: the previous
demo (`gpt-nb-train-tiny-stories --epochs 10`, then `gpt-nb-generate-text`) and today's (`make demo`'s commands), and
prints each one's wall time and bits per byte and the ratio of the times (today's against the previous one's mean).
"""

if __name__ == '__main__':  # run as a script: a Ctrl-C while the libraries below load is one line, exit 130
    from gpt_nb.commands import answer_ctrl_c_at_start

    answer_ctrl_c_at_start(__file__.rsplit('/', 1)[-1])

import contextlib, itertools, re, shlex, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import (  # the benchmarks' shared helpers
    add_bench_options,
    apply_bench_options,
    bench_parser,
    benchmark_command,
    check_settings,
    finished,
    machine_line,
    run_benchmark,
)

from recipe_changes import CHANGES, try_architectures  # what a try may change that TrainConfig has no setting for

from gpt_nb.config import check_choice, check_positive, check_range
from gpt_nb.train_config import DEMO_RECIPE
from gpt_nb.training import train

# Each try: the settings it changes from the previous demo's recipe (the CPU recipe of chapter 07: the tiny preset,
# a 4,096-token BPE, context 256, batch 8, Muon 0.02 for the blocks' matrices, AdamW 3e-3 for the rest, decay 0.1,
# 10% warmup then cosine to 0), and why it was tried.
ROPE = dict(architecture='gpt2-rope')
SMALL = ROPE | dict(tokenizer='bpe:2048')
D96 = SMALL | dict(d_model=96)  # the first eight-minute demo
WSD = dict(cooldown=0.4, warmup_fraction=0.02)
SHORT = dict(short_context=128, short_until=0.7)
DEMO_96 = D96 | WSD | SHORT | dict(lr=1e-2)  # the second round's demo
DEMO_128 = DEMO_96 | dict(d_model=128, cooldown=0.6)  # the third round's demo
CONTEXT_512 = dict(context_length=512, batch_size=4)  # the same 2,048 tokens a step
DEMO_512 = DEMO_128 | CONTEXT_512  # the fourth round's demo: DEMO_RECIPE's shape and schedule, random windows
TRIES = {
    'base': ({}, 'the previous recipe, in the budget'),
    'bpe2048': (dict(tokenizer='bpe:2048'), 'a smaller vocabulary: a cheaper output layer, more steps'),
    'rope': (ROPE, "rotary positions, chapter 09's best single change early in a run"),
    'batch4': (dict(batch_size=4), 'more, smaller steps'),
    'batch16': (dict(batch_size=16), 'fewer, larger steps: matrices big enough for two threads'),
    'ctx128': (dict(context_length=128, batch_size=16), 'shorter windows: cheaper attention, same tokens a step'),
    'rope+ctx128': (ROPE | dict(context_length=128, batch_size=16), 'the two changes that helped, together'),
    'rope+bpe2048+d96': (SMALL | dict(d_model=96), 'a narrower model: 0.64M parameters, more steps'),
    'rope+bpe2048+d64': (SMALL | dict(d_model=64), 'narrower still: 0.34M parameters'),
    'rope+bpe2048+d96+ctx128': (SMALL | dict(d_model=96, context_length=128, batch_size=16), 'and shorter windows'),
    # the second round: changes to the eight-minute demo of the first (rotary positions, 2,048 tokens, 96 wide)
    'd96+cosine-warmup.02': (D96 | dict(warmup_fraction=0.02), 'a shorter warmup, the cosine kept'),
    'd96+wsd': (D96 | WSD, 'warmup-stable-decay: the peak held, then a straight line down over the last 40%'),
    'd96+short128': (D96 | SHORT, 'windows of 128 tokens for the first 70% of the run, then 256'),
    'd96+adam6e-3': (D96 | dict(lr=6e-3), "twice AdamW's rate (the embeddings, norms and biases)"),
    'd96+muon.04': (D96 | dict(muon_lr=0.04), "twice Muon's rate (the blocks' matrices)"),
    'd96+3heads': (D96 | dict(n_head=3), 'three heads of 32 instead of four of 24'),
    'd96+wsd+short128': (D96 | WSD | SHORT, 'the schedule and the windows together'),
    'd96+wsd+short128+adam6e-3': (D96 | WSD | SHORT | dict(lr=6e-3), "and AdamW's rate doubled"),
    'd96+wsd+short128+adam1e-2': (D96 | WSD | SHORT | dict(lr=1e-2), "AdamW's rate higher still"),
    'd96+wsd+short128+adam6e-3+muon.04+3heads': (
        D96 | WSD | SHORT | dict(lr=6e-3, muon_lr=0.04, n_head=3),
        'every change that helped',
    ),
    'gpt2+bpe2048+d96+wsd+short128+adam6e-3': (
        dict(tokenizer='bpe:2048', d_model=96) | WSD | SHORT | dict(lr=6e-3),
        "GPT-2's learned positions instead of rotary ones: transformers can run the model",
    ),
    # the third round: the second round's demo (96 wide), decayed more, wider or deeper, at full length
    'demo+wd.2': (DEMO_96 | dict(weight_decay=0.2), 'twice the weight decay: train and validation loss far apart'),
    'demo+d128': (DEMO_96 | dict(d_model=128), '128 wide (the tiny preset): 1.06M parameters, slower steps'),
    'demo+d128x3': (DEMO_96 | dict(d_model=128, n_layer=3), '128 wide, three layers'),
    'demo+d128x6': (DEMO_96 | dict(d_model=128, n_layer=6), '128 wide, six layers'),
    'demo+d160': (DEMO_96 | dict(d_model=160), '160 wide: 1.57M parameters'),
    'demo+d128+cooldown.6': (DEMO_128, "128 wide, decay over the last 60%: the third round's demo"),
    'demo+d128+muon.03': (DEMO_96 | dict(d_model=128, muon_lr=0.03), "128 wide, Muon's rate 0.03"),
    # the fourth round: the third round's demo (128 wide) with a longer context, at full length
    'd128+ctx512': (DEMO_512, 'a context of 512, batch 4: fewer stories cut at a window edge'),
    'd128+ctx1024': (DEMO_128 | dict(context_length=1024, batch_size=2), 'a context of 1,024, batch 2'),
    'd128+ctx512+short.8': (DEMO_512 | dict(short_until=0.8), 'and short windows for 80% of the run'),
    'd128+ctx512+muon.015': (DEMO_512 | dict(muon_lr=0.015), "and Muon's rate 0.015"),
    'd128+ctx512+adam1.5e-2': (DEMO_512 | dict(lr=1.5e-2), "and AdamW's rate 1.5e-2"),
    'd128+ctx512+cooldown.7': (DEMO_512 | dict(cooldown=0.7), 'and the decay over the last 70%'),
    # the fifth round: the demo (context 512) with fewer or more windows a step
    'd128+ctx512+batch2': (DEMO_512 | dict(batch_size=2), 'batch 2: 1,024 tokens a step, more steps'),
    'd128+ctx512+batch3': (DEMO_512 | dict(batch_size=3), 'batch 3: 1,536 tokens a step'),
    'd128+ctx512+batch6': (DEMO_512 | dict(batch_size=6), 'batch 6: 3,072 tokens a step, fewer steps'),
    'd128+ctx512+batch8': (DEMO_512 | dict(batch_size=8), 'batch 8: 4,096 tokens a step'),
    # the sixth round: regularisation for the repeated passes, and chapter 09's changes one at a time, at 2,050 steps
    'd128+ctx512+rdrop.05': (DEMO_512 | dict(dropout=0.05, changes=('residual_dropout_only',)), 'stream dropout 0.05'),
    'd128+ctx512+rdrop.1': (DEMO_512 | dict(dropout=0.1, changes=('residual_dropout_only',)), 'stream dropout 0.1'),
    'd128+ctx512+wd.05': (DEMO_512 | dict(weight_decay=0.05), 'half the weight decay'),
    'd128+ctx512+relu2': (DEMO_512 | dict(architecture='gpt2-rope+relu2'), "relu(x)² instead of GELU"),
    'd128+ctx512+qknorm': (DEMO_512 | dict(architecture='gpt2-rope+qk_norm'), 'queries and keys RMS-normalised'),
    'd128+ctx512+untied': (DEMO_512 | dict(architecture='gpt2-rope+untied'), 'an output layer of its own'),
    'd128+ctx512+heads2': (DEMO_512 | dict(n_head=2), 'two heads of 64 instead of four of 32'),
    'd128+ctx512+bpe4096': (DEMO_512 | dict(tokenizer='bpe:4096'), 'a 4,096-token BPE: more text a step'),
    'd128+ctx512+noclip': (DEMO_512 | dict(grad_clip=0.0), 'no clipping of the gradient norm'),
    'd128+ctx512+qknorm+muon.03': (
        DEMO_512 | dict(architecture='gpt2-rope+qk_norm', muon_lr=0.03),
        "QK-norm and Muon's rate 0.03: normalised queries and keys may take a larger rate",
    ),
    'd128+ctx512+qknorm+adam1.5e-2': (
        DEMO_512 | dict(architecture='gpt2-rope+qk_norm', lr=1.5e-2),
        "QK-norm and AdamW's rate 1.5e-2",
    ),
    'd128+ctx512+qknorm+muon.03+adam1.5e-2': (
        DEMO_512 | dict(architecture='gpt2-rope+qk_norm', muon_lr=0.03, lr=1.5e-2),
        'QK-norm and both larger rates',
    ),
    'd128+ctx512+qknorm+muon.03+adam2e-2': (
        DEMO_512 | dict(architecture='gpt2-rope+qk_norm', muon_lr=0.03, lr=2e-2),
        "QK-norm, Muon's rate 0.03 and AdamW's 2e-2",
    ),
    # the seventh round: what modded-nanogpt and the literature on schedules do that the demo does not, at 2,050 steps
    'd128+ctx512+zeroproj': (DEMO_512 | dict(changes=('zero_projections',)), 'output projections start at zero'),
    'd128+ctx512+softcap15': (DEMO_512 | dict(changes=('logit_softcap',)), 'logits soft-capped at 15'),
    'd128+ctx512+sqrtcool': (DEMO_512 | dict(changes=('sqrt_cooldown',)), 'the cooldown along 1 - sqrt'),
    'd128+ctx512+betas.8': (DEMO_512 | dict(betas=(0.8, 0.95)), "AdamW's first beta 0.8 instead of 0.9"),
    'd128+ctx512+nowarmup': (DEMO_512 | dict(warmup_fraction=0.0), 'no warmup: the peak rate from the first step'),
    'd128+ctx512+nowarmup+qknorm+adam1.5e-2': (
        DEMO_512 | dict(warmup_fraction=0.0, architecture='gpt2-rope+qk_norm', lr=1.5e-2),
        "no warmup, with the sixth round's lead (QK-norm and AdamW's rate 1.5e-2)",
    ),
    # the eighth round: the previous token in the stream, undecayed embedding, input noise, heads, beta2, decay, BPE
    'd128+ctx512+smear': (DEMO_512 | dict(changes=('smear',)), "the previous token's embedding added, learned weights"),
    'd128+ctx512+nowd-embed': (DEMO_512 | dict(changes=('undecayed_embedding',)), 'the embedding not decayed'),
    'd128+ctx512+noise.05': (DEMO_512 | dict(changes=('noisy_inputs',)), '5% of input tokens replaced at random'),
    'd128+ctx512+heads8': (DEMO_512 | dict(n_head=8), 'eight heads of 16 instead of four of 32'),
    'd128+ctx512+beta2.99': (DEMO_512 | dict(betas=(0.9, 0.99)), "AdamW's second beta 0.99 instead of 0.95"),
    'd128+ctx512+cooldown.5': (DEMO_512 | dict(cooldown=0.5), 'the decay over the last 50% instead of 60%'),
    'd128+ctx512+ns3': (DEMO_512 | dict(changes=('fewer_newton_schulz_steps',)), "Muon's 3 Newton-Schulz steps, not 5"),
    'd128+ctx512+bpe1024': (DEMO_512 | dict(tokenizer='bpe:1024'), 'a 1,024-token BPE: fewer weights to memorise with'),
    # the ninth round: value residuals, windows without replacement, the embeddings in every block, Muon's momentum
    'd128+ctx512+vres': (
        DEMO_512 | dict(changes=('value_residual',)),
        "the first layer's values mixed into every later layer's",
    ),
    'd128+ctx512+passes': (DEMO_512 | dict(windows='passes'), 'every window once a pass, instead of random starts'),
    'd128+ctx512+x0': (
        DEMO_512 | dict(changes=('embedding_shortcut',)),
        "the embeddings mixed into every later block's input",
    ),
    'd128+ctx512+momwarm': (
        DEMO_512 | dict(changes=('muon_momentum_warmup',)),
        "Muon's momentum from 0.85 to 0.95 over 300 steps",
    ),
    'd128+ctx512+passes+vres': (
        DEMO_512 | dict(windows='passes', changes=('value_residual',)),
        'every window once a pass, and value residuals',
    ),
}
# The demos as `make demo` ran them: the previous one (ten epochs of the CPU recipe) and today's (DEMO_RECIPE).
PREVIOUS_DEMO = ['--epochs', '10']
DEMO = [part for name, value in DEMO_RECIPE.items() for part in (f'--{name.replace("_", "-")}', str(value))]
DEMOS = dict(previous=PREVIOUS_DEMO, today=DEMO)
PROMPT = 'Once upon a time'


def run_try(name: str, args, seed: int) -> dict:
    "Train try `name` for the budget (or `args.steps`) with `seed`; its figures."
    overrides = dict(TRIES[name][0])
    changes = [CHANGES[change]() for change in overrides.pop('changes', ())]
    budget = dict(max_steps=args.steps) if args.steps else dict(minutes=args.minutes)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        for change in [*changes, try_architectures()]:
            stack.enter_context(change)
        run = train(
            **(budget | overrides),
            data='bundled',
            device='cpu',
            seed=seed,
            out_dir=None,
            progress=False,
            sample_prompt='',
            eval_minutes=1e6,  # one evaluation, at the end: all 1,000 stories
            cache_dir=args.cache_dir,
        )
    result = finished(run)
    final = result.history['eval'][-1]  # its own `seconds` are the training's; the try's are wall time, all in
    return final | dict(name=name, seed=seed, steps=result.step, seconds=time.perf_counter() - start)


def tries(args):
    "Run every try asked for, each seed; print a row each as it ends, then the table sorted by bits per byte."
    print(machine_line())
    budget = f'{args.steps:,} steps' if args.steps else f'{args.minutes:g} minutes'
    print(f'each try: {budget} on the bundled stories; bits per byte on all 1,000 validation stories\n')
    rows = []
    for name in args.tries:
        for seed in args.seeds:
            row = run_try(name, args, seed)
            rows.append(row)
            steps = f'{row["steps"]:,} step' + ('s' if row['steps'] != 1 else '')
            print(
                f'{name:>10} seed {seed}: {row["bits_per_byte"]:.4f} bits per byte, {steps}, '
                f'{row["seconds"] / 60:.1f} min — {TRIES[name][1]}',
                flush=True,
            )
    print(f'\n{"try":>10} | bits per byte (mean of {len(args.seeds)} seeds) | spread')
    means = {name: [row['bits_per_byte'] for row in rows if row['name'] == name] for name in args.tries}
    for name, values in sorted(means.items(), key=lambda item: sum(item[1]) / len(item[1])):
        print(f'{name:>10} | {sum(values) / len(values):.4f} | {max(values) - min(values):.4f}')


def timed_demo(train_flags: list[str], out_dir: Path) -> dict:
    "Run a demo's two commands as `make demo` does; its wall seconds and the bits per byte its training printed."
    bin_dir = Path(sys.executable).parent
    train_cmd = [str(bin_dir / 'gpt-nb-train-tiny-stories'), *train_flags, '--out-dir', str(out_dir)]
    generate_cmd = [str(bin_dir / 'gpt-nb-generate-text'), '--checkpoint', str(out_dir / 'best_model.pt')]
    generate_cmd += ['--prompt', PROMPT, '--num-samples', '2']
    print(f'$ {shlex.join(train_cmd)} && {shlex.join(generate_cmd)}', flush=True)
    start = time.perf_counter()
    trained = subprocess.run(train_cmd, capture_output=True, text=True, check=True)
    subprocess.run(generate_cmd, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    bits = re.findall(r'([\d.]+) bits/byte \(step', trained.stdout + trained.stderr)
    return dict(seconds=seconds, bits_per_byte=float(bits[-1]))


def side_by_side(args):
    "The demos asked for, alone one after the other (today's with each seed in turn); their times, figures, ratios."
    print(machine_line())
    timed = []
    seeds = itertools.cycle(args.seeds)
    with tempfile.TemporaryDirectory() as folder:
        for run, name in enumerate(args.demos):
            seed = next(seeds) if name == 'today' else None
            flags = DEMOS[name] + ([] if seed is None else ['--seed', str(seed)])
            demo = timed_demo(flags, Path(folder) / f'{run}-{name}')
            timed.append((name, seed, demo))
            minutes = demo['seconds'] / 60
            print(f'{name:>8} demo: {minutes:.1f} min, {demo["bits_per_byte"]:.3f} bits per byte', flush=True)
    previous = [demo['seconds'] for name, _, demo in timed if name == 'previous']
    if not previous:
        return
    previous_seconds = sum(previous) / len(previous)
    for name, seed, demo in timed:
        if name == 'today':
            ratio = demo['seconds'] / previous_seconds
            print(
                f"today's demo (seed {seed}): {ratio:.2f}x the previous demo's time (target: <= 0.5x), "
                f'{demo["bits_per_byte"]:.3f} bits per byte (target: <= 0.995)'
            )


@benchmark_command(__file__)
def main(argv=None) -> int:
    parser = bench_parser(__file__, __doc__)
    commands = parser.add_subparsers(dest='command', required=True)
    tries_parser = commands.add_parser('tries', help='train every try for the same budget')
    tries_parser.add_argument('--tries', nargs='+', default=list(TRIES), help=f'names from: {", ".join(TRIES)}')
    tries_parser.add_argument('--seeds', type=int, nargs='+', default=[1337], help='seeds of each try')
    tries_parser.add_argument('--steps', type=int, help='a number of steps instead of the time budget')
    add_bench_options(tries_parser, minutes=6.0, minutes_help='budget of each run, in minutes', cache_dir=True)
    side_parser = commands.add_parser('side-by-side', help='time the previous demo and today\'s, one after the other')
    side_parser.add_argument(
        '--demos', nargs='+', default=list(DEMOS), help=f'from: {", ".join(DEMOS)}, in this order; a name may repeat'
    )
    side_parser.add_argument('--seeds', type=int, nargs='+', default=[1337], help="seeds of today's demo, in turn")
    add_bench_options(side_parser)
    args = parser.parse_args(argv)
    if args.command == 'tries':

        def checks():
            for name in args.tries:
                check_choice('tries', name, TRIES)
            for seed in args.seeds:
                check_range('seeds', seed, 0, 2**64)
            if args.steps is not None:
                check_positive('steps', args.steps)

        check_settings(parser, checks)
        apply_bench_options(parser, args)
        return run_benchmark(parser, lambda: tries(args))

    def side_checks():
        for name in args.demos:
            check_choice('demos', name, DEMOS)
        for seed in args.seeds:
            check_range('seeds', seed, 0, 2**64)

    check_settings(parser, side_checks)
    apply_bench_options(parser, args)
    return run_benchmark(parser, lambda: side_by_side(args))


if __name__ == '__main__':
    sys.exit(main())
