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

import argparse, platform, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import cpu_name, machine_line  # the benchmarks' shared helpers

from gpt_nb.checkpoint import load_checkpoint
from gpt_nb.config import ARCHITECTURES
from gpt_nb.evaluation import validation_bits_per_byte
from gpt_nb.training import train
from gpt_nb.train_config import CPU_RECIPE


def speedrun(architecture: str, args) -> dict:
    """Train one architecture for the budget as `gpt-nb-train-tiny-stories --architecture A --minutes M` does; its
    bits per byte on all the validation stories, its curve and its checkpoint."""
    out = Path(args.out_dir) / architecture
    print(f'\n== {architecture}: {ARCHITECTURES[architecture] or "GPT-2 (the defaults of GPTConfig)"}', flush=True)
    result = train(
        architecture=architecture,
        preset=args.preset,
        seed=args.seed,
        data='bundled',
        minutes=args.minutes,
        device='cpu',
        batch_size=args.batch_size,
        eval_minutes=max(args.minutes / 5, 0.05),
        eval_stories=200,
        out_dir=str(out),
        cache_dir=args.cache_dir,
        progress=False,
        sample_prompt='',
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--minutes', type=float, default=10.0, help='training budget of each run, in minutes (default: %(default)s)'
    )
    parser.add_argument(
        '--architecture',
        default='gpt2-rope',
        choices=list(ARCHITECTURES),
        help='the layers to train, a name from gpt_nb.config.ARCHITECTURES (default: %(default)s)',
    )
    parser.add_argument(
        '--baseline', action='store_true', help="also train GPT-2's layout ('gpt2') for the same minutes"
    )
    parser.add_argument('--out-dir', default='build/speedrun', help='where the checkpoints go (default: %(default)s)')
    parser.add_argument(
        '--preset', default='tiny', help='model size, a name from gpt_nb.config.PRESETS (default: %(default)s)'
    )
    parser.add_argument(
        '--batch-size', type=int, help=f"sequences a step (default: the CPU recipe's, {CPU_RECIPE['batch_size']})"
    )
    parser.add_argument(
        '--seed', type=int, default=1337, help='seed of the initial weights and the batches (default: %(default)s)'
    )
    parser.add_argument('--threads', type=int, help="CPU threads for PyTorch (default: PyTorch's choice, one per core)")
    parser.add_argument(
        '--cache-dir', default=None, help='token and tokenizer cache (default: $GPT_NB_CACHE or .gpt_nb_cache)'
    )
    args = parser.parse_args(argv)
    if not args.minutes > 0:
        parser.error(f'--minutes must be a positive number, got {args.minutes}')
    if args.batch_size is not None and args.batch_size < 1:
        parser.error(f'--batch-size must be an integer >= 1, got {args.batch_size}')
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f'--threads must be an integer >= 1, got {args.threads}')
        torch.set_num_threads(args.threads)
    print(f'{machine_line()}, python {platform.python_version()}')
    architectures = [args.architecture] + (['gpt2'] if args.baseline and args.architecture != 'gpt2' else [])
    results = [speedrun(architecture, args) for architecture in architectures]
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
    return results


if __name__ == '__main__':
    main()
