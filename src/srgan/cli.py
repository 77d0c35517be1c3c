"""`srgan` command line: a thin layer over the Python API.

Each subcommand has a `_add_<name>` function that declares its arguments and a `_run_<name>`
function that calls the API. User mistakes (`SrganError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from srgan.errors import SrganError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


# ---------------------------------------------------------------- models
def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list generator presets and shipped weights")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from srgan.models import create, describe, names
    from srgan.models.weights import shipped_weights

    for name in names():
        params = sum(p.numel() for p in create(name).parameters())
        print(f"{name:14s} {params:>10,d}  {describe(name)}")
    print(f"shipped weights: {', '.join(shipped_weights()) or 'none'}")
    return 0


# ---------------------------------------------------------------- upscale
def _add_upscale(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upscale", help="super-resolve images")
    p.set_defaults(func=_run_upscale)


def _run_upscale(args: argparse.Namespace) -> int:
    raise SrganError("upscale is not implemented yet")


# ---------------------------------------------------------------- export
def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a generator to ONNX")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    raise SrganError("export is not implemented yet")


# ---------------------------------------------------------------- eval
def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="PSNR/SSIM (and NIQE) on benchmark folders")
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    raise SrganError("eval is not implemented yet")


# ---------------------------------------------------------------- train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a generator (and discriminator) from a YAML config")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    raise SrganError("train is not implemented yet")


# ---------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    from srgan import __version__

    parser = _Parser(prog="srgan", description="Single-image super-resolution with the SRGAN family.")
    parser.add_argument("--version", action="version", version=f"srgan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_upscale, _add_train, _add_eval, _add_export, _add_models):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except SrganError as exc:
        print(f"srgan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("srgan: interrupted", file=sys.stderr)
        return 130
