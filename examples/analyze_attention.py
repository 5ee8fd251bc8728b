"Attention heatmaps and head statistics of a gpt_nb checkpoint: python examples/analyze_attention.py --help"

from gpt_nb.cli_analyze import analyze_main

if __name__ == '__main__':
    raise SystemExit(analyze_main())
