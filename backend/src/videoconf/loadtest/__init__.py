"""`videoconf loadtest`: simulated participants against a deployment, with numbers.

Signs in N participants over R rooms, joins them (each room's host admits the others),
drives a mix of relayed offers/answers/candidates, chat broadcasts and hand raises, with
optional churn (leave and rejoin) and optional real WebRTC peers (`--media`), then reports
counts and latencies. Bounded by `--duration` and `--messages`; it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson


async def run(options: Any, quiet: bool) -> dict[str, Any]:
    from .runner import Run

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = await Run(options, None if quiet else progress).run()
    return report


def main(args: argparse.Namespace) -> int:
    try:
        import picows  # noqa: F401
    except ImportError:
        print(
            "videoconf loadtest needs the load-test extras: pip install 'videoconf[loadtest]'",
            file=sys.stderr,
        )
        return 2
    from .options import from_arguments
    from .stats import table

    options = from_arguments(args)
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        report = asyncio.run(run(options, args.quiet))
    else:
        report = uvloop.run(run(options, args.quiet))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(table(report))
    return 0 if report["ok"] else 1
