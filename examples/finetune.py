"""Fine-tune the shipped TinyStories model to follow instructions, with LoRA or fully.

python examples/finetune.py --minutes 5 (see --help)
"""

from gpt_nb.commands import finetune

if __name__ == '__main__':
    raise SystemExit(finetune())
