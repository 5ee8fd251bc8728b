"Stream text from a gpt_nb checkpoint or GPT-2 weights: python examples/generate_text.py --help"

from gpt_nb.commands import generate_text

if __name__ == '__main__':
    raise SystemExit(generate_text())
