"""Train a GPT on TinyStories (offline: the excerpt bundled with gpt_nb).

python examples/train_tiny_stories.py --epochs 10 (see --help)
"""

from gpt_nb.commands import train_tiny_stories

if __name__ == '__main__':
    raise SystemExit(train_tiny_stories())
