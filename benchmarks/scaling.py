"""Scaling-law sweep: models of several sizes trained at several FLOP budgets, then the laws fitted (chapters 12, 12a).

    python benchmarks/scaling.py                   # chapter 12's sweep: 6 sizes x 4 budgets, 2 processes (~35 min)
    python benchmarks/scaling.py --predict         # then predict a run at 4x the largest budget, and train it
    python benchmarks/scaling.py --device cuda --budgets 1e14,3e14,1e15 --sizes 4x256x4,6x384x6,8x512x8,12x768x12

Every run is gpt_nb.scaling.train_at_budget: chapter 09's CPU recipe (GPT-2 with rotary positions, Muon, a 2,048-token
BPE on the bundled stories) at one size, for the steps that spend its budget, the learning rate annealed to zero at
the last one, measured in bits per byte on all 1,000 validation stories. Each run is appended to OUT/sweep.csv when it
ends, and a run already there (size, budget, seed) is not trained again: stop the sweep and start it again to resume.
`--jobs N` trains N runs at a time in separate processes of one thread each.

Then it prints the runs and fits what the chapter fits: each budget's IsoFLOP parabola and its optimal size, the
power laws N_opt ~ C^a and D_opt ~ C^b, and L(N, D) = E + A/N^alpha + B/D^beta (Chinchilla's approach 3) with N
counted without and with the embeddings; the figures go to OUT/sweep.png. `--predict` writes OUT/prediction.json
(once: an existing prediction is never rewritten), trains that run into OUT/held_out.csv and prints the miss.
"""

if __name__ == '__main__':  # run as a script: a Ctrl-C while the libraries below load is one line, exit 130
    from gpt_nb.commands import answer_ctrl_c_at_start

    answer_ctrl_c_at_start(__file__.rsplit('/', 1)[-1])

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).parent))
from bench_model import (
    add_bench_options,
    apply_bench_options,
    bench_parser,
    benchmark_command,
    machine_line,
    run_benchmark,
)

from gpt_nb.config import check_positive
from gpt_nb.scaling import BUDGETS, COLUMNS, SIZES, parse_size, plot_loss_against_compute, sweep
from gpt_nb.scaling_fits import (
    SURFACE,
    allocation_exponents,
    fit_loss_surface,
    fit_power_law,
    frontier_optima,
    isoflop_optima,
    plot_frontier,
    plot_isoflops,
    predict_run,
    surface_error,
)

RESULTS = Path(__file__).parent / 'results' / 'scaling'
HELD_OUT_CANDIDATES = ('5x160x5', '6x192x6')  # sizes beyond chapter 12's, for a prediction at a bigger budget


def budget_list(text: str) -> list[float]:
    "'1e12,2e12' as FLOP budgets; argparse's error (one line naming the flag) for anything not positive and finite."
    try:
        budgets = [float(part) for part in text.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(f'must be FLOP counts separated by commas, like 1e12,2e12: {text!r}')
    if not all(math.isfinite(budget) and budget > 0 for budget in budgets):
        raise argparse.ArgumentTypeError(f'every budget must be a positive, finite number of FLOPs: {text!r}')
    return budgets


def size_list(text: str) -> list[str]:
    "'2x32x2,2x64x4' as sizes (layers x width x heads); argparse's error for one that is not."
    sizes = text.split(',')
    for size in sizes:
        try:
            parse_size(size)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error))
    return sizes


