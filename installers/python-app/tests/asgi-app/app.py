"""Conformance fixture for the python-app bundle: an ASGI app with no dependencies.

It answers every request with a greeting, the PORT it got from the service and the path
that was asked for.
"""
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = "hello from outfitter python-app (asgi, PORT={}, path={})\n".format(
        os.environ.get("PORT", "unset"), scope.get("path", "")
    ).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})
