"""A plain HTTP server on loopback, a thread of the test, serving one
directory: the catalog and the files it points at, for the tests that pull
from a catalog without the network."""

import http.server
import threading


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass


def serve_directory(test, directory):
    """Serves @directory until @test is cleaned up; returns the base URL
    (http://127.0.0.1:<port>)."""
    handler = lambda *a, **kw: _QuietHandler(*a, directory=directory, **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    test.addCleanup(thread.join)
    test.addCleanup(httpd.server_close)
    test.addCleanup(httpd.shutdown)
    return 'http://127.0.0.1:%d' % httpd.server_address[1]