@benchmark_command(__file__)
def main(argv=None) -> int:
    parser = bench_parser(__file__, __doc__)
    add_bench_options(parser, seed=0, seed_help='seed of every run', device=True)
    parser.add_argument('--budgets', type=budget_list, default=list(BUDGETS), help='training FLOPs of each run')
    parser.add_argument('--sizes', type=size_list, default=list(SIZES), help='LAYERSxWIDTHxHEADS of each model')
    parser.add_argument('--jobs', type=int, default=2, help='runs trained at once, one process and thread each')
    parser.add_argument('--out-dir', default=str(RESULTS), help='where sweep.csv and the figures go')
    parser.add_argument('--predict', action='store_true', help='predict a run at 4x the largest budget, then train it')
    parser.add_argument('--max-stories', type=int, default=None, help='train on at most this many stories (tests)')
    parser.add_argument('--eval-stories', type=int, default=1000, help='validation stories to measure on')
    parser.add_argument('--part', type=int, default=None, help=argparse.SUPPRESS)  # a worker of --jobs: its share
    args = parser.parse_args(argv)
    args.given = [str(arg) for arg in (sys.argv[1:] if argv is None else argv)]  # what --jobs passes its workers
    for name in ('jobs', 'eval_stories'):
        if not (isinstance(getattr(args, name), int) and getattr(args, name) >= 1):
            parser.error(f'--{name.replace("_", "-")} must be a whole number >= 1, got {getattr(args, name)}')
    if args.max_stories is not None:
        try:
            check_positive('max_stories', args.max_stories)
        except ValueError:
            parser.error(f'--max-stories must be a whole number >= 1, got {args.max_stories}')
    if not args.out_dir.strip():
        parser.error('--out-dir is empty: name a folder (see --help)')
    device = apply_bench_options(parser, args)
    return run_benchmark(parser, lambda: run_sweep(args, device))


def run_sweep(args, device) -> int:
    "Train what the CSV lacks (in `--jobs` processes), then report and fit; with --predict, predict and train one more."
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / 'sweep.csv'
    settings = dict(device=str(device), eval_stories=args.eval_stories)
    if args.max_stories:
        settings['max_stories'] = args.max_stories
    if args.part is not None:  # a worker: its share of the runs, then done
        sweep(args.budgets, args.sizes, csv_path, args.seed, args.part, args.jobs, **settings)
        return 0
    if not csv_path.exists():
        csv_path.write_text(','.join(COLUMNS) + '\n')  # before the workers, so that none writes a second header
    if args.jobs == 1:
        rows = sweep(args.budgets, args.sizes, csv_path, args.seed, **settings)
    else:
        status = run_workers(args)
        if status:
            print(
                f'scaling.py: a sweep process failed (exit {status}); the runs it finished are in {csv_path}',
                file=sys.stderr,
            )
            return 1
        rows = sweep(args.budgets, args.sizes, csv_path, args.seed, **settings)  # reads them all: nothing left to train
    print(machine_line())
    report(rows, out)
    if args.predict:
        predict_and_train(rows, args, out, settings)
    return 0


def run_workers(args) -> int:
    "Run the sweep in `--jobs` processes of one thread each, this script again with --part; the first failure's status."
    argv = [arg for arg in args.given if arg != '--predict']
    environment = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    command = [sys.executable, __file__, *argv, '--threads', '1']
    workers = [subprocess.Popen([*command, '--part', str(part)], env=environment) for part in range(args.jobs)]
    statuses = [worker.wait() for worker in workers]
    if 130 in statuses or -2 in statuses:
        raise KeyboardInterrupt
    return next((status for status in statuses if status), 0)


