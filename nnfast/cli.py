"""Command line: `nnfast info` (training and benchmarking commands come with the model)."""
from __future__ import annotations

import argparse
import json
import sys


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nnfast", description="Fast CPU neural networks.")
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="show version, threads, CPU features and kernel path")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def main(argv=None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command == "info":
        from nnfast._info import format_info, info

        d = info()
        print(json.dumps(d) if args.json else format_info(d))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
