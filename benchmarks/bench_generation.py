"""Decoding speed of gpt_nb.generation against transformers' `generate` (prints figures; not a test).

For each model (the trained model the package ships; the `tiny` preset and the GPT-2 124M architecture with random
weights; with `--checkpoint`, a trained model of one's own) and each length (256 and 512 new tokens; the shipped
model's context holds 240 after the prompt), greedy decoding from the same 16-token prompt is timed four ways in the
same run: gpt_nb with its key/value cache as `generate` runs it (on the CPU, chapter 06b's traced one-token step),
the same through the model's own forward (`forward_only`), gpt_nb without the cache, and transformers' `generate`
with `use_cache=True` on the same weights: `GPT2LMHeadModel` (copied through `save_pretrained` / `from_pretrained`),
or for a model with rotary positions (`gpt2-rope`) `GPTNeoXForCausalLM` made sequential
(`use_parallel_residual=False`), which rotates the same halves of each head (`rotary_peer`).
Prints tokens/s and the ratios the project targets: the shipped model cached >= 2.5x transformers, the traced step
against the forward, cached >= 5x uncached at 512 tokens.

    OMP_NUM_THREADS=2 python benchmarks/bench_generation.py [--threads 2] [--presets tiny gpt2] [--new-tokens 256 512]
    python benchmarks/bench_generation.py --presets checkpoint --checkpoint build/pretrained/best_model.pt
"""

if __name__ == '__main__':  # run as a script: a Ctrl-C while the libraries below load is one line, exit 130
    from gpt_nb.commands import answer_ctrl_c_at_start

    answer_ctrl_c_at_start(__file__.rsplit('/', 1)[-1])

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM
from transformers.utils import logging as hf_logging

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import (  # the benchmarks' shared helpers
    add_bench_options,
    apply_bench_options,
    bench_parser,
    benchmark_command,
    check_settings,
    machine_line,
    run_benchmark,
)

from gpt_nb.checkpoint import load_pretrained
from gpt_nb.cli import load_model_option
from gpt_nb.generation import generate
from gpt_nb.config import PRESETS, GPTConfig, SettingError, check_choice, check_positive
from gpt_nb.huggingface import save_pretrained
from gpt_nb.model import GPT
from gpt_nb.static_decoding import forward_only

PROMPT_LEN = 16
SHIPPED = 'shipped'  # the model the package ships (load_pretrained('tinystories')), in --presets
CHECKPOINT = 'checkpoint'  # the model of --checkpoint, in --presets


def interleaved_best(fns: dict, repeats: int) -> tuple[dict, dict]:
    "Fastest time (seconds) and last result of each function, running them in turn `repeats` times (fair under load)."
    times, results = {k: [] for k in fns}, {}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {k: min(v) for k, v in times.items()}, results


@torch.inference_mode()
def estimated_uncached_seconds(model: GPT, prompt: torch.Tensor, n: int, points: int = 8) -> float:
    """Time of uncached greedy decoding of `n` tokens, from forward passes timed at `points` window lengths.

    Uncached decoding runs one forward pass over the whole text per new token, so its time is the sum of the
    forward times at lengths T0 .. T0+n-1; we time a few of them and interpolate linearly (quadratic cost, cheaply).
    """
    T0 = prompt.shape[1]
    text = torch.randint(0, model.config.vocab_size, (1, T0 + n), generator=torch.Generator().manual_seed(1))
    lengths = np.unique(np.linspace(T0, T0 + n - 1, points).round().astype(int))
    times = []
    for L in lengths:
        start = time.perf_counter()
        model(text[:, :L], last_only=True)
        times.append(time.perf_counter() - start)
    return float(np.interp(np.arange(T0, T0 + n), lengths, times).sum())


def is_rotary_gpt2(config: GPTConfig) -> bool:
    "Whether `config` is GPT-2's architecture with rotary positions and biases (`gpt2-rope`): what GPT-NeoX can hold."
    return config.changes_from_gpt2() == {'position': 'rope'} and config.bias


def has_peer(config: GPTConfig) -> bool:
    "Whether transformers can hold `config`'s model: GPT-2's architecture (GPT2LMHeadModel) or `is_rotary_gpt2`."
    return not config.changes_from_gpt2() or is_rotary_gpt2(config)


