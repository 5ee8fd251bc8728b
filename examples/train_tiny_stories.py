"Train a GPT on TinyStories (offline: on the bundled story sample): python examples/train_tiny_stories.py --epochs 10 (see --help)"
from gpt_nb.training import train_main

if __name__ == '__main__': raise SystemExit(train_main())
