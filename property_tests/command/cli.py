"""``backprop-check``: the command line.

    backprop-check verify [--examples N] [--seed S] [--networks all|dense|conv] [--shard K/N] [--json]
    backprop-check activation TARGET [--examples N] [--seed S] [--dtype float64|float32] [--json]
    backprop-check loss TARGET [--examples N] [--seed S] [--json]
    backprop-check layer TARGET [--examples N] [--seed S] [--dtype float64|float32] [--strict] [--json]
    backprop-check mutants [--seed S] [--json]
    backprop-check explain [--widths 2,3,2] [--activation NAME] [--loss NAME] [--seed S] [--conv | --norm] [--json]
    backprop-check plot TARGET --output FILE.png [--range LOW HIGH]

Exit codes: 0 everything matched; 1 a mismatch (the smallest counterexample is printed);
2 bad usage or unusable input (one sentence on standard error); 3 inconclusive (too little could
be checked, said in one sentence); 4 an internal error of the checker (a NaN or an infinity
reached an error or a tolerance), never a verdict.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from property_tests.checkers.loading import InternalError, UsageError
from property_tests.library import runtime

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_INTERNAL = 0, 1, 2, 3, 4
EXIT_BY_VERDICT = {
    "verified": EXIT_OK,
    "wrong": EXIT_MISMATCH,
    "imprecise": EXIT_MISMATCH,
    "inconclusive": EXIT_INCONCLUSIVE,
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one sentence, no usage dump, exit 2
        raise UsageError(message)


def _whole_number(text: str, least: int, rule: str) -> int:
    """``text`` as a whole number of at least ``least``; else ``rule`` says what it must be."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{rule}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "must be at least 1")


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "must be 0 or more")


