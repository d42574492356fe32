"""`python -m voice_gateway.probe [URL]`: the container's HEALTHCHECK, in Python (no curl in the
image). Exits 0 when URL (default: this container's /healthz) answers 2xx within the timeout."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

DEFAULT_URL = "http://127.0.0.1:8000/healthz"
TIMEOUT_S = 3.0


def probe(url: str, timeout_s: float = TIMEOUT_S) -> bool:
    if not url.startswith(("http://", "https://")):
        return False  # never file:// or anything else urllib would open
    # The probe asks its own container: an HTTP(S)_PROXY in the environment must not apply.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    url = args[0] if args else DEFAULT_URL
    healthy = probe(url)
    print(f"{url}: {'healthy' if healthy else 'UNHEALTHY'}")
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
