"""Serve the project's SendGrid stand-in on 127.0.0.1 until standard input closes.

Prints the stand-in's URL on the first line, and when standard input closes,
the number of requests and connections it received as JSON on the second.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    latency = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
    sys.path.insert(0, str(ROOT))
    standins = importlib.import_module("tests.standins.sendgrid")
    standin = standins.SendGridStandin(latency=latency)
    standin.start()
    print(standin.url, flush=True)

    sys.stdin.read()
    requests = len(standin.mail_requests)
    connections = standin.connections
    standin.stop()
    print(json.dumps({"requests": requests, "connections": connections}), flush=True)


if __name__ == "__main__":
    main()
