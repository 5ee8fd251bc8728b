"""Decoding speed of gpt_nb.generation against transformers' `GPT2LMHeadModel.generate` (prints figures; not a test).

For each model (the `tiny` preset and the GPT-2 124M architecture, random weights) and each length
(256 and 512 new tokens), greedy decoding from the same 16-token prompt is timed three ways in the
same run: gpt_nb with its key/value cache, gpt_nb without it, and transformers' `generate` with
`use_cache=True` on the same weights (copied through `save_pretrained` / `from_pretrained`).
Prints tokens/s and the ratios the project targets: cached >= 1.5x transformers (tiny),
>= 1x (124M), cached >= 5x uncached at 512 tokens.

    OMP_NUM_THREADS=2 python benchmarks/bench_generation.py [--threads 2] [--presets tiny gpt2] [--new-tokens 256 512]
"""
import argparse
import tempfile
import time

import torch
from transformers import GPT2LMHeadModel
from transformers.utils import logging as hf_logging

from gpt_nb.generation import generate
from gpt_nb.model import GPT, GPTConfig

PROMPT_LEN = 16


def best_time(fn, repeats: int) -> tuple[float, torch.Tensor]:
    "Fastest of `repeats` runs of `fn` (seconds) and its last result."
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def build(preset: str, max_new: int) -> tuple[GPT, GPT2LMHeadModel, str]:
    "A randomly initialised gpt_nb model for `preset` and transformers' copy of the same weights."
    config = GPTConfig.from_preset(preset)
    note = ''
    if config.context_length < PROMPT_LEN + max_new:  # both must fit the whole text in one window
        note = f' (context_length raised from {config.context_length} to {PROMPT_LEN + max_new} to fit the text)'
        config = GPTConfig.from_preset(preset, context_length=PROMPT_LEN + max_new)
    torch.manual_seed(0)
    model = GPT(config).eval()
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        hf = GPT2LMHeadModel.from_pretrained(d).eval()
    hf.generation_config.eos_token_id = None  # decode exactly max_new_tokens, like stop_tokens=[] below
    hf.generation_config.pad_token_id = 0
    return model, hf, note


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=2, help='torch threads (default: %(default)s)')
    parser.add_argument('--presets', nargs='+', default=['tiny', 'gpt2'])
    parser.add_argument('--new-tokens', type=int, nargs='+', default=[256, 512])
    parser.add_argument('--repeats', type=int, default=2, help='best of this many timed runs (default: %(default)s)')
    parser.add_argument('--skip-uncached', nargs='*', default=[], metavar='PRESET',
                        help='presets whose uncached decoding is not timed (it is quadratic in length)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    print(f'torch {torch.__version__}, threads: {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}), '
          f'greedy decoding, batch 1, prompt {PROMPT_LEN} tokens, best of {args.repeats}')
    print('note: the CPU may be shared with other processes; compare figures within one run only\n')
    header = f"{'model':>6} {'new':>4} | {'cached':>9} {'uncached':>9} {'hf':>9} tok/s | {'cached/hf':>9} {'cached/uncached':>15} | same tokens as hf"
    print(header)
    print('-' * len(header))
    for preset in args.presets:
        model, hf, note = build(preset, max(args.new_tokens))
        if note: print(f'{preset}{note}')
        vocab = model.config.vocab_size
        prompt = torch.randint(0, vocab, (1, PROMPT_LEN), generator=torch.Generator().manual_seed(0))
        ones = torch.ones_like(prompt)
        with torch.inference_mode():  # warm up every path once
            generate(model, prompt, 8, temperature=0, stop_tokens=[])
            generate(model, prompt, 8, temperature=0, stop_tokens=[], use_cache=False)
            hf.generate(prompt, attention_mask=ones, max_new_tokens=8, do_sample=False, use_cache=True)
        for n in args.new_tokens:
            t_cached, ours = best_time(lambda: generate(model, prompt, n, temperature=0, stop_tokens=[]), args.repeats)
            t_hf, theirs = best_time(lambda: hf.generate(prompt, attention_mask=ones, max_new_tokens=n,
                                                         do_sample=False, use_cache=True), args.repeats)
            if preset in args.skip_uncached: t_uncached = float('nan')
            else: t_uncached, _ = best_time(lambda: generate(model, prompt, n, temperature=0, stop_tokens=[], use_cache=False), 1)
            same = 'yes' if torch.equal(ours, theirs) else 'NO'
            print(f'{preset:>6} {n:>4} | {n / t_cached:9.1f} {n / t_uncached:9.1f} {n / t_hf:9.1f}       | '
                  f'{t_hf / t_cached:8.2f}x {t_uncached / t_cached:14.2f}x | {same}', flush=True)


if __name__ == '__main__':
    main()
