"""A minimal accept-everything SMTP sink for smoke runs: ``python -m bench.aiosmtpd_sink PORT``."""

from __future__ import annotations

import sys
import time
from typing import Any

from aiosmtpd.controller import Controller


class Discard:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 2.0.0 Ok: queued as SINK"


def main() -> None:
    controller = Controller(Discard(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
