"""Chapter 10's question: why does LoRA of rank 8 stop improving where full fine-tuning does not?

    python benchmarks/lora_rank.py                                # ranks 8, 32 and 128, and full fine-tuning
    python benchmarks/lora_rank.py --ranks 8 --lora-steps 5100 --full-steps 5100   # both given three times the steps

Each run fine-tunes the shipped model (load_pretrained('tinystories')) on the bundled instructions (instruction_data)
for a fixed number of steps, by default the steps that five minutes buy on the course's 2-core CPU, so the figures
do not depend on the machine's speed. LoRA uses alpha = 2 x rank (the scale alpha / rank = 2 of the default rank 8,
alpha 16) and its default learning rate. Rank 128 is the model's width: such a LoRA can make any change to the
blocks' weight matrices, as full fine-tuning does, but leaves the embeddings, the LayerNorms and the biases alone.
For each model it prints the all-words and words-used rates over every held-out prompt, --samples stories each
(temperature 0.8, top-k 40, up to 200 tokens, seed 0), the one-sided Fisher p-value of the all-words rise over the
pretrained model, the mean training loss of the last 50 steps, the held-out response loss, and bits per byte on the
1,000 validation stories (a rise is forgetting).
"""

if __name__ == '__main__':  # run as a script: a Ctrl-C while the libraries below load is one line, exit 130
    from gpt_nb.commands import answer_ctrl_c_at_start

    answer_ctrl_c_at_start(__file__.rsplit('/', 1)[-1])

import math, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_finetune import all_words_rises, instruction_benchmark  # its setup and its counting
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

from gpt_nb.checkpoint import load_pretrained
from gpt_nb.config import check_positive, check_range
from gpt_nb.finetune_run import finetune
from gpt_nb.instruction_metrics import metrics_table
from gpt_nb.files import bundled_stories


@benchmark_command(__file__)
def main(argv=None) -> int:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument(
        '--ranks', type=int, nargs='+', default=[8, 32, 128], help='LoRA ranks to compare (default: 8 32 128)'
    )
    parser.add_argument('--lora-steps', type=int, default=1700, help='steps of each LoRA run (default: %(default)s)')
    parser.add_argument(
        '--full-steps', type=int, default=1850, help='steps of full fine-tuning; 0 = none (default: %(default)s)'
    )
    parser.add_argument(
        '--samples', type=int, default=4, help='stories written for each held-out prompt (default: %(default)s)'
    )
    add_bench_options(
        parser, seed=0, seed_help='seed of each fine-tuning run (LoRA initialisation, batch order)', device=True
    )
    args = parser.parse_args(argv)

    def checks():
        for rank in args.ranks:
            check_positive('ranks', rank)
        for name in ('lora_steps', 'samples'):
            check_positive(name, getattr(args, name))
        check_range('full_steps', args.full_steps, 0, math.inf)

    check_settings(parser, checks)
    device = apply_bench_options(parser, args)
    return run_benchmark(parser, lambda: compare(args, device), {'lora_rank': '--ranks'})


def compare(args, device):
    "Measure the shipped model and its fine-tunings (each rank, then full) for the steps given; print the figures."
    pretrained, train_examples, held_out, measure = instruction_benchmark(
        len(bundled_stories('valid')), args.samples, device, lora_ranks=args.ranks
    )
    print(f'{machine_line()}; device {device}')
    print(
        f'{len(train_examples):,} training examples; {len(held_out)} held-out prompts, {args.samples} stories each',
        flush=True,
    )

    results = {'pretrained': measure(pretrained.model)}
    runs = [(f'LoRA rank {rank}', dict(lora_rank=rank, lora_alpha=2.0 * rank), args.lora_steps) for rank in args.ranks]
    if args.full_steps:
        runs.append(('full', dict(lora_rank=0), args.full_steps))
    for name, method, steps in runs:
        run = finished(
            finetune(
                load_pretrained('tinystories', device).model,
                pretrained.tokenizer,
                train_examples,
                max_steps=steps,
                seed=args.seed,
                progress=False,
                out_dir=None,
                **method,
            )
        )
        label = f'{name}, {run.steps:,} steps'
        results[label], last = measure(run.model), run.history['loss'][-50:]
        print(
            f'{label}: {run.trainable:,} trainable parameters, {run.seconds:.0f} s, '
            f'training loss {sum(last) / len(last):.3f} '
            '(mean of the last 50 steps)',
            flush=True,
        )
    print()
    print(metrics_table(results))

    n, before, rises = all_words_rises(results)
    print(
        f'\nall three words, of {n:,} stories ({len(held_out)} prompts x {args.samples}), '
        f"against the pretrained model's {before}:"
    )
    for label, (k, p_value) in rises.items():
        print(f'  {label}: {k} (p = {p_value:.2g})')


if __name__ == '__main__':
    sys.exit(main())
