"""The gateway's HTTP protocol: uvicorn's httptools protocol, with a bound on the request
line and headers.

uvicorn's httptools protocol has no such bound: httptools buffers a header value until
it ends, so a 32 MB ``Authorization`` header was read whole and answered 401 a second
later. This counts the bytes of a request until its headers are complete and, past
``PROFFER_MAX_HEADER_BYTES``, answers 431 and closes the connection, reading no further.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def bounded_headers_protocol(max_header_bytes: int) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's ``http=``, answering 431 past ``max_header_bytes``."""

    class BoundedHeaders(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_bytes = 0
            self._in_headers = True

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._header_bytes = 0
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            if not self._in_headers:
                super().data_received(data)
                return
            self._header_bytes += len(data)
            super().data_received(data)  # may complete the headers: then all is well
            if (
                self._in_headers
                and self._header_bytes > max_header_bytes
                and not self.transport.is_closing()
            ):
                self._too_large()

        def _too_large(self) -> None:
            body = (
                '{"success": false, "error": {"code": "headers_too_large", "message":'
                f' "The request line and headers are larger than {max_header_bytes} bytes'
                ' (PROFFER_MAX_HEADER_BYTES).", "details": []}}'
            ).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + body
            )
            self.transport.close()

    return BoundedHeaders
