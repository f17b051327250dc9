#!/usr/bin/env python3
"""Serves a built app (dist/) on localhost with the right MIME types (application/wasm lets the
browser compile the wasm while it streams in).

usage: serve.py DIRECTORY PORT [--not-isolated]
  port 0 picks a free one; the chosen URL is printed first. Every answer carries the COOP/COEP
  headers that make the page cross-origin isolated: it then has SharedArrayBuffer, and its CPU
  path trains on every core (the threaded worker). --not-isolated leaves them out (the page then
  trains on one thread and says why; the e2e test of that fallback). --cross-origin-isolated,
  the old way to ask for them, is accepted.
"""
import functools
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".gz": "application/gzip",
    }

    isolated = True

    def end_headers(self):
        if self.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format, *args):  # quiet: tests print their own progress
        pass


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    Handler.isolated = "--not-isolated" not in sys.argv[3:]
    handler = functools.partial(Handler, directory=directory)
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
