"""Each fix to a hot path, before and after, timed in the same run (interleaved, best of several rounds).

    python benchmarks/bench_hot_paths.py [--rounds 7] [--threads 1]

The "before" of each row is the code as it was, written out here (or switched back by an argument) so that both
run side by side on the same machine at the same moment:

- Muon's step: the momentum buffer made once, against `state.setdefault('momentum', torch.zeros_like(p))`, whose
  default argument allocates (and zeroes) a new matrix for every parameter at every step;
- rotary positions: the cosines and sines looked up in a table made once, against computing them again in every
  layer at every forward pass (one token of a cached decode, the `gpt2-rope` architecture);
- a decoding step of the shipped model: without the check of the ids it drew itself, against with it;
- sampling: the next-token logits in float32, against float64;
- attention in training: q, k and v unbound from the view of the fused projection, then each transposed, against
  one permute of that view, whose gradient is stacked heads first and then copied back into the view's order; and
  what that costs where there is no gradient, in chapter 06b's traced decoding step (two more operations a layer);
- one process: the loss and the stop flags returned as they are, against packing them into a tensor to reduce.
"""

if __name__ == '__main__':  # run as a script: a Ctrl-C while the libraries below load is one line, exit 130
    from gpt_nb.commands import answer_ctrl_c_at_start

    answer_ctrl_c_at_start(__file__.rsplit('/', 1)[-1])

import copy, sys, time, types
from pathlib import Path

import torch

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

from gpt_nb.attention import CausalSelfAttention
from gpt_nb.checkpoint import load_pretrained
from gpt_nb.config import ARCHITECTURES, GPTConfig, check_positive
from gpt_nb.model import GPT
from gpt_nb.optim import Muon, orthogonalize
from gpt_nb.sampling import sample_next_token
from gpt_nb.static_decoding import traced_step
from gpt_nb.training import reduce_across_ranks


class MuonAsBefore(Muon):
    "Muon's step as it was: a new zeroed matrix for every parameter at every step, as setdefault's argument."

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group['params']:
                momentum = self.state[p].setdefault('momentum', torch.zeros_like(p))
                momentum.lerp_(p.grad, 1 - group['momentum'])
                update = p.grad.lerp(momentum, group['momentum']) if group['nesterov'] else momentum
                scale = max(1.0, p.shape[0] / p.shape[1]) ** 0.5
                p.mul_(1 - group['lr'] * group['weight_decay'])
                p.add_(orthogonalize(update, group['ns_steps'], torch.float32), alpha=-group['lr'] * scale)


class AttentionAsBefore(CausalSelfAttention):
    "The queries, keys and values as they were: one view of the fused projection, permuted to put the heads first."

    def queries_keys_values(self, x, positions=None):
        B, T, _ = x.shape
        return self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)


def best_seconds(functions: dict, rounds: int, calls: int) -> dict:
    "Fastest time per call of each function, `calls` calls a round, the functions taking turns each round."
    best = {name: float('inf') for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(calls):
                function()
            best[name] = min(best[name], (time.perf_counter() - start) / calls)
    return best


def muon_step(optimizer_class) -> callable:
    "One step of `optimizer_class` on the matrices of the tiny model's blocks, with gradients already in place."
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset('tiny', vocab_size=4096, context_length=256))
    matrices = [p for name, p in model.named_parameters() if p.dim() == 2 and name.startswith('blocks')]
    for p in matrices:
        p.grad = torch.randn_like(p)
    optimizer = optimizer_class(matrices, lr=0.02, weight_decay=0.1)
    return optimizer.step


def rope_decode_step(table: bool) -> callable:
    "One cached one-token forward of the tiny `gpt2-rope` model, its rotary angles from a table or computed."
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset('tiny', vocab_size=4096, context_length=256, **ARCHITECTURES['gpt2-rope']))
    model.eval()
    for block in model.blocks:
        block.attn.rotary.max_positions = 256 if table else None
    return decode_step(model, check_ids=False)


def at_position_100(model: GPT, forward) -> callable:
    "One call of `forward(token, cache)`: one new token after 100 cached ones of `model`, batch 1, no gradient."
    cache = model.new_cache(1)
    token = torch.tensor([[1]])

    @torch.inference_mode()
    def step():
        cache.length = 100
        forward(token, cache)

    return step