def report(rows: list[dict], out: Path) -> None:
    "Print the runs, the IsoFLOP optima, the power laws and the surface fits; save the figures to OUT/sweep.png."
    print(f'{len(rows)} runs')
    print(f'{"size":>9}{"budget":>9}{"steps":>7}{"tokens":>12}{"epochs":>8}{"bits/byte":>11}{"minutes":>9}')
    for row in sorted(rows, key=lambda row: (row['budget'], row['params'])):
        print(
            f'{row["size"]:>9}{row["budget"]:>9.0e}{row["steps"]:>7,.0f}{row["tokens"]:>12,.0f}'
            f'{row["epochs"]:>8.2f}{row["bits_per_byte"]:>11.3f}{row["seconds"] / 60:>9.1f}'
        )
    budgets = sorted({row['budget'] for row in rows})
    sizes = {row['size'] for row in rows}
    if len(budgets) < 2 or len(sizes) < 3:
        print('the fits need at least 3 sizes and 2 budgets: none made')
        figure = plot_loss_against_compute(rows)
        figure.savefig(out / 'sweep.png', dpi=120, bbox_inches='tight')
        return
    fits = {}
    for key in ('params', 'total_params'):
        optima = isoflop_optima(rows, key)
        print(f'\nN counted as {key}:')
        if missed := sorted(set(budgets) - {optimum['budget'] for optimum in optima}):
            print(f'  no valley at {", ".join(f"{budget:.0e}" for budget in missed)} FLOPs: its sizes miss the optimum')
        for optimum in optima:
            outside = '' if optimum['inside'] else ' (outside the sizes swept)'
            print(
                f'  {optimum["budget"]:.0e} FLOPs: N_opt {optimum["params"]:>10,.0f}, D_opt {optimum["tokens"]:>12,.0f}'
                f', {optimum["tokens"] / optimum["params"]:.1f} tokens per parameter{outside}'
            )
        frontier = frontier_optima(optima)
        for name, column in (('N_opt', 'params'), ('D_opt', 'tokens')) if len(frontier) >= 2 else ():
            found = [optimum[column] for optimum in frontier]
            coefficient, exponent = fit_power_law([optimum['budget'] for optimum in frontier], found)
            print(f'  {name} = {coefficient:.3g} C^{exponent:.3f}')
        fits[key] = fit_loss_surface(*([row[name] for row in rows] for name in (key, 'tokens', 'bits_per_byte')))
        a, b = allocation_exponents(fits[key])
        constants = ', '.join(f'{name} {fits[key][name]:.3g}' for name in SURFACE)
        error = surface_error(fits[key], rows, key)
        print(f'  L(N, D): {constants}; mean error {error:.2%}; N_opt ~ C^{a:.2f}, D_opt ~ C^{b:.2f}')
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    plot_loss_against_compute(rows, ax=axes[0])
    optima = isoflop_optima(rows, 'total_params')
    plot_isoflops(rows, optima, 'total_params', ax=axes[1])
    if len(optima) >= 2:
        plot_frontier(optima, ax=axes[2])
    figure.tight_layout()
    figure.savefig(out / 'sweep.png', dpi=120, bbox_inches='tight')
    print(f'\nfigures: {out / "sweep.png"}')


def predict_and_train(rows: list[dict], args, out: Path, settings: dict) -> None:
    "Write the prediction for a run at 4x the largest budget (once), train that run, and print how far off it was."
    prediction_path = out / 'prediction.json'
    budget = 4 * max(args.budgets)
    if not prediction_path.exists():
        try:
            prediction = predict_run(rows, budget, (*args.sizes, *HELD_OUT_CANDIDATES), **settings)
        except ValueError as error:  # fewer than 2 budgets with a valley: no frontier to ask
            print(f'scaling.py: no prediction: {error}; add sizes or budgets', file=sys.stderr)
            return
        prediction_path.write_text(json.dumps(prediction, indent=1))
        print(f'\nprediction written to {prediction_path} before training')
    prediction = json.loads(prediction_path.read_text())
    low, high = prediction['interval']
    print(
        f'predicted: {prediction["size"]} at {prediction["budget"]:.1e} FLOPs, {prediction["bits_per_byte"]:.3f} bits'
    )
    print(f'per byte (90%: {low:.3f} to {high:.3f})')
    held_out = sweep([prediction['budget']], [prediction['size']], out / 'held_out.csv', args.seed, **settings)[0]
    miss = held_out['bits_per_byte'] / prediction['bits_per_byte'] - 1
    print(f'measured:  {held_out["bits_per_byte"]:.3f} bits per byte, off by {miss:+.1%}')


if __name__ == '__main__':
    sys.exit(main())
