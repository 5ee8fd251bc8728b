"""Make gpt_nb/assets/tinystories.pt, the model that ships with gpt_nb, from a training run's best checkpoint.

    make pretrained     # trains with the Makefile's PRETRAINED_COMMAND, then runs this script:
    python tools/make_pretrained.py build/pretrained/best_model.pt --command "THE TRAINING COMMAND"

The shipped model is the `tiny` preset (GPT-2's layout: 4 blocks of width 128, learned positions, the 4,096-token BPE
that chapter 01 trains, context 256), trained with the demo's schedule (AdamW at 1e-2 and Muon, a 2% warmup, a
cooldown over the last 60%) and windows in passes (every window once a pass), for ten passes. It keeps the `tiny`
shape rather than the demo's (rotary positions, a 2,048-token BPE, context 512) because chapters 00-08 load it before
chapter 09 teaches rotary positions: chapter 02 draws its position table, chapter 08 reads its heads, and the `tiny`
preset and its tokenizer are the ones the whole course builds.

It measures the model's bits per byte by the project's protocol, `gpt_nb.evaluation.validation_bits_per_byte` (all
1,000 bundled validation stories, each followed by <|endoftext|>, one stream in non-overlapping windows of the
model's context; bytes = UTF-8 bytes + 1 per story), refuses a model above --max-bits-per-byte, and writes the
weights in fp16 with the training config, the command, the figure and the run's history (losses, evaluations);
optimiser and random-generator state are left out.
"""

import argparse, platform, sys
from pathlib import Path

import torch

from gpt_nb.checkpoint import load_checkpoint, save_checkpoint
from gpt_nb.evaluation import validation_bits_per_byte

ASSET = Path(__file__).resolve().parents[1] / 'gpt_nb' / 'assets' / 'tinystories.pt'


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', type=Path, help='best_model.pt of the training run')
    parser.add_argument(
        '--out', type=Path, default=ASSET, help='where to write the shipped checkpoint (default: %(default)s)'
    )
    parser.add_argument(
        '--command', required=True, help="the command that trained it, recorded in the checkpoint (the Makefile's)"
    )
    parser.add_argument(
        '--max-bits-per-byte',
        type=float,
        default=1.0,
        help="refuse a model worse than this, the project's target (default: %(default)s)",
    )
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.checkpoint)
    bits_per_byte = validation_bits_per_byte(checkpoint.model, checkpoint.tokenizer)
    print(f'{args.checkpoint}: {bits_per_byte:.4f} bits per byte on the 1,000 validation stories')
    if bits_per_byte > args.max_bits_per_byte:
        sys.exit(f'make_pretrained: {bits_per_byte:.4f} bits per byte is above {args.max_bits_per_byte}; not shipped')
    model = checkpoint.model.half()  # load_checkpoint widens the weights back to fp32
    kept = ('step', 'epoch', 'seconds', 'train_config', 'history')
    extra = {key: checkpoint.extra[key] for key in kept if key in checkpoint.extra}
    save_checkpoint(
        args.out,
        model,
        checkpoint.tokenizer,
        **extra,
        command=args.command,
        bits_per_byte=bits_per_byte,
        machine=f'{platform.machine()} CPU, torch {torch.__version__}',
    )
    print(f'wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
