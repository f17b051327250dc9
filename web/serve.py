#!/usr/bin/env python3
"""Serves a built app (dist/) on localhost with the right MIME types (application/wasm lets the
browser compile the wasm while it streams in).

usage: serve.py DIRECTORY PORT   (port 0 picks a free one; the chosen URL is printed first)
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

    def log_message(self, format, *args):  # quiet: tests print their own progress
        pass


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    handler = functools.partial(Handler, directory=directory)
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
