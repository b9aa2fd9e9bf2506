"""The image's HEALTHCHECK: GET /healthz on hived's socket ($HIVE_SOCKET); exit 0 when it answers 200.
Standard library only, so that it starts fast and needs no token (the socket is hived's own user's)."""

import os
import socket
import sys


def main() -> int:
    path = os.environ.get("HIVE_SOCKET", "/run/hive/hived.sock")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(4)
            sock.connect(path)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: hived\r\nConnection: close\r\n\r\n")
            status = sock.recv(64).split(b"\r\n", 1)[0]
    except OSError as exc:
        print(f"healthz: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(status.decode(errors="replace"))
    return 0 if status.split(b" ")[1:2] == [b"200"] else 1


if __name__ == "__main__":
    sys.exit(main())
