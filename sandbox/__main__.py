"""`python -m sandbox [--host H] [--port P] [--state-file PATH]`: serve the simulated backends."""

from __future__ import annotations

import argparse
from pathlib import Path

from sandbox.app import DEFAULT_HOST, DEFAULT_PORT, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--state-file", type=Path, default=None, help="keep the simulated world in this JSON file across restarts"
    )
    args = parser.parse_args()
    run(host=args.host, port=args.port, state_file=args.state_file)


if __name__ == "__main__":
    main()