def decode_step(model: GPT, check_ids: bool) -> callable:
    "One cached one-token forward at position 100, as generation calls it, with or without the ids' check."
    return at_position_100(model, lambda token, cache: model(token, cache=cache, last_only=True, check_ids=check_ids))


def sampling(dtype: torch.dtype) -> callable:
    "Draw one token at temperature 0.8 and top-k 200 from one row of 4,096 logits of `dtype`."
    logits = torch.randn(1, 4096).to(dtype)
    generator = torch.Generator().manual_seed(0)
    return lambda: sample_next_token(logits, 0.8, 200, None, generator)


def attention_step(layer_class) -> callable:
    "Forward and backward of one attention layer of the tiny model on a training batch of 16 windows of 256."
    torch.manual_seed(0)
    layer = layer_class(GPTConfig.from_preset('tiny', vocab_size=4096, context_length=256))
    x = torch.randn(16, 256, layer.qkv.in_features, requires_grad=True)
    gradient = torch.randn_like(x)

    def step():
        layer(x).backward(gradient)
        layer.zero_grad(set_to_none=True)

    return step


def traced_decode_step(model: GPT, attention_class) -> callable:
    "One token through chapter 06b's traced step of `model`, its attention layers made `attention_class`, at 100."
    model = copy.deepcopy(model)
    for block in model.blocks:
        block.attn.__class__ = attention_class  # the same weights; only queries_keys_values differs
    return at_position_100(model, traced_step(model, 1))


def reduce_before(run, loss: float, *reasons: bool):
    "The loss and flags of one process, packed into a tensor as if for an all-reduce, then read back."
    flags = torch.tensor([loss, *reasons], device=run.device, dtype=torch.float64)
    return flags[0].item() / run.world.world_size, (flags[1:] > 0).tolist()


def report(args):
    "Time each fix against what it replaced; print a row each."
    print(machine_line())
    print(f'best of {args.rounds} interleaved rounds; times per call\n')
    shipped = load_pretrained('tinystories').model.float().eval()
    one_process = types.SimpleNamespace(device=torch.device('cpu'), world=types.SimpleNamespace(world_size=1))
    rows = [
        ("Muon's step, tiny model's block matrices", muon_step(MuonAsBefore), muon_step(Muon), 20),
        ('one decoded token, gpt2-rope (tiny)', rope_decode_step(False), rope_decode_step(True), 200),
        ('one decoded token, the shipped model', decode_step(shipped, True), decode_step(shipped, False), 200),
        ('sampling one token (top-k 200, 4,096 logits)', sampling(torch.float64), sampling(torch.float32), 500),
        (
            'attention forward+backward, 16 x 256 (tiny)',
            attention_step(AttentionAsBefore),
            attention_step(CausalSelfAttention),
            5,
        ),
        (
            'traced decode, attention reshape (shipped)',
            traced_decode_step(shipped, AttentionAsBefore),
            traced_decode_step(shipped, CausalSelfAttention),
            200,
        ),
        (
            'one process: loss and flags after a step',
            lambda: reduce_before(one_process, 2.5, False, False, True),
            lambda: reduce_across_ranks(one_process, 2.5, False, False, True),
            2000,
        ),
    ]
    print(f'{"hot path":<46} | {"before":>10} | {"after":>10} | after/before')
    for name, before, after, calls in rows:
        best = best_seconds(dict(before=before, after=after), args.rounds, calls)
        print(
            f'{name:<46} | {best["before"] * 1e6:8.1f}µs | {best["after"] * 1e6:8.1f}µs | '
            f'{best["after"] / best["before"]:.2f}x',
            flush=True,
        )


@benchmark_command(__file__)
def main(argv=None) -> int:
    parser = bench_parser(__file__, __doc__)
    parser.add_argument('--rounds', type=int, default=7, help='interleaved rounds, the best kept (default: 7)')
    add_bench_options(parser, threads=1, threads_help='torch threads')
    args = parser.parse_args(argv)
    check_settings(parser, lambda: check_positive('rounds', args.rounds))
    apply_bench_options(parser, args)
    return run_benchmark(parser, lambda: report(args))


if __name__ == '__main__':
    sys.exit(main())
