"""Improve an instruction-tuned model with reinforcement learning (GRPO): stories rewarded for the requested words.

python examples/rl.py --checkpoint checkpoints/finetuned/best_model.pt --minutes 10 (see --help)
"""

from gpt_nb.commands import rl

if __name__ == '__main__':
    raise SystemExit(rl())
