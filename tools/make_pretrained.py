"""Make gpt_nb/assets/tinystories.pt, the model that ships with gpt_nb, from a training run's best checkpoint.

    make pretrained     # = the two commands below
    gpt-nb-train-tiny-stories --data bundled --epochs 10 --device cpu --out-dir build/pretrained
    python tools/make_pretrained.py build/pretrained/best_model.pt

It evaluates the model by the project's protocol (all 1,000 bundled validation stories, each followed by
<|endoftext|>, one stream in non-overlapping windows of the model's context; bytes = UTF-8 bytes + 1 per story),
refuses a model above --max-bits-per-byte, and writes the weights in fp16 with the training config, the command
the figure and the run's history (losses, evaluations); optimiser and random-generator state are left out.
"""

import argparse, platform, sys
from pathlib import Path

import torch

from gpt_nb.tokens import eval_tokens
from gpt_nb.checkpoint import load_checkpoint, save_checkpoint
from gpt_nb.files import bundled_stories
from gpt_nb.evaluation import evaluate

ASSET = Path(__file__).resolve().parents[1] / 'gpt_nb' / 'assets' / 'tinystories.pt'
COMMAND = 'gpt-nb-train-tiny-stories --data bundled --epochs 10 --device cpu --out-dir build/pretrained'


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('checkpoint', type=Path, help='best_model.pt of the training run')
    p.add_argument(
        '--out', type=Path, default=ASSET, help='where to write the shipped checkpoint (default: %(default)s)'
    )
    p.add_argument(
        '--max-bits-per-byte',
        type=float,
        default=1.0,
        help="refuse a model worse than this, the project's target; the recipe gives 0.995 (default: %(default)s)",
    )
    args = p.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    ids, n_bytes = eval_tokens(bundled_stories('valid'), ckpt.tokenizer)
    metrics = evaluate(ckpt.model, ids, n_bytes, ckpt.config.context_length)
    print(
        f'{args.checkpoint}: {metrics["bits_per_byte"]:.4f} bits per byte, loss {metrics["loss"]:.4f} on the 1,000 validation stories'
    )
    if metrics['bits_per_byte'] > args.max_bits_per_byte:
        sys.exit(
            f'make_pretrained: {metrics["bits_per_byte"]:.4f} bits per byte is above {args.max_bits_per_byte}; not shipped'
        )
    model = ckpt.model.half()  # load_checkpoint widens the weights back to fp32
    extra = {k: ckpt.extra[k] for k in ('step', 'epoch', 'seconds', 'train_config', 'history') if k in ckpt.extra}
    save_checkpoint(
        args.out,
        model,
        ckpt.tokenizer,
        **extra,
        command=COMMAND,
        bits_per_byte=metrics['bits_per_byte'],
        eval_loss=metrics['loss'],
        machine=f'{platform.machine()} CPU, torch {torch.__version__}',
    )
    print(f'wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
