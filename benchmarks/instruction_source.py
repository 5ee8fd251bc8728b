"""Chapter 10's experiment: does instruction tuning teach a model to use the requested words better when the
instruction stories are new to it than when it read them ten times in pretraining?

    gpt-nb-train-tiny-stories --data bundled --max-stories 3542 --epochs 10 --device cpu --out-dir build/held500
    python benchmarks/instruction_source.py build/held500/best_model.pt

The first command pretrains a model as `make pretrained` did before issue 24 (the CPU recipe for ten epochs), on the
first 3,542 bundled training stories; the
other 500 are held out. This script then fine-tunes it twice from the same start, with LoRA for the same number of
steps: once on instructions made from the 500 stories just before the held-out ones ('read' in pretraining), once
on instructions made from the 500 held-out stories ('new'). It prints the pretrained model's response loss on each
set (how well it already predicts those stories) and, before and after, the all-words and words-used rates on
held-out prompts made from validation stories (temperature 0.8, top-k 40, up to 200 tokens, seed 0).
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

from gpt_nb.checkpoint import load_checkpoint
from gpt_nb.cli import first_line
from gpt_nb.config import check_positive, check_range
from gpt_nb.finetune_run import finetune
from gpt_nb.finetuning import FIRST_SENTENCE_RATE, instruction_data, make_examples, response_loss
from gpt_nb.instruction_metrics import instruction_metrics, metrics_table
from gpt_nb.files import bundled_stories


@benchmark_command(__file__)
def main(argv=None) -> int:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument('checkpoint', help='a model pretrained on all but the last --held-out bundled training stories')
    parser.add_argument(
        '--held-out', type=int, default=500, help='training stories left out of pretraining (default: %(default)s)'
    )
    parser.add_argument('--steps', type=int, default=600, help='LoRA steps of each run (default: %(default)s)')
    parser.add_argument(
        '--prompts', type=int, default=200, help='held-out prompts to evaluate on (default: %(default)s)'
    )
    add_bench_options(parser, seed=0, seed_help='seed of each fine-tuning run (LoRA initialisation, batch order)')
    args = parser.parse_args(argv)
    train = bundled_stories('train')

    def checks():
        # the stories read in pretraining just before the held-out ones are as many as those
        check_range('held_out', args.held_out, 1, len(train) // 2, high_included=True)
        for name in ('steps', 'prompts'):
            check_positive(name, getattr(args, name))

    check_settings(parser, checks)
    apply_bench_options(parser, args)
    try:
        base = load_checkpoint(args.checkpoint)
    except (OSError, ValueError, RuntimeError) as error:  # a CheckpointError names the file and what is wrong
        parser.error(first_line(error))
    return run_benchmark(parser, lambda: compare(args, base, train))


def compare(args, base, train: tuple[str, ...]):
    "Fine-tune the checkpoint on instructions from stories it read and from stories it did not; print the figures."
    tokenizer, fits = base.tokenizer, base.config.context_length + 1
    seen_up_to = len(train) - args.held_out
    sources = {
        'read': train[seen_up_to - args.held_out : seen_up_to],
        'new': train[seen_up_to:],
    }  # read in pretraining, or held out
    examples = {
        name: make_examples(stories, tokenizer, first_sentence_rate=FIRST_SENTENCE_RATE, max_tokens=fits)
        for name, stories in sources.items()
    }
    _, prompts = instruction_data(train, bundled_stories('valid'), tokenizer, base.config.context_length, args.prompts)
    print(machine_line())
    for name, ex in examples.items():
        print(
            f'{name} stories: {len(ex)} instruction examples; response loss of the pretrained model '
            f'{response_loss(base.model, tokenizer, ex):.3f} nats per token'
        )

    results = {'pretrained': instruction_metrics(base.model, tokenizer, prompts)}
    for name, ex in examples.items():
        model = load_checkpoint(args.checkpoint).model
        run = finished(
            finetune(
                model, tokenizer, ex, lora_rank=8, max_steps=args.steps, seed=args.seed, progress=False, out_dir=None
            )
        )
        results[f'LoRA {run.steps} steps, {name} stories'] = instruction_metrics(run.model, tokenizer, prompts)
    print()
    print(metrics_table(results))


if __name__ == '__main__':
    sys.exit(main())
