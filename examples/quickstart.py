"""Generate text from an untrained GPT: its structure, its size and (expected) gibberish.

python examples/quickstart.py --prompt "The cat" --max-new-tokens 20
"""

from gpt_nb.commands import quickstart

if __name__ == '__main__':
    raise SystemExit(quickstart())
