#!/usr/bin/env python3
"""Serves a built app (dist/) on localhost with the right MIME types (application/wasm lets the
browser compile the wasm while it streams in).

usage: serve.py DIRECTORY PORT [--cross-origin-isolated]
  port 0 picks a free one; the chosen URL is printed first. --cross-origin-isolated adds the
  COOP/COEP headers that give a page SharedArrayBuffer (TF.js's wasm threads need them; the app
  does not, and is measured without them: bench/page-vs-tfjs.mjs).
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

    isolated = False

    def end_headers(self):
        if self.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format, *args):  # quiet: tests print their own progress
        pass


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    Handler.isolated = "--cross-origin-isolated" in sys.argv[3:]
    handler = functools.partial(Handler, directory=directory)
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
