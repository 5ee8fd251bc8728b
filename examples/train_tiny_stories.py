"""Train a GPT on TinyStories (offline: the excerpt bundled with gpt_nb).

python examples/train_tiny_stories.py --epochs 10 (see --help)
"""

from gpt_nb.cli_train import train_main

if __name__ == '__main__':
    raise SystemExit(train_main())
