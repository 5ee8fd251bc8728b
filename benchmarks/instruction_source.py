"""Chapter 10's experiment: does instruction tuning teach a model to use the requested words better when the
instruction stories are new to it than when it read them ten times in pretraining?

    gpt-nb-train-tiny-stories --data bundled --max-stories 3542 --epochs 10 --device cpu --out-dir build/held500
    python benchmarks/instruction_source.py build/held500/best_model.pt

The first command pretrains a model as `make pretrained` does, on the first 3,542 bundled training stories; the
other 500 are held out. This script then fine-tunes it twice from the same start, with LoRA for the same number of
steps: once on instructions made from the 500 stories just before the held-out ones ('read' in pretraining), once
on instructions made from the 500 held-out stories ('new'). It prints the pretrained model's response loss on each
set (how well it already predicts those stories) and, before and after, the all-words and words-used rates on
held-out prompts made from validation stories (temperature 0.8, top-k 40, up to 200 tokens, seed 0).
"""

import argparse, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import machine_line  # noqa: E402   the benchmarks' shared helpers

from gpt_nb.checkpoint import load_checkpoint
from gpt_nb.finetune_run import finetune
from gpt_nb.finetuning import FIRST_SENTENCE_RATE, instruction_data, make_examples, response_loss
from gpt_nb.instruction_metrics import instruction_metrics, metrics_table
from gpt_nb.files import bundled_stories


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('checkpoint', help='a model pretrained on all but the last --held-out bundled training stories')
    p.add_argument(
        '--held-out', type=int, default=500, help='training stories left out of pretraining (default: %(default)s)'
    )
    p.add_argument('--steps', type=int, default=600, help='LoRA steps of each run (default: %(default)s)')
    p.add_argument('--prompts', type=int, default=200, help='held-out prompts to evaluate on (default: %(default)s)')
    args = p.parse_args()

    base = load_checkpoint(args.checkpoint)
    tokenizer, fits = base.tokenizer, base.config.context_length + 1
    train = bundled_stories('train')
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
        run = finetune(model, tokenizer, ex, lora_rank=8, max_steps=args.steps, progress=False, out_dir=None)
        results[f'LoRA {run.steps} steps, {name} stories'] = instruction_metrics(run.model, tokenizer, prompts)
    print()
    print(metrics_table(results))


if __name__ == '__main__':
    main()
