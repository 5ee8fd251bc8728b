"""Fine-tune the shipped TinyStories model to follow instructions, with LoRA or fully.

python examples/finetune.py --minutes 5 (see --help)
"""

from gpt_nb.cli_finetune import finetune_main

if __name__ == '__main__':
    raise SystemExit(finetune_main())
