"""Changes to a training run that the demo's tries make and `TrainConfig` has no setting for (demo_recipe.py).

    python benchmarks/recipe_changes.py   # each change a try can name, and what it does

Each is a context manager: what it changes holds for the models and the runs made inside it, and the library is as
it was after, so a try can never leak into the next one or into the library. `CHANGES` names them for `TRIES`.
"""

if __name__ == '__main__':  # run as a script: a Ctrl-C while the libraries below load is one line, exit 130
    from gpt_nb.commands import answer_ctrl_c_at_start

    answer_ctrl_c_at_start(__file__.rsplit('/', 1)[-1])

import contextlib, math, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import bench_parser, benchmark_command  # the benchmarks' shared helpers

import gpt_nb.modern  # noqa: F401  (registers chapter 09's layers: the sixth round's architectures use them)
import gpt_nb.optim
import gpt_nb.run_setup
import gpt_nb.training
from gpt_nb.attention import CausalSelfAttention
from gpt_nb.config import ARCHITECTURES
from gpt_nb.model import GPT
from gpt_nb.train_config import step_seed

# The sixth round's architectures: the demo's (GPT-2 with rotary positions) with one more of chapter 09's changes
TRY_ARCHITECTURES = {
    'gpt2-rope+relu2': ARCHITECTURES['gpt2-rope'] | dict(mlp='relu2'),
    'gpt2-rope+qk_norm': ARCHITECTURES['gpt2-rope'] | dict(qk_norm=True),
    'gpt2-rope+untied': ARCHITECTURES['gpt2-rope'] | dict(tie_embeddings=False),
}


@contextlib.contextmanager
def try_architectures():
    "TRY_ARCHITECTURES among the ARCHITECTURES a run may ask for, while a try trains; the library's own list after."
    ARCHITECTURES.update(TRY_ARCHITECTURES)
    try:
        yield
    finally:
        for name in TRY_ARCHITECTURES:
            del ARCHITECTURES[name]


@contextlib.contextmanager
def patched(owner, name: str, replacement):
    "`owner.name` is `replacement` inside, and what it was after."
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield original
    finally:
        setattr(owner, name, original)


@contextlib.contextmanager
def finishing(owner: type, finish):
    "Objects of class `owner` (built from a config) made inside are handed to `finish` once their own __init__ ends."
    original = owner.__init__

    def init_then_finish(self, config):
        original(self, config)
        finish(self)

    with patched(owner, '__init__', init_then_finish):
        yield


def residual_dropout_only():
    """Attention layers built inside skip dropout on their weights and keep only the residual stream's: dropout on
    the weights moves PyTorch's attention off its fused CPU kernel (1.3-2.1x a step), dropout on the stream costs
    1.1-1.2x."""

    def without_weight_dropout(attention: CausalSelfAttention):
        attention.dropout = 0.0  # the probability its forward gives the fused kernel

    return finishing(CausalSelfAttention, without_weight_dropout)


def zero_projections():
    """Models built inside start with every output projection (attention's and the MLP's `proj`) at zero, so each
    block starts as the identity and the residual stream is the embeddings' alone (as modded-nanogpt starts them)."""

    def with_zero_projections(model: GPT):
        for name, weight in model.named_parameters():
            if name.endswith('proj.weight'):
                torch.nn.init.zeros_(weight)

    return finishing(GPT, with_zero_projections)


def logit_softcap(cap: float = 15.0):
    """Models built inside squash their logits into (-cap, cap) with `cap * tanh(logits / cap)` (Gemma 2's logit
    soft-capping, which modded-nanogpt uses): large logits cost less confidence, small ones are left almost as they
    are. A forward hook on the output layer, so training, evaluation and sampling all see the capped logits."""

    def with_softcap(model: GPT):
        model.lm_head.register_forward_hook(lambda layer, inputs, logits: cap * torch.tanh(logits / cap))

    return finishing(GPT, with_softcap)