def rotary_peer(model: GPT) -> GPTNeoXForCausalLM:
    """transformers' GPT-NeoX with `model`'s weights: a GPT-2 block with rotary positions once its residual is made
    sequential. Both rotate each head's halves (x[i], x[i + head_dim/2]) by base-10,000 angles; GPT-NeoX lays its
    fused projection out head by head (q, k, v of head 0, then head 1 …) where gpt_nb lays out all queries first."""
    config = model.config
    if not is_rotary_gpt2(config):
        raise ValueError(f'GPT-NeoX cannot hold {config}: it holds GPT-2 with rotary positions and biases')
    peer = GPTNeoXForCausalLM(
        GPTNeoXConfig(
            vocab_size=config.vocab_size,
            hidden_size=config.d_model,
            num_hidden_layers=config.n_layer,
            num_attention_heads=config.n_head,
            intermediate_size=4 * config.d_model,
            hidden_act='gelu_pytorch_tanh',  # GPT-2's tanh GELU, gpt_nb's 'gelu'
            max_position_embeddings=config.context_length,
            rope_parameters=dict(rope_type='default', rope_theta=10000.0, partial_rotary_factor=1.0),
            use_parallel_residual=False,
            tie_word_embeddings=config.tie_embeddings,
            layer_norm_eps=1e-5,
        )
    )
    ours = model.state_dict()
    heads, head_dim = config.n_head, config.head_dim
    state = {
        'gpt_neox.embed_in.weight': ours['embed.tok.weight'],
        'gpt_neox.final_layer_norm.weight': ours['ln_f.weight'],
        'gpt_neox.final_layer_norm.bias': ours['ln_f.bias'],
        'lm_head.weight': ours['lm_head.weight'],
    }
    names = {
        'ln1': 'input_layernorm',
        'ln2': 'post_attention_layernorm',
        'attn.proj': 'attention.dense',
        'mlp.fc': 'mlp.dense_h_to_4h',
        'mlp.proj': 'mlp.dense_4h_to_h',
    }
    for layer in range(config.n_layer):
        ours_prefix, theirs_prefix = f'blocks.{layer}.', f'gpt_neox.layers.{layer}.'
        for kind in ('weight', 'bias'):
            for our_name, their_name in names.items():
                state[f'{theirs_prefix}{their_name}.{kind}'] = ours[f'{ours_prefix}{our_name}.{kind}']
            fused = ours[f'{ours_prefix}attn.qkv.{kind}']  # rows: (q, k or v, head, feature)
            by_head = fused.reshape(3, heads, head_dim, -1).transpose(0, 1)  # rows: (head, q k or v, feature)
            state[f'{theirs_prefix}attention.query_key_value.{kind}'] = by_head.reshape(fused.shape)
    peer.load_state_dict(state)
    return peer.eval()


def build(preset: str, max_new: int, checkpoint_model: GPT | None = None) -> tuple[GPT, object, str]:
    """A gpt_nb model for `preset` (random weights), or the model the package ships for 'shipped' (its trained
    weights, in float32) or `checkpoint_model` for 'checkpoint', and transformers' copy of the same weights."""
    note = ''
    if preset == SHIPPED:
        model = load_pretrained('tinystories').model.float().eval()
    elif preset == CHECKPOINT:
        model = checkpoint_model.float().eval()
    else:
        config = GPTConfig.from_preset(preset)
        if config.context_length < PROMPT_LEN + max_new:  # both must fit the whole text in one window
            note = f' (context_length raised from {config.context_length} to {PROMPT_LEN + max_new} to fit the text)'
            config = GPTConfig.from_preset(preset, context_length=PROMPT_LEN + max_new)
        torch.manual_seed(0)
        model = GPT(config).eval()
    if is_rotary_gpt2(model.config):
        hf = rotary_peer(model)
        note += ' (peer: GPTNeoXForCausalLM, sequential residual)'
    else:
        with tempfile.TemporaryDirectory() as d:
            save_pretrained(model, d)
            hf = GPT2LMHeadModel.from_pretrained(d).eval()
    hf.generation_config.eos_token_id = None  # decode exactly max_new_tokens, like stop_tokens=[] below
    hf.generation_config.pad_token_id = 0
    return model, hf, note


def forward_generate(model: GPT, prompt: torch.Tensor, n: int) -> torch.Tensor:
    "Greedy decoding with the cache, every step through the model's own forward (no traced step)."
    with forward_only():
        return generate(model, prompt, n, temperature=0, stop_tokens=[])


def lengths_for(model: GPT, new_tokens: list[int]) -> list[int]:
    "The lengths to time: those asked for, a trained model's capped at what its context holds after the prompt."
    room = model.config.context_length - PROMPT_LEN
    return sorted({min(n, room) for n in new_tokens})


