"""A deliberately small HTTP/1.1 ASGI server over TLS, for testing the ASGI middleware
against servers that give the application TLS information in either documented way.

One request per connection; no streaming; enough for a JSON endpoint.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Literal

import h11

from certmint.workload import asgi

Exposure = Literal["tls extension", "transport"]


class SmallServer:
    def __init__(self, app: asgi.ASGIApp, exposure: Exposure) -> None:
        self.app = app
        self.exposure = exposure

    async def start(self, context: ssl.SSLContext) -> tuple[asyncio.Server, int]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=context)
        return server, server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        while request is None:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                request = event
            else:
                writer.close()
                return
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method.decode(),
            "scheme": "https",
            "path": request.target.decode().partition("?")[0],
            "raw_path": request.target,
            "query_string": b"",
            "headers": list(request.headers),
            "client": writer.get_extra_info("peername"),
            "server": writer.get_extra_info("sockname"),
            "extensions": {},
        }
        if self.exposure == "tls extension":
            scope["extensions"]["tls"] = asgi.tls_extension(writer.get_extra_info("ssl_object"))
        else:
            scope["transport"] = writer.transport

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"connection", b"close")]
                writer.write(
                    connection.send(h11.Response(status_code=message["status"], headers=headers))
                    or b""
                )
            elif message["type"] == "http.response.body":
                writer.write(connection.send(h11.Data(data=message.get("body", b""))) or b"")
                if not message.get("more_body"):
                    writer.write(connection.send(h11.EndOfMessage()) or b"")

        await self.app(scope, receive, send)
        await writer.drain()
        writer.close()
