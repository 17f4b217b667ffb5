#!/usr/bin/env python3
"""An HTTP/1.1 keep-alive server that answers at once, except that every PERIOD seconds the
whole process stalls for STALL seconds (as a GC pause or a blocked event loop would): the
server of the coordinated-omission benchmark. Usage: stall_server.py PORT [STALL PERIOD]."""

import asyncio
import sys
import time

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"


class Http(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        n = self.buf.count(b"\r\n\r\n")
        if n:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4 :]
            self.t.write(RESPONSE * n)  # type: ignore[attr-defined]


def main() -> None:
    port = int(sys.argv[1])
    stall = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
    period = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    loop = asyncio.new_event_loop()

    def pause() -> None:
        time.sleep(stall)  # the whole server stops answering
        loop.call_later(period - stall, pause)

    loop.call_later(period - stall, pause)
    server = loop.run_until_complete(loop.create_server(Http, "127.0.0.1", port, backlog=1024))
    print("ready", flush=True)
    loop.run_until_complete(server.serve_forever())


if __name__ == "__main__":
    main()
