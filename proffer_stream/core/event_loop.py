"""The event loop the worker and the sink run on (uvicorn picks it for the gateway)."""

from __future__ import annotations

import asyncio


def use_uvloop() -> None:
    """Make asyncio's new loops uvloop's (libuv's), when it is installed (not on Windows,
    where the standard loop serves, slower). Call before the first loop is made."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
