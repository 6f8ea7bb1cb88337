"""pasar's egress relay: the only way out of a sandbox container whose tool has allow_hosts.

The container keeps `--network none`. The sandbox worker starts this next to the runner (`docker
exec`); it listens on the container's loopback (`HTTP_PROXY=http://127.0.0.1:3128`) and carries
every connection, as frames on its stdin and stdout, to the worker's egress proxy, which decides
where the connection may go (the tool's allow_hosts, pasar's SSRF guard) and makes it. This relay
decides nothing; whatever it is sent only reaches that proxy.

A frame is a header (connection id: 4 bytes, kind: 1 byte, payload size: 4 bytes, big-endian)
and the payload. READY (connection 0, payload: this process's pid) says it listens; OPEN starts
a connection; DATA carries bytes; EOF ends one direction; RESET drops the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import sys

PORT = 3128
HEADER = struct.Struct(">IBI")
READY, OPEN, DATA, EOF, RESET = range(5)
CHUNK = 64 * 1024
MAX_CONNECTIONS = 64


class Relay:
    def __init__(self, out: asyncio.StreamWriter) -> None:
        self.out = out
        self.connections: dict[int, asyncio.StreamWriter] = {}
        self.ended_by_worker: set[int] = set()
        self.ended_here: set[int] = set()
        self.next_id = 1

    async def send(self, connection: int, kind: int, payload: bytes = b"") -> None:
        self.out.write(HEADER.pack(connection, kind, len(payload)) + payload)
        await self.out.drain()

    def drop(self, connection: int) -> None:
        writer = self.connections.pop(connection, None)
        self.ended_by_worker.discard(connection)
        self.ended_here.discard(connection)
        if writer is not None:
            writer.close()

    def ended(self, connection: int) -> None:
        if connection in self.ended_by_worker and connection in self.ended_here:
            self.drop(connection)

    async def accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.connections) >= MAX_CONNECTIONS:
            writer.close()
            return
        connection, self.next_id = self.next_id, self.next_id + 1
        self.connections[connection] = writer
        await self.send(connection, OPEN)
        try:
            while chunk := await reader.read(CHUNK):
                if connection not in self.connections:
                    return
                await self.send(connection, DATA, chunk)
        except OSError:
            if connection in self.connections:
                await self.send(connection, RESET)
                self.drop(connection)
            return
        if connection in self.connections:
            await self.send(connection, EOF)
            self.ended_here.add(connection)
            self.ended(connection)

    async def deliver(self, connection: int, kind: int, payload: bytes) -> None:
        writer = self.connections.get(connection)
        if writer is None:
            return
        try:
            if kind == DATA:
                writer.write(payload)
                await writer.drain()
            elif kind == EOF:
                if writer.can_write_eof():
                    writer.write_eof()
                self.ended_by_worker.add(connection)
                self.ended(connection)
            elif kind == RESET:
                writer.transport.abort()
                self.drop(connection)
        except OSError:
            await self.send(connection, RESET)
            self.drop(connection)


async def main() -> None:
    loop = asyncio.get_running_loop()
    incoming = asyncio.StreamReader(limit=2 * CHUNK)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(incoming), os.fdopen(0, "rb", buffering=0)
    )
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(1, "wb", buffering=0)
    )
    out = asyncio.StreamWriter(transport, protocol, None, loop)
    relay = Relay(out)
    server = await asyncio.start_server(relay.accepted, "127.0.0.1", PORT)
    await relay.send(0, READY, str(os.getpid()).encode())
    try:
        while True:
            try:
                header = await incoming.readexactly(HEADER.size)
                connection, kind, size = HEADER.unpack(header)
                payload = await incoming.readexactly(size) if size else b""
            except asyncio.IncompleteReadError:
                return  # the worker went away: so does every connection
            await relay.deliver(connection, kind, payload)
    finally:
        server.close()
        for connection in list(relay.connections):
            relay.drop(connection)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        asyncio.run(main())
    sys.exit(0)
