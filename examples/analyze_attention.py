"Attention heatmaps and head statistics of a gpt_nb checkpoint: python examples/analyze_attention.py --help"

from gpt_nb.commands import analyze_attention

if __name__ == '__main__':
    raise SystemExit(analyze_attention())
