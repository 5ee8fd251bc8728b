"""RL benchmark: GRPO with the requested-words reward, from chapter 10's LoRA model, a wall-clock budget (CPU).

    python benchmarks/bench_rl.py                        # 5 minutes of LoRA, then 10 minutes of GRPO
    python benchmarks/bench_rl.py --minutes 1 --lora-minutes 1 --prompts 50 --samples 1

It fine-tunes the shipped model with LoRA exactly as bench_finetune.py does (instructions made from the bundled
training stories, rank 8, `--lora-minutes`), then runs GRPO (gpt_nb.rl_run.reinforce, every weight, the KL penalty
to the LoRA model) for `--minutes` on word-only prompts made from the training stories. Both models are evaluated
as bench_finetune.py evaluates: every held-out prompt (made from validation stories, never trained on) several
times (temperature 0.8, top-k 40, up to 200 tokens, seed 0): the share of stories that use all three requested
words, the share of requested words used, bits per byte on all 1,000 validation stories; and for hacking, the LoRA
model's loss per token of the stories written (given their prompts), the share of distinct word pairs and the length.

Targets: all three words in >= 10% of the stories, the rise significant (one-sided Fisher test, p < 0.05); words
used >= 40%; the reference loss within 10% of its loss on the LoRA model's own stories; bits per byte within +0.05.
"""

if __name__ == '__main__':  # run as a script: a Ctrl-C while the libraries below load is one line, exit 130
    from gpt_nb.commands import answer_ctrl_c_at_start

    answer_ctrl_c_at_start(__file__.rsplit('/', 1)[-1])

import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_finetune import instruction_benchmark
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

from gpt_nb.config import check_positive
from gpt_nb.files import bundled_stories
from gpt_nb.finetune_run import finetune
from gpt_nb.finetuning import make_examples
from gpt_nb.instruction_metrics import metrics_table, rise_p_value
from gpt_nb.rl_run import RLConfig, hacking_measures, reinforce


@benchmark_command(__file__)
def main(argv=None) -> int:
    parser = bench_parser(__file__, __doc__)
    add_bench_options(
        parser,
        seed=0,
        seed_help='seed of the LoRA run and of the RL run (prompts drawn, stories sampled)',
        minutes=10.0,
        minutes_help='GRPO budget',
    )
    parser.add_argument('--lora-minutes', type=float, default=5.0, help='LoRA budget (default: %(default)s)')
    parser.add_argument(
        '--prompts',
        type=int,
        default=1000,
        help='held-out prompts to evaluate on, at most (default: %(default)s, all there are)',
    )
    parser.add_argument('--samples', type=int, default=4, help='stories written for each prompt (default: %(default)s)')
    args = parser.parse_args(argv)

    def checks():
        for name in ('prompts', 'samples'):
            check_positive(name, getattr(args, name))
        check_positive('lora_minutes', args.lora_minutes, integer=False)
        return RLConfig(minutes=args.minutes, seed=args.seed, out_dir=None, progress=False, eval_prompts=0)

    config = check_settings(parser, checks)
    apply_bench_options(parser, args)
    return run_benchmark(parser, lambda: compare(args, config))


def compare(args, config: RLConfig):
    "Fine-tune with LoRA, measure; GRPO from there, measure; print the figures and the targets."
    pretrained, train_examples, held_out, measure = instruction_benchmark(args.prompts, args.samples)
    tokenizer = pretrained.tokenizer
    prompts = make_examples(
        bundled_stories('train'), tokenizer, seed=args.seed, max_tokens=pretrained.config.context_length + 1
    )
    print(machine_line())
    print(
        f'{len(prompts):,} training prompts; {len(held_out)} held-out prompts, {args.samples} stories each; '
        f'LoRA {args.lora_minutes:g} minutes, GRPO {args.minutes:g} minutes'
    )
    lora = finished(
        finetune(
            pretrained.model,
            tokenizer,
            train_examples,
            lora_rank=8,
            minutes=args.lora_minutes,
            seed=args.seed,
            progress=False,
            out_dir=None,
        )
    )
    reference = copy.deepcopy(lora.model).eval()
    asked = list(held_out) * args.samples
    results, hacking = {}, {}
    label = f'LoRA rank 8, {lora.steps:,} steps'
    results[label] = measure(lora.model)
    hacking[label] = hacking_measures(results[label]['stories'], asked, reference, tokenizer)
    run = finished(reinforce(lora.model, tokenizer, prompts, config, reference=reference))
    rl_label = f'+ GRPO, {run.steps:,} steps'
    results[rl_label] = measure(run.model)
    hacking[rl_label] = hacking_measures(results[rl_label]['stories'], asked, reference, tokenizer)
    print(f'GRPO: {run.steps:,} steps in {run.seconds:.0f} s, {len(run.history["rollouts"]):,} rollouts')
    print()
    print(metrics_table(results))
    print()
    print(f'{"model":<34}{"reference loss":>16}{"distinct pairs":>16}{"words":>8}')
    for name, h in hacking.items():
        print(f'{name:<34}{h["reference_loss"]:>16.3f}{h["distinct_pairs"]:>16.1%}{h["words"]:>8.0f}')

    n = len(asked)
    before, after = (round(results[name]['all_words'] * n) for name in (label, rl_label))
    p = rise_p_value(after, n, before, n)
    words_used = results[rl_label]['words_used']
    loss_rise = hacking[rl_label]['reference_loss'] / hacking[label]['reference_loss'] - 1
    bits_rise = results[rl_label]['bits_per_byte'] - results[label]['bits_per_byte']
    print(
        f'\nall three words, of {n:,} stories: LoRA {before}, GRPO {after} (p = {p:.2g}); words used '
        f'{results[label]["words_used"]:.1%} -> {words_used:.1%}; reference loss {loss_rise:+.1%}; '
        f'bits per byte {bits_rise:+.3f}'
    )
    verdict = lambda ok: 'met' if ok else 'MISSED'
    print(
        f'targets: all three words >= 10% (p < 0.05): {verdict(after >= 0.1 * n and p < 0.05)} ({after / n:.1%}); '
        f'words used >= 40%: {verdict(words_used >= 0.4)}; reference loss within 10%: {verdict(loss_rise <= 0.1)}; '
        f'bits per byte within +0.05: {verdict(bits_rise <= 0.05)}'
    )


if __name__ == '__main__':
    sys.exit(main())
