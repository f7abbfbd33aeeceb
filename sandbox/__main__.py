"""`python -m sandbox [--host H] [--port P]`: serve the simulated backends."""

from __future__ import annotations

import argparse

from sandbox.app import DEFAULT_HOST, DEFAULT_PORT, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()
    run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
