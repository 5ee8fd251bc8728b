"""Fine-tuning benchmark: LoRA and full fine-tuning of the shipped TinyStories model, a wall-clock budget each (CPU).

    python benchmarks/bench_finetune.py                  # 5 minutes of LoRA, then 5 minutes of full fine-tuning
    python benchmarks/bench_finetune.py --minutes 1 --prompts 50 --samples 1

Both start from load_pretrained('tinystories') and train on instructions made from the bundled training stories
(gpt_nb.finetuning.instruction_data). Before and after, it prints the rate at which the stories generated for the
held-out prompts (made from validation stories, never trained on; every one of them by default, several stories
each; temperature 0.8, top-k 40, up to 200 tokens, seed 0) use all three requested words, with the number of
stories, the fraction of the requested words they use, and bits per byte on all 1,000 bundled validation stories
(a rise is forgetting). Target: LoRA at least doubles the all-words rate, a rise that a one-sided Fisher exact test
(gpt_nb.instruction_metrics.rise_p_value) puts below p = 0.05; full fine-tuning does at least as well.
"""

if __name__ == '__main__':  # run as a script: a Ctrl-C while the libraries below load is one line, exit 130
    from gpt_nb.commands import answer_ctrl_c_at_start

    answer_ctrl_c_at_start(__file__.rsplit('/', 1)[-1])

import sys
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

from gpt_nb.config import check_positive, check_range
from gpt_nb.finetune_run import finetune
from gpt_nb.finetuning import instruction_data
from gpt_nb.instruction_metrics import instruction_metrics, metrics_table, rise_p_value
from gpt_nb.checkpoint import load_pretrained
from gpt_nb.files import bundled_stories


def instruction_benchmark(prompts: int, samples: int, device='cpu', lora_ranks=()):
    """The shipped model, the training instructions, up to `prompts` held-out prompts, and `measure(model)`:
    `instruction_metrics` over `samples` stories a prompt, with bits per byte on the 1,000 validation stories.
    A SettingError naming `lora_rank` if one of `lora_ranks` is more than the model's width (what LoRA can use)."""
    pretrained = load_pretrained('tinystories', device)
    for rank in lora_ranks:
        check_range('lora_rank', rank, 1, pretrained.config.d_model, high_included=True)
    tokenizer, valid = pretrained.tokenizer, bundled_stories('valid')
    train_examples, held_out = instruction_data(
        bundled_stories('train'), valid, tokenizer, pretrained.config.context_length, prompts
    )
    measure = lambda model: instruction_metrics(model, tokenizer, held_out, valid, samples=samples)
    return pretrained, train_examples, held_out, measure


def all_words_rises(results: dict) -> tuple[int, int, dict]:
    """From `instruction_metrics` by model name, 'pretrained' among them: the stories each model wrote, how many of
    the pretrained model's use all three words, and for each other model that count and the one-sided Fisher p-value
    of its rise."""
    n = len(results['pretrained']['stories'])
    count = {name: round(m['all_words'] * n) for name, m in results.items()}
    before = count.pop('pretrained')
    return n, before, {name: (k, rise_p_value(k, n, before, n)) for name, k in count.items()}


@benchmark_command(__file__)
def main(argv=None) -> int:
    parser = bench_parser(__file__, __doc__)
    add_bench_options(
        parser,
        seed=0,
        seed_help='seed of each fine-tuning run (LoRA initialisation, batch order)',
        minutes=5.0,
        minutes_help='fine-tuning budget of each run',
    )
    parser.add_argument(
        '--prompts',
        type=int,
        default=1000,
        help='held-out prompts to evaluate on, at most (default: %(default)s, all there are)',
    )
    parser.add_argument('--samples', type=int, default=4, help='stories written for each prompt (default: %(default)s)')
    parser.add_argument('--lora-rank', type=int, default=8, help='rank of the LoRA run (default: %(default)s)')
    args = parser.parse_args(argv)

    def checks():
        for name in ('prompts', 'samples', 'lora_rank'):
            check_positive(name, getattr(args, name))

    check_settings(parser, checks)
    apply_bench_options(parser, args)
    return run_benchmark(parser, lambda: compare(args))


def compare(args):
    "Measure the shipped model, fine-tune it with LoRA and fully for the budget, measure each; print the figures."
    pretrained, train_examples, held_out, measure = instruction_benchmark(
        args.prompts, args.samples, lora_ranks=[args.lora_rank]
    )
    print(machine_line())
    print(
        f'{len(train_examples):,} training examples; {len(held_out)} held-out prompts, {args.samples} stories each; '
        f'{args.minutes:g} minutes per run'
    )

    results = {'pretrained': measure(pretrained.model)}
    for name, rank in [(f'LoRA rank {args.lora_rank}', args.lora_rank), ('full', 0)]:
        run = finished(
            finetune(
                load_pretrained('tinystories').model,
                pretrained.tokenizer,
                train_examples,
                lora_rank=rank,
                minutes=args.minutes,
                seed=args.seed,
                progress=False,
                out_dir=None,
            )
        )
        label = f'{name}, {run.steps:,} steps'
        results[label] = measure(run.model)
        print(
            f'{label}: {run.trainable:,} trainable parameters, {run.seconds:.0f} s, '
            f'final loss {run.history["loss"][-1]:.3f}'
        )
    print()
    print(metrics_table(results))

    n, before, rises = all_words_rises(results)
    (lora, p_lora), (full, p_full) = rises.values()
    print(
        f'\nall three words, of {n:,} stories ({len(held_out)} prompts x {args.samples}): '
        f'pretrained {before}, LoRA {lora} '
        f'(p = {p_lora:.2g}), full {full} (p = {p_full:.2g}); words used: '
        + ', '.join(f'{name} {m["words_used"]:.1%}' for name, m in results.items())
    )
    verdict = lambda ok: 'met' if ok else 'MISSED'
    doubled = (
        lora >= 2 * before and lora > before and p_lora < 0.05
    )  # from 0, doubling means any rise that chance does not explain
    print(
        f'target: LoRA at least doubles the rate (p < 0.05): {verdict(doubled)}; full does at least as well as LoRA: '
        f'{verdict(doubled and full >= lora)}'
    )


if __name__ == '__main__':
    sys.exit(main())
