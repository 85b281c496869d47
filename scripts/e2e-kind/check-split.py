"""Checks the canary's share of the answers clients received through the gateway.

Reads `modelrollout loadgen --json`'s summary on stdin (its `model_versions` counts
answers by the X-Model-Version header each carried) and exits 1, saying why, when
any request failed or the canary's share is further than the tolerance from the
weight the route was given.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canary-version", required=True)
    parser.add_argument("--percent", type=float, required=True, help="the route's canary weight")
    parser.add_argument("--tolerance", type=float, required=True, help="percentage points")
    args = parser.parse_args()
    summary = json.loads(sys.stdin.read())
    codes: dict[str, int] = summary["codes"]
    versions: dict[str, int] = summary["model_versions"]
    answered = sum(versions.values())
    if set(codes) != {"200"} or not answered:
        print(f"check-split: not every request was answered with 200: {codes}", file=sys.stderr)
        return 1
    share = 100 * versions.get(args.canary_version, 0) / answered
    verdict = "within" if abs(share - args.percent) <= args.tolerance else "NOT within"
    print(
        f"check-split: version {args.canary_version} gave {share:.2f}% of {answered} answers "
        f"{versions}, {verdict} {args.tolerance} points of {args.percent}%",
        file=sys.stderr,
    )
    return 0 if verdict == "within" else 1


if __name__ == "__main__":
    sys.exit(main())