@benchmark_command(__file__)
def main(argv=None) -> int:
    parser = bench_parser(__file__, __doc__.splitlines()[0])
    add_bench_options(
        parser,
        threads=1,
        threads_help='torch threads (one-token decoding steps gain little from more, '
        'and a shared CPU makes extra threads stall)',
    )
    parser.add_argument(
        '--presets',
        nargs='+',
        default=[SHIPPED, 'tiny', 'gpt2'],
        help=f"'{SHIPPED}' (the trained model the package ships), '{CHECKPOINT}' (--checkpoint's) and names from "
        'gpt_nb.config.PRESETS (random weights) (default: %(default)s)',
    )
    parser.add_argument('--checkpoint', type=Path, help=f"a checkpoint to time as '{CHECKPOINT}' in --presets")
    parser.add_argument('--new-tokens', type=int, nargs='+', default=[256, 512])
    parser.add_argument('--repeats', type=int, default=2, help='best of this many timed runs (default: %(default)s)')
    parser.add_argument(
        '--estimate-uncached',
        nargs='*',
        default=['gpt2'],
        metavar='PRESET',
        help='presets whose uncached time is estimated from 8 timed forward passes instead of a full '
        'run (it is quadratic in length: minutes for gpt2) (default: %(default)s)',
    )
    args = parser.parse_args(argv)

    def checks():
        for preset in args.presets:
            check_choice('presets', preset, [SHIPPED, CHECKPOINT, *PRESETS])
        if (CHECKPOINT in args.presets) != (args.checkpoint is not None):
            raise SettingError('checkpoint', f"is needed with '{CHECKPOINT}' in --presets, and only then")
        for preset in args.estimate_uncached:
            check_choice('estimate_uncached', preset, PRESETS)
        for tokens in args.new_tokens:
            check_positive('new_tokens', tokens)
        check_positive('repeats', args.repeats)

    check_settings(parser, checks)
    apply_bench_options(parser, args)
    checkpoint_model = None
    if args.checkpoint is not None:
        hint = 'train one with gpt-nb-train-tiny-stories, or time the shipped model with --presets shipped'
        checkpoint_model = load_model_option(parser, args, torch.device('cpu'), missing_hint=hint).model
        if not has_peer(checkpoint_model.config):
            changes = ', '.join(
                f'{name}={value!r}' for name, value in checkpoint_model.config.changes_from_gpt2().items()
            )
            parser.error(f'--checkpoint {args.checkpoint}: transformers has no model to compare with ({changes})')
    return run_benchmark(parser, lambda: compare(args, checkpoint_model))


def compare(args, checkpoint_model: GPT | None):
    "Time greedy decoding three ways for each preset and length; print the figures."
    hf_logging.set_verbosity_error()
    print(machine_line())
    print(
        f'interop threads {torch.get_num_interop_threads()}; greedy decoding, batch 1, prompt {PROMPT_LEN} tokens, '
        f'best of {args.repeats}, interleaved with transformers {transformers.__version__}'
    )
    print('note: the CPU may be shared with other processes; compare figures within one run only\n')
    header = (
        f"{'model':>10} {'new':>4} | {'cached':>9} {'forward':>9} {'uncached':>9} {'hf':>9} tok/s | "
        f"{'cached/hf':>9} {'cached/forward':>14} {'cached/uncached':>15} | same tokens as hf"
    )
    print(header)
    print('-' * len(header))
    for preset in args.presets:
        model, hf, note = build(preset, max(args.new_tokens), checkpoint_model)
        if note:
            print(f'{preset}{note}')
        vocab = model.config.vocab_size
        prompt = torch.randint(0, vocab, (1, PROMPT_LEN), generator=torch.Generator().manual_seed(0))
        ones = torch.ones_like(prompt)
        with torch.inference_mode():  # warm up every path once
            generate(model, prompt, 8, temperature=0, stop_tokens=[])
            with forward_only():
                generate(model, prompt, 8, temperature=0, stop_tokens=[])
            generate(model, prompt, 8, temperature=0, stop_tokens=[], use_cache=False)
            hf.generate(prompt, attention_mask=ones, max_new_tokens=8, do_sample=False, use_cache=True)
        for n in lengths_for(model, args.new_tokens):
            times, out = interleaved_best(
                {
                    'cached': lambda: generate(model, prompt, n, temperature=0, stop_tokens=[]),
                    'forward': lambda: forward_generate(model, prompt, n),
                    'hf': lambda: hf.generate(
                        prompt, attention_mask=ones, max_new_tokens=n, do_sample=False, use_cache=True
                    ),
                },
                args.repeats,
            )
            if preset in args.estimate_uncached:
                t_uncached, mark = estimated_uncached_seconds(model, prompt, n), '*'
            else:
                t_uncached, mark = (
                    interleaved_best(
                        {'u': lambda: generate(model, prompt, n, temperature=0, stop_tokens=[], use_cache=False)}, 1
                    )[0]['u'],
                    ' ',
                )
            t_cached, t_forward, t_hf = times['cached'], times['forward'], times['hf']
            same = 'yes' if torch.equal(out['cached'], out['hf']) and torch.equal(out['forward'], out['hf']) else 'NO'
            print(
                f'{preset:>10} {n:>4} | {n / t_cached:9.1f} {n / t_forward:9.1f} {n / t_uncached:8.1f}{mark} '
                f'{n / t_hf:9.1f}       | {t_hf / t_cached:8.2f}x {t_forward / t_cached:13.2f}x '
                f'{t_uncached / t_cached:14.2f}x | {same}',
                flush=True,
            )
    estimated = sorted(set(args.estimate_uncached) & set(args.presets))
    if estimated:
        print(
            f'* uncached time estimated from forward passes timed at 8 lengths ({", ".join(estimated)}); '
            'pass --estimate-uncached with no preset for full runs'
        )


if __name__ == '__main__':
    sys.exit(main())