def lr_at_sqrt_cooldown(progress, max_lr, min_lr=0.0, warmup=0.1, cooldown=None):
    """`gpt_nb.optim.lr_at` with the cooldown's straight line replaced by 1 - sqrt of the cooldown done (Hägele et
    al., 2024: it ends lower than the line, from the same peak)."""
    if progress < warmup or cooldown is None:
        return gpt_nb.optim.lr_at(progress, max_lr, min_lr, warmup, cooldown)
    left = gpt_nb.optim.lr_at(progress, 1.0, 0.0, warmup, cooldown)  # the straight line: 1 at its start, 0 at the end
    return min_lr + (max_lr - min_lr) * (1.0 - math.sqrt(1.0 - left))


@contextlib.contextmanager
def sqrt_cooldown():
    "Runs trained inside cool down along 1 - sqrt instead of a straight line."
    with patched(gpt_nb.training, 'lr_at', lr_at_sqrt_cooldown):
        yield


def smear():
    """Models built inside add to each position's embedding the previous position's, times a learned weight per
    channel that starts at zero (modded-nanogpt's "smear", RWKV's token shift): the previous token, which chapter
    08b's previous-token head has to find by attention first, is in the residual stream from the start. For training
    and evaluation on whole windows only: a cached decoding step would not see the token before it."""

    def add_previous(embeddings, inputs, x):
        return torch.cat([x[:, :1], x[:, 1:] + embeddings.smear * x[:, :-1]], dim=1)

    def with_smear(model: GPT):
        model.embed.smear = torch.nn.Parameter(torch.zeros(model.config.d_model))  # 1-D: AdamW, no decay
        model.embed.register_forward_hook(add_previous)

    return finishing(GPT, with_smear)


def undecayed_embedding():
    """Runs started inside leave the token embedding (tied to the output layer) out of weight decay; the blocks'
    matrices still decay."""
    original = gpt_nb.run_setup.configure_optimizer

    def configure_without_embedding_decay(model, *args, **kwargs):
        optimizers = original(model, *args, **kwargs)
        embedding = model.embed.tok.weight
        decayed, undecayed = optimizers[-1].param_groups  # configure_optimizer's AdamW: matrices, then the rest
        decayed['params'] = [param for param in decayed['params'] if param is not embedding]
        undecayed['params'].append(embedding)
        return optimizers

    return patched(gpt_nb.run_setup, 'configure_optimizer', configure_without_embedding_decay)


def noisy_inputs(fraction: float = 0.05):
    """Runs started inside replace `fraction` of the input tokens of every training batch by random ones (the
    targets stay): a changed copy of the stories at every pass, against memorising them."""
    original = gpt_nb.run_setup.story_batches

    def noisy_story_batches(tokens, batch_size, context_length, seed, device):
        batches = original(tokens, batch_size, context_length, seed, device)
        vocab_size = int(tokens.max()) + 1

        def noisy(step, part, parts):
            inputs, targets = batches(step, part, parts)
            generator = torch.Generator().manual_seed(step_seed(seed, step, 2_000_000 + part))  # not the windows' draw
            replaced = torch.rand(inputs.shape, generator=generator) < fraction
            random_tokens = torch.randint(vocab_size, inputs.shape, generator=generator)
            return torch.where(replaced.to(inputs.device), random_tokens.to(inputs.device), inputs), targets

        return noisy

    return patched(gpt_nb.run_setup, 'story_batches', noisy_story_batches)


def fewer_newton_schulz_steps(steps: int = 3):
    """Muon optimisers made inside orthogonalise with `steps` Newton-Schulz iterations instead of 5: Muon is about 14%
    of the demo's step on two threads, and each iteration a fifth of it."""
    original = gpt_nb.optim.Muon.__init__

    def init_with_fewer_steps(self, params, **settings):
        original(self, params, **(settings | dict(ns_steps=steps)))

    return patched(gpt_nb.optim.Muon, '__init__', init_with_fewer_steps)