EPILOG = """exit codes:
  0  every comparison matched autodiff within its tolerance
  1  a mismatch: the smallest counterexample is printed
  2  bad usage or unusable input, explained in one sentence
  3  inconclusive: too few points or networks could be checked (said why)
  4  internal error of the checker: a NaN or infinity reached an error or a tolerance"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="backprop-check",
        description="Check hand-derived backpropagation against automatic differentiation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    verify = commands.add_parser(
        "verify",
        help="check equations (1), (2), (3) on random networks",
        description="Check equations (1), (2), (3) against jax.grad on random dense networks in which "
        "every catalogue activation appears at every layer position, and on convolutional "
        "networks (convolution, pooling, flatten, dense), one row per layer kind and "
        "configuration extreme.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from property_tests.checkers.verify import DEFAULT_EXAMPLES

    verify.add_argument(
        "--examples",
        type=positive_int,
        default=DEFAULT_EXAMPLES,
        metavar="N",
        help=f"number of random networks (default {DEFAULT_EXAMPLES})",
    )
    verify.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="S",
        help="seed of the random networks; the same seed gives the same verdict",
    )
    verify.add_argument(
        "--networks",
        choices=["all", "dense", "conv"],
        default="all",
        help="dense networks, networks of layers (convolution, pooling, norms, residual blocks), or both (default all)",
    )
    verify.add_argument(
        "--shard",
        type=shard_of,
        default=(1, 1),
        metavar="K/N",
        help="check only the K-th of N disjoint parts of the run (for a CI matrix of N jobs)",
    )
    verify.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        metavar="J",
        help="processes: 1, or 2 for a second one that judges networks "
        "(default: $BACKPROP_CHECK_JOBS, else 2 with two cores or more)",
    )
    verify.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    act = _add_checker(
        commands,
        "activation",
        "derivative",
        "check your own activation's hand derivative",
        "Check an Activation's hand derivative against jax.grad of its forward, pointwise (dense grids, "
        "extreme magnitudes, Hypothesis draws, kinks) and inside random networks at every layer position. "
        "TARGET is path/to/file.py:NAME or package.module:NAME, NAME being a "
        "manual.Activation(name, forward, derivative).",
        "Hypothesis-drawn point arrays and random networks (default 200)",
    )
    _add_precision(act, "the hand derivative")
    _add_checker(
        commands,
        "loss",
        "gradient",
        "check your own loss's hand gradient",
        "Check a Loss's hand gradient against jax.grad of its per-example error, pointwise (with random "
        "per-example weights) and inside random networks ending in a compatible output layer. TARGET is "
        "path/to/file.py:NAME or package.module:NAME, NAME being a manual.Loss(name, error, gradient).",
        "extra random examples per width, and random networks (default 200)",
    )
    layer = _add_checker(
        commands,
        "layer",
        "backward pass",
        "check your own layer's hand-written backward pass",
        "Check a layer's input_delta and parameter_gradients (a hand-written vector-Jacobian product) against "
        "jax.vjp of its own forward, case by case (its example_shapes, batch sizes 1-5, random inputs, parameters "
        "and cotangents), then inside random networks (Dense, tanh, your layer, Dense) against jax.grad. TARGET "
        "is path/to/file.py:NAME or package.module:NAME, NAME being a layer (or a class built without arguments) "
        "with out_shape, init, forward(a_prev, params, xp=np), input_delta and parameter_gradients.",
        "random cases, one network per 8 of them (default 40)",
    )
    layer.set_defaults(examples=40)
    _add_precision(layer, "your backward pass")

    mutants = commands.add_parser(
        "mutants",
        help="show that the checks catch a bank of broken backward passes",
        description="Run the equation checks against every entry of the bank of broken backward passes "
        "(property_tests/banks/mutants.py) and report, per entry, whether it was caught, the first "
        "equation and layer that disagreed with autodiff, and the time to detection.",
        epilog="exit codes:\n  0  every entry was caught\n  1  some entry was not caught\n  2  bad usage",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mutants.add_argument("--seed", type=non_negative_int, default=0, metavar="S")
    mutants.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    explain = commands.add_parser(
        "explain",
        help="the three equations with real numbers, beside autodiff's",
        description="Build a tiny network, print its forward pass, then equations (1), (2) and (3), each "
        "with its formula, the numbers it produces by hand, autodiff's numbers and the difference.",
    )
    explain.add_argument(
        "--widths",
        type=widths_list,
        default=[2, 3, 2],
        metavar="2,3,2",
        help="layer widths, input first (default 2,3,2)",
    )
    explain.add_argument(
        "--activation",
        default="tanh",
        metavar="NAME",
        help="hidden activation (default tanh): a catalogue name, one with trainable parameters "
        "(prelu, pau, ...) or one that mixes units (glu, swiglu, maxout2, softmax, ...); "
        "a width its groups do not divide is rounded up, and said so",
    )
    explain.add_argument(
        "--parameters",
        choices=["default", "shared", "per-unit"],
        default="default",
        help="shape of the activation's trainable parameters: each one's default, one value per layer, or one per unit",
    )
    explain.add_argument("--loss", default="mse", metavar="NAME", help="loss (default mse)")
    explain.add_argument("--seed", type=non_negative_int, default=0, metavar="S")
    explain.add_argument(
        "--conv",
        action="store_true",
        help="a tiny convolutional network instead: convolution, pooling, flatten, dense "
        "(--widths, --loss and --parameters do not apply)",
    )
    explain.add_argument(
        "--norm", action="store_true", help="a tiny network with a LayerNorm, a residual block and a BatchNorm instead"
    )
    explain.add_argument("--json", action="store_true", help="print one JSON object (for notebooks)")

    plot = commands.add_parser(
        "plot",
        help="draw an activation's hand derivative against autodiff's",
        description="Draw g, its hand derivative and jax.grad's over a range with the difference below "
        "and the kinks marked, and every weight gradient of a random network with g in each "
        "layer, hand against autodiff. TARGET is a catalogue name or path/to/file.py:NAME.",
    )
    plot.add_argument("target", metavar="TARGET")
    plot.add_argument("--output", required=True, metavar="FILE.png")
    plot.add_argument("--range", type=float, nargs=2, default=[-6.0, 6.0], metavar=("LOW", "HIGH"))
    return parser


def _add_checker(
    commands, name: str, what: str, help_text: str, description: str, examples_help: str
) -> argparse.ArgumentParser:
    """A subcommand that checks a user's TARGET (``activation``, ``loss``): the options they share."""
    parser = commands.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=EPILOG.replace(
            "every comparison matched autodiff within its tolerance",
            f"verified: the {what} equals autodiff's everywhere checked",
        ).replace(
            "a mismatch: the smallest counterexample is printed",
            f"the {what} is wrong: the simplest counterexample is printed",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", metavar="TARGET", help="path/to/file.py:NAME or package.module:NAME")
    parser.add_argument("--examples", type=positive_int, default=200, metavar="N", help=examples_help)
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="S",
        help="the same seed gives the same points, networks and verdict",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def _add_precision(parser: argparse.ArgumentParser, what: str) -> None:
    """``--dtype`` and ``--strict``, the options of a checker (``activation``, ``layer``) that
    runs ``what`` in another dtype than autodiff's."""
    parser.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help=f"dtype of {what} (autodiff is always float64)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a right formula that loses digits in this dtype fails (exit 1) instead of warning",
    )


