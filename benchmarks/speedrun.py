"""The CPU speedrun of chapter 09: train a named architecture on the bundled TinyStories for a wall-clock budget
and report validation bits per byte on all 1,000 bundled validation stories.

    python benchmarks/speedrun.py --minutes 10                        # GPT-2 with rotary positions ('gpt2-rope')
    python benchmarks/speedrun.py --minutes 10 --baseline             # and GPT-2's layout for the same minutes
    python benchmarks/speedrun.py --minutes 10 --architecture modern  # any named set of gpt_nb.config.ARCHITECTURES

The default, 'gpt2-rope', is the best architecture chapter 09 found for this budget on a CPU. Every run uses the CPU
recipe of chapter 07 (the tiny preset, its BPE, context 256, batch 8, Muon for the blocks' matrices, warmup then
cosine decay to zero over the time budget) and they differ only in the architecture options.
Bits per byte are the project's metric, `gpt_nb.evaluation.validation_bits_per_byte` (as tools/make_pretrained.py
measures the shipped model): the 1,000 stories, each followed by <|endoftext|>, one stream in non-overlapping windows
of the model's context; bytes = UTF-8 bytes + 1 per story. The curve printed for
each run is the training's own evaluation on the first 200 validation stories (easier than the whole set).
Each run's checkpoints (best_model.pt, last.pt) go to OUT_DIR/ARCHITECTURE (OUT_DIR/gpt2-rope, OUT_DIR/gpt2),
loadable by gpt_nb.checkpoint.load_checkpoint and the CLIs.
"""

if __name__ == '__main__':  # run as a script: a Ctrl-C while the libraries below load is one line, exit 130
    from gpt_nb.commands import answer_ctrl_c_at_start

    answer_ctrl_c_at_start(__file__.rsplit('/', 1)[-1])

import argparse, platform, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import (  # the benchmarks' shared helpers
    add_bench_options,
    apply_bench_options,
    bench_parser,
    benchmark_command,
    cpu_name,
    finished,
    machine_line,
    run_benchmark,
)

from gpt_nb.checkpoint import load_checkpoint
from gpt_nb.cli import check_out_dir, out_dir_lock, settings_from_args
from gpt_nb.config import ARCHITECTURES
from gpt_nb.evaluation import validation_bits_per_byte
from gpt_nb.training import train
from gpt_nb.train_config import CPU_RECIPE, TrainConfig


def speedrun(architecture: str, settings: TrainConfig) -> dict:
    """Train one architecture for the budget as `gpt-nb-train-tiny-stories --architecture A --minutes M` does; its
    bits per byte on all the validation stories, its curve and its checkpoint. `settings`: the run's checked flags."""
    out = Path(settings.out_dir) / architecture
    print(f'\n== {architecture}: {ARCHITECTURES[architecture] or "GPT-2 (the defaults of GPTConfig)"}', flush=True)
    result = finished(
        train(
            settings,
            architecture=architecture,
            data='bundled',
            device='cpu',
            eval_minutes=max(settings.minutes / 5, 0.05),
            eval_stories=200,
            out_dir=str(out),
            progress=False,
            sample_prompt='',
        )
    )
    checkpoint = load_checkpoint(out / 'last.pt')  # what the run wrote, read back as any user would
    curve = [(evaluation['seconds'], evaluation['bits_per_byte']) for evaluation in result.history['eval']]
    return dict(
        name=architecture,
        config=checkpoint.config,
        bits_per_byte=validation_bits_per_byte(checkpoint.model, checkpoint.tokenizer),
        steps=result.step,
        seconds=result.seconds,
        tokens=result.step * result.config.batch_size * checkpoint.config.context_length,
        curve=curve,
        checkpoint=out / 'last.pt',
    )


@benchmark_command(__file__)
def main(argv=None) -> int:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument(
        '--architecture',
        default='gpt2-rope',
        help=f'the layers to train, a name from gpt_nb.config.ARCHITECTURES ({", ".join(ARCHITECTURES)}) '
        '(default: %(default)s)',
    )
    parser.add_argument(
        '--baseline', action='store_true', help="also train GPT-2's layout ('gpt2') for the same minutes"
    )
    parser.add_argument(
        '--preset', default='tiny', help='model size, a name from gpt_nb.config.PRESETS (default: %(default)s)'
    )
    parser.add_argument(
        '--batch-size', type=int, help=f"sequences a step (default: the CPU recipe's, {CPU_RECIPE['batch_size']})"
    )
    add_bench_options(
        parser,
        seed=1337,
        seed_help='seed of the initial weights and the batches',
        minutes=10.0,
        minutes_help='training budget of each run, in minutes',
        out_dir='build/speedrun',
        out_dir_help='where the checkpoints go',
        cache_dir=True,
    )
    args = parser.parse_args(argv)
    settings = settings_from_args(parser, TrainConfig, args)  # the checks of gpt-nb-train-tiny-stories
    apply_bench_options(parser, args)
    architectures = [args.architecture] + (['gpt2'] if args.baseline and args.architecture != 'gpt2' else [])
    for architecture in architectures:  # where each run's checkpoints go
        check_out_dir(parser, str(Path(args.out_dir) / architecture))
    with out_dir_lock(parser, args.out_dir):  # a second speedrun into the same folder is refused
        return run_benchmark(parser, lambda: report(settings, architectures, args))


def report(settings: TrainConfig, architectures: list[str], args: argparse.Namespace):
    "Run the speedrun of each architecture, then print the figures of each."
    print(f'{machine_line()}, python {platform.python_version()}')
    results = [speedrun(architecture, settings) for architecture in architectures]
    print(
        f'\n{args.minutes:g} minutes each, {CPU_RECIPE["tokenizer"]} tokens, context {CPU_RECIPE["context_length"]}, '
        f'batch {args.batch_size or CPU_RECIPE["batch_size"]}, {CPU_RECIPE["optimizer"]}; '
        f'torch {torch.__version__} on {cpu_name()}'
    )
    for result in results:
        print(
            f'{result["name"]:>9}: {result["bits_per_byte"]:.4f} bits per byte on the 1,000 validation stories after '
            f'{result["steps"]:,} steps, {result["tokens"]:,} tokens, {result["seconds"] / 60:.1f} min; '
            f'checkpoint {result["checkpoint"]}'
        )
        print(f'         config: {result["config"]}')
        curve = ', '.join(f'({seconds / 60:.1f}, {bits:.3f})' for seconds, bits in result['curve'])
        print(f'         curve (minutes, bits/byte on 200 validation stories): {curve}')


if __name__ == '__main__':
    sys.exit(main())