def value_residual(start: float = 0.5):
    """Models built inside mix into every later layer's attention values the first layer's values of the same tokens,
    `mix * v + (1 - mix) * v_first`, with a learned `mix` per layer that starts at `start` (value residual learning,
    Zhou et al., 2024, which modded-nanogpt uses): the first layer's view of each token stays within reach of every
    later layer. Each forward runs the first layer first, so cached decoding sees the same mix."""

    def with_value_residual(model: GPT):
        first_values = {}  # the first layer's values of the forward running now
        for index, block in enumerate(model.blocks):
            attention = block.attn
            original = attention.queries_keys_values
            if index == 0:

                def keep_first(x, positions=None, original=original):
                    q, k, v = original(x, positions)
                    first_values['v'] = v
                    return q, k, v

                attention.queries_keys_values = keep_first
            else:
                attention.value_mix = torch.nn.Parameter(torch.tensor(start))  # 0-D: AdamW, no decay

                def mix_first(x, positions=None, original=original, attention=attention):
                    q, k, v = original(x, positions)
                    mixed = attention.value_mix * v + (1 - attention.value_mix) * first_values['v']
                    return q, k, mixed

                attention.queries_keys_values = mix_first

    return finishing(GPT, with_value_residual)


def embedding_shortcut():
    """Models built inside give every block after the first its input as `scale * x + weight * x0`, where x0 is the
    embeddings' output and `scale`, `weight` are learned per block, starting at 1 and 0 (modded-nanogpt's block
    lambdas): the tokens themselves stay within reach of every layer however the stream has moved."""

    def with_shortcut(model: GPT):
        embedded = {}  # the embeddings' output of the forward running now
        model.embed.register_forward_hook(lambda embeddings, inputs, x: embedded.update(x0=x))
        for block in model.blocks[1:]:
            block.stream_scale = torch.nn.Parameter(torch.tensor(1.0))  # 0-D: AdamW, no decay
            block.embedding_weight = torch.nn.Parameter(torch.tensor(0.0))

            def mix_in(block, args, kwargs):
                x, *rest = args
                return (block.stream_scale * x + block.embedding_weight * embedded['x0'], *rest), kwargs

            block.register_forward_pre_hook(mix_in, with_kwargs=True)

    return finishing(GPT, with_shortcut)


def muon_momentum_warmup(first: float = 0.85, steps: int = 300):
    """Runs trained inside raise Muon's momentum from `first` to its 0.95 over the first `steps` steps (as
    modded-nanogpt does): early gradients change fast, and a shorter memory follows them."""
    original = gpt_nb.training.set_learning_rate

    def set_rate_and_momentum(run):
        rate = original(run)
        for optimizer in run.optimizers:
            if isinstance(optimizer, gpt_nb.optim.Muon):
                for group in optimizer.param_groups:
                    group['momentum'] = first + (0.95 - first) * min(1.0, run.step / steps)
        return rate

    return patched(gpt_nb.training, 'set_learning_rate', set_rate_and_momentum)


CHANGES = dict(  # the changes a try may name in its settings, as `changes=(name, ...)`
    residual_dropout_only=residual_dropout_only,
    zero_projections=zero_projections,
    logit_softcap=logit_softcap,
    sqrt_cooldown=sqrt_cooldown,
    smear=smear,
    undecayed_embedding=undecayed_embedding,
    noisy_inputs=noisy_inputs,
    fewer_newton_schulz_steps=fewer_newton_schulz_steps,
    value_residual=value_residual,
    embedding_shortcut=embedding_shortcut,
    muon_momentum_warmup=muon_momentum_warmup,
)


@benchmark_command(__file__)
def main(argv=None) -> int:
    bench_parser(__file__, __doc__).parse_args(argv)
    for name, change in CHANGES.items():
        print(f'{name}: {" ".join(change.__doc__.split())}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