def widths_list(text: str) -> list[int]:
    try:
        widths = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if len(widths) < 2 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"need at least two widths, each at least 1, got {text!r}")
    return widths


def shard_of(text: str) -> tuple[int, int]:
    """``K/N`` with 1 ≤ K ≤ N: the K-th of N shards."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N, two whole numbers such as 3/8, got {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"need 1 ≤ K ≤ N in K/N, got {text!r}")
    return k, n


def _progress(done: int, total: int) -> None:
    print(f"\r  {done}/{total} networks", end="" if done < total else "\n", file=sys.stderr, flush=True)


def format_table(report) -> str:
    from property_tests.checkers.verify import EQUATION_ORDER

    lines = [f"{'equation':<8} {'activation':<15} {'checks':>7} {'max error':>10} {'tolerance':>10}  verdict"]
    for eq in EQUATION_ORDER:
        if eq not in report.by_equation:
            continue
        for (e, name), t in sorted(report.by_activation.items()):
            if e == eq:
                lines.append(
                    f"{eq:<8} {name:<15} {t.comparisons:>7} {t.max_error:>10.2e} {t.tolerance:>10.2e}  "
                    f"{'ok' if t.failures == 0 else 'MISMATCH'}"
                )
        total = report.by_equation[eq]
        lines.append(
            f"{eq:<8} {'(all)':<15} {total.comparisons:>7} {total.max_error:>10.2e} {total.tolerance:>10.2e}  "
            f"{'ok' if total.failures == 0 else 'MISMATCH'}"
        )
        lines.append("")
    if report.by_loss:
        lines.append(
            f"{'loss':<24} {'networks':>8}  "
            + "  ".join(f"{eq + ' err/tol':>22}" for eq in EQUATION_ORDER)
            + "  verdict"
        )
        for name, tallies in report.by_loss.items():
            cells = "  ".join(
                f"{tallies[eq].max_error:>10.2e}/{tallies[eq].tolerance:<11.2e}" if eq in tallies else f"{'—':>22}"
                for eq in EQUATION_ORDER
            )
            ok = all(t.failures == 0 for t in tallies.values())
            lines.append(f"{name:<24} {report.networks_per_loss[name]:>8}  {cells}  {'ok' if ok else 'MISMATCH'}")
        lines.append("")
    lines.append(
        "Errors and tolerances are relative to each quantity's magnitude; the tolerance is "
        "the bound at the element closest to it."
    )
    coverage = (
        "every activation at every layer position"
        if report.coverage_complete
        else "NOT every activation at every layer position (ask for more --examples)"
    )
    lines.append(
        f"{report.examples} networks, seed {report.seed}, {coverage}; "
        f"{report.skipped_at_kinks} end-to-end checks skipped where rounding moved a z across a kink; "
        f"{report.seconds:.1f} s."
    )
    if report.counterexample:
        ce = report.counterexample
        lines += [
            "",
            "Smallest counterexample:",
            f"  {ce['summary']}",
            f"  {ce['case']}",
            f"  theta = {ce['theta']}",
            f"  b = {ce['b']}",
            f"  x = {ce['x']}",
            f"  y = {ce['y']}",
        ]
    lines.append("VERIFIED" if report.verified else "MISMATCH: the hand derivation disagrees with autodiff.")
    return "\n".join(lines)


def cmd_verify(args: argparse.Namespace) -> int:
    from property_tests.checkers.judges import Judges, default_jobs
    from property_tests.checkers.verify import run_verify
    from property_tests.checkers.verify_layers import run_layer_verify

    progress = None if args.json else _progress
    jobs = args.jobs if args.jobs is not None else default_jobs()
    with Judges() if jobs >= 2 else contextlib.nullcontext() as judges:
        layers = judges.layers(args.seed, args.shard) if judges is not None and args.networks != "dense" else None
        dense = (
            run_verify(args.examples, args.seed, progress=progress, shard=args.shard, judges=judges)
            if args.networks != "conv"
            else None
        )
        if layers is not None:
            conv = layers.result()
        elif args.networks != "dense":
            conv = run_layer_verify(args.seed, progress=None if args.json else _progress_layers, shard=args.shard)
        else:
            conv = None
    verified = all(r.verified for r in (dense, conv) if r is not None)
    if args.json:
        result = {
            **(dense.as_dict() if dense else {}),
            "networks": args.networks,
            "shard": f"{args.shard[0]}/{args.shard[1]}",
            **({"conv": conv.as_dict()} if conv else {}),
            "verified": verified,
        }
        print(json.dumps(result, allow_nan=False))
    else:
        tables = ([format_table(dense)] if dense else []) + ([format_layer_table(conv)] if conv else [])
        print("\n\n".join(tables))
        if dense and conv:
            print(
                "VERIFIED: dense networks and networks of layers"
                if verified
                else "MISMATCH: the hand derivation disagrees with autodiff."
            )
    return EXIT_OK if verified else EXIT_MISMATCH


def _progress_layers(done: int, total: int) -> None:
    print(f"\r  {done}/{total} architectures of layers", end="" if done < total else "\n", file=sys.stderr, flush=True)


def format_layer_table(report) -> str:
    """The part for networks of layers: one row per equation and layer kind (or configuration extreme)."""
    lines = [f"{'equation':<20} {'layer':<46} {'checks':>6} {'max error':>10} {'tolerance':>10}  verdict"]
    for (eq, label), row in sorted(report.rows.items()):
        lines.append(
            f"{eq:<20} {label:<46} {row.comparisons:>6} {row.max_error:>10.2e} {row.tolerance:>10.2e}  "
            f"{'ok' if row.failures == 0 else 'MISMATCH'}"
        )
    lines.append(
        f"{report.networks} networks of layers (convolution, pooling, norms, residual blocks), "
        f"{len(report.activations)} activations in them, "
        f"{report.skipped_in_doubt} end-to-end checks skipped where rounding moved a z across "
        f"a kink or a pooling window's maximum; {report.seconds:.1f} s."
    )
    if report.counterexample:
        lines += ["", "First mismatch:", f"  {report.counterexample['summary']}", f"  {report.counterexample['case']}"]
    lines.append(
        "VERIFIED (networks of layers)"
        if report.verified
        else "MISMATCH: the hand derivation of a layer disagrees with autodiff."
    )
    return "\n".join(lines)


def cmd_activation(args: argparse.Namespace) -> int:
    from manual import Activation, ParametricActivation, VectorActivation
    from property_tests.checkers.activation_check import check_activation
    from property_tests.checkers.loading import load_object

    g = load_object(
        args.target,
        (Activation, ParametricActivation, VectorActivation),
        "an Activation, a ParametricActivation or a VectorActivation",
    )
    report = check_activation(g, examples=args.examples, seed=args.seed, dtype=args.dtype, strict=args.strict)
    if args.json:
        print(json.dumps(report.as_dict(), allow_nan=False))
    else:
        print(report.message())
    return EXIT_BY_VERDICT[report.verdict]


def cmd_loss(args: argparse.Namespace) -> int:
    from manual import Loss
    from property_tests.checkers.loading import load_object
    from property_tests.checkers.loss_check import check_loss

    loss = load_object(args.target, Loss, "a Loss")
    report = check_loss(loss, examples=args.examples, seed=args.seed)
    print(json.dumps(report.as_dict(), allow_nan=False) if args.json else report.message())
    return EXIT_BY_VERDICT[report.verdict]


def cmd_layer(args: argparse.Namespace) -> int:
    from property_tests.checkers.layer_check import check_layer, load_layer

    report = check_layer(
        load_layer(args.target), examples=args.examples, seed=args.seed, dtype=args.dtype, strict=args.strict
    )
    print(json.dumps(report.as_dict(), allow_nan=False) if args.json else report.message())
    return EXIT_BY_VERDICT[report.verdict]


def cmd_mutants(args: argparse.Namespace) -> int:
    from property_tests.banks.mutants import run_mutants

    report = run_mutants(seed=args.seed)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(f"{'mutant':<34} {'caught':<7} {'equation':<9} {'layer':>5} {'networks':>8} {'seconds':>8}  mistake")
        for r in report.results:
            print(
                f"{r.name:<34} {'yes' if r.caught else 'NO':<7} {r.equation or '—':<9} "
                f"{r.layer if r.layer is not None else '—':>5} {r.networks:>8} {r.seconds:>8.3f}  {r.mistake}"
            )
        print(f"{report.caught}/{len(report.results)} caught; median time to detection {report.median_seconds:.3f} s")
    return EXIT_OK if report.caught == len(report.results) else EXIT_MISMATCH


def cmd_explain(args: argparse.Namespace) -> int:
    if args.conv or args.norm:
        from property_tests.teaching.conv import explain_conv, format_explained_conv

        explained_conv = explain_conv(args.activation, args.seed, network="conv" if args.conv else "norm")
        print(json.dumps(explained_conv.as_dict()) if args.json else format_explained_conv(explained_conv))
        return EXIT_OK
    from property_tests.teaching.dense import explain, format_explained

    explained = explain(args.widths, args.activation, args.loss, args.seed, parameters=args.parameters)
    print(json.dumps(explained.as_dict()) if args.json else format_explained(explained))
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    from property_tests.teaching.dense import plot, resolve_target

    if not args.output.lower().endswith(".png"):
        raise UsageError(f"--output must name a .png file, got {args.output!r}")
    try:
        plot(resolve_target(args.target), args.output, low=args.range[0], high=args.range[1])
    except OSError as error:
        raise UsageError(f"cannot write {args.output}: {error.strerror}") from None
    print(f"wrote {args.output}")
    return EXIT_OK


COMMANDS = {
    "verify": cmd_verify,
    "activation": cmd_activation,
    "loss": cmd_loss,
    "layer": cmd_layer,
    "mutants": cmd_mutants,
    "explain": cmd_explain,
    "plot": cmd_plot,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        runtime.fewer_malloc_arenas()
        runtime.use_compilation_cache()
        with runtime.one_blas_thread():
            return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"backprop-check: {error}", file=sys.stderr)
        return EXIT_USAGE
    except InternalError as error:
        print(f"backprop-check: internal error: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("backprop-check: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
