"""Issue 21: request headers have a limit. The gateway's own HTTP protocol (uvicorn with
httptools, as ``proffer-stream gateway`` serves it) answers 431 past
``PROFFER_MAX_HEADER_BYTES`` without reading the rest, and serves requests under it."""

import asyncio

import pytest
import uvicorn

from proffer_stream.api.app import create_app
from proffer_stream.api.http_protocol import bounded_headers_protocol
from proffer_stream.db import keys
from proffer_stream.local.embedded import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(settings):
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http=bounded_headers_protocol(settings.max_header_bytes),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    yield port
    server.should_exit = True
    await task


async def exchange(port, head: bytes, body: bytes = b"", send_whole=True):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        if send_whole:
            writer.write(body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


async def test_headers_over_the_limit_are_431_at_once(settings, gateway):
    """A header sent 64 KiB at a time, up to 32 MB as in the issue: the answer, 431, comes
    once the limit (64 KiB) is passed, long before the header ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway)
    writer.write(b"GET /api/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
    sent, answer = 0, b""
    try:
        while sent < 32 * 1024 * 1024 and not answer:
            writer.write(b"x" * 65536)
            await writer.drain()
            sent += 65536
            try:
                answer = await asyncio.wait_for(reader.read(65536), 0.05)
            except TimeoutError:
                continue
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"PROFFER_MAX_HEADER_BYTES" in answer
    assert sent <= 1024 * 1024, f"{sent} bytes sent before the answer"


async def test_requests_under_the_limit_are_served(settings, gateway, db):
    key = (await keys.create_key(db, "acme", "test")).key
    body = b'{"max_discount_percent": true}'
    head = (
        b"PUT /api/policy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n"
        b"X-Padding: " + b"p" * 30_000 + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    answer = await exchange(gateway, head, body)
    assert answer.startswith(b"HTTP/1.1 422"), answer[:200]
    big_body = b'{"name": "' + b"k" * 200_000 + b'"}'  # a large body is not a header
    head = (
        b"POST /api/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n"
        b"Content-Length: " + str(len(big_body)).encode() + b"\r\n\r\n"
    )
    answer = await exchange(gateway, head, big_body)
    assert not answer.startswith(b"HTTP/1.1 431"), answer[:200]
