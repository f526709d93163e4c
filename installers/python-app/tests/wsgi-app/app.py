"""Conformance fixture for the python-app bundle: a WSGI app with no dependencies.

It answers every request with a greeting, the PORT it got from the service and the path
that was asked for.
"""
import os


def app(environ, start_response):
    body = "hello from outfitter python-app (wsgi, PORT={}, path={})\n".format(
        os.environ.get("PORT", "unset"), environ.get("PATH_INFO", "")
    ).encode("utf-8")
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
