#!/usr/bin/env python3
"""The latency half of the benchmark's WAN (``wan.py``): a TCP relay that holds every chunk for
the one-way delay in each direction, an echo server to probe it, and the probe.

    python bench/wanlink.py relay --listen 127.0.0.1:0 --upstream 10.232.0.1:8080 --rtt-ms 20
    python bench/wanlink.py echo --listen 10.232.0.1:0
    python bench/wanlink.py probe --to 127.0.0.1:PORT [--count 20] [--mb 16]

This machine's kernel has no ``sch_netem``, so the delay cannot be a qdisc; the rate is
(``tbf`` on the veth pair, ``wan.py``). The relay runs in the client namespace; the contestants
connect to it instead of the Swift proxy and it forwards over the veth pair. What it emulates:

- each chunk read from one side is written to the other ``rtt/2`` later, order kept, so a
  request and its answer take one round trip more than on the bare veth, and a stream keeps
  flowing (chunks in flight are held side by side, not one after the other);
- a new connection pays one round trip before its first byte moves (TCP's handshake);
- at most ``window`` bytes wait in each direction (the bandwidth-delay product times two,
  at least 1 MiB): a sender that outruns the link is held back, as by TCP's window.

What it does not: loss and jitter, TCP's slow start and congestion control over the delay
(the contestants' TCP sees loopback; the relay's upstream TCP sees the rate-limited veth),
TLS handshakes (a real Swift is usually HTTPS: one or two round trips more per connection).

Each command prints one JSON line when it is ready (``{"port": N}``; the probe prints its
figures) and runs until SIGTERM. Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import statistics
import sys
import time

CHUNK = 64 * 1024


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


class Relay:
    def __init__(
        self,
        upstream: tuple[str, int],
        rtt: float,
        rate_bits: float | None,
        limit_bits: float | None = None,
    ) -> None:
        self.upstream = upstream
        self.delay = rtt / 2
        self.rtt = rtt
        bdp = (rate_bits / 8 * rtt) if rate_bits else 0
        self.window = max(1 << 20, int(2 * bdp))
        self.limit = limit_bits  # bits/s each connection sends at most, each way (tests)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._relay(reader, writer)
        except asyncio.CancelledError:  # the relay is stopping
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(self.rtt)  # the handshake's round trip
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream, limit=CHUNK)
        except OSError:
            writer.close()
            return
        for w in (writer, up_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(
            self._direction(reader, up_writer),
            self._direction(up_reader, writer),
            return_exceptions=True,
        )
        for w in (writer, up_writer):
            w.close()

    async def _direction(self, reader, writer) -> None:
        """Read as it comes, write each chunk ``delay`` after it was read."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        room = asyncio.Semaphore(max(1, self.window // CHUNK))

        async def receive() -> None:
            try:
                while True:
                    await room.acquire()
                    data = await reader.read(CHUNK)
                    queue.put_nowait((loop.time() + self.delay, data))
                    if not data:
                        return
            except (ConnectionError, OSError):
                queue.put_nowait((loop.time() + self.delay, b""))

        async def send() -> None:
            free = loop.time()  # with a limit: when the link is done with what went before
            while True:
                due, data = await queue.get()
                if self.limit:
                    free = max(free, due) + len(data) * 8 / self.limit
                    due = free
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                room.release()
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        receiving = asyncio.ensure_future(receive())
        try:
            await send()
        except (ConnectionError, OSError):
            pass
        finally:
            receiving.cancel()


async def _echo(reader, writer) -> None:
    """``e`` + byte: echo one byte; ``d`` + 8-byte count: send that many bytes; ``u`` + count:
    read that many, answer one byte."""
    try:
        while command := await reader.read(1):
            if command == b"e":
                writer.write(await reader.readexactly(1))
            elif command in (b"d", b"u"):
                count = int.from_bytes(await reader.readexactly(8), "big")
                if command == b"d":
                    block = bytes(CHUNK)
                    while count > 0:
                        writer.write(block[: min(count, CHUNK)])
                        count -= CHUNK
                        await writer.drain()
                else:
                    while count > 0:
                        count -= len(await reader.read(min(count, CHUNK)))
                    writer.write(b"k")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def probe(to: tuple[str, int], count: int, megabytes: float) -> dict:
    """Round trips of one byte (like ping, over one TCP connection), the cost of a new
    connection, and the throughput of ``megabytes`` each way."""
    started = time.perf_counter()
    sock = socket.create_connection(to, timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b"e0")
    sock.recv(1)
    first = time.perf_counter() - started  # connect + first round trip
    rtts = []
    for _ in range(count):
        t = time.perf_counter()
        sock.sendall(b"e1")
        sock.recv(1)
        rtts.append(time.perf_counter() - t)
    size = int(megabytes * 1e6)
    t = time.perf_counter()
    sock.sendall(b"d" + size.to_bytes(8, "big"))
    got = 0
    while got < size:
        got += len(sock.recv(1 << 20))
    down = time.perf_counter() - t
    t = time.perf_counter()
    sock.sendall(b"u" + size.to_bytes(8, "big"))
    block = bytes(1 << 20)
    left = size
    while left > 0:
        sock.sendall(block[: min(left, len(block))])
        left -= len(block)
    sock.recv(1)
    up = time.perf_counter() - t
    sock.close()
    return {
        "rtt_ms_median": round(statistics.median(rtts) * 1000, 2),
        "rtt_ms_min": round(min(rtts) * 1000, 2),
        "rtt_ms_max": round(max(rtts) * 1000, 2),
        "first_exchange_ms": round(first * 1000, 2),
        # one round trip of the request is in each transfer: remove it from the rate
        "down_mbit": round(size * 8 / max(1e-9, down - statistics.median(rtts)) / 1e6, 1),
        "up_mbit": round(size * 8 / max(1e-9, up - statistics.median(rtts)) / 1e6, 1),
        "megabytes": megabytes,
    }


async def _serve(handler, listen: tuple[str, int]) -> None:
    server = await asyncio.start_server(handler, *listen, limit=CHUNK)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    relay = sub.add_parser("relay")
    relay.add_argument("--listen", default="127.0.0.1:0")
    relay.add_argument("--upstream", required=True)
    relay.add_argument("--rtt-ms", type=float, required=True)
    relay.add_argument("--rate-mbit", type=float, help="the link's rate (sizes the window)")
    relay.add_argument(
        "--limit-mbit",
        type=float,
        help="hold each connection to this rate, each way (for tests: the bench's rate is tbf "
        "on the veth pair, shared by every connection)",
    )
    echo = sub.add_parser("echo")
    echo.add_argument("--listen", required=True)
    check = sub.add_parser("probe")
    check.add_argument("--to", required=True)
    check.add_argument("--count", type=int, default=20)
    check.add_argument("--mb", type=float, default=16)
    args = parser.parse_args(argv)
    if args.command == "probe":
        print(json.dumps(probe(_split(args.to), args.count, args.mb)), flush=True)
        return 0
    if args.command == "relay":
        rate = args.rate_mbit * 1e6 if args.rate_mbit else None
        limit = args.limit_mbit * 1e6 if args.limit_mbit else None
        handler = Relay(_split(args.upstream), args.rtt_ms / 1000, rate, limit).handle
    else:
        handler = _echo
    asyncio.run(_serve(handler, _split(args.listen)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
