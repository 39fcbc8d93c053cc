#!/usr/bin/env python3
"""A local stand-in for the Hugging Face hub and the GLUE download server, for the fetch tests only.

Serves ROOT/<repo>/<file> at /<repo>/resolve/main/<file> (the hub's URL layout) and any other path
ROOT/<path> as a plain file. Listens on 127.0.0.1 only, prints "PORT <n>" on stdout once it accepts
connections, and appends one JSON line per request to --log. Faults come from --control, a JSON file
re-read on every request, so a test can change them while the server runs:

  {"faults": {"/repo/resolve/main/file": ["drop", "500", "429", "404"]},  one-shot, consumed in order
   "token": "secret",            every request needs "Authorization: Bearer secret", else 401
   "bad_etag": ["/repo/resolve/main/file"],   sends a SHA-256 ETag that does not match the bytes
   "no_range": true,             ignores Range headers (always 200 with the whole file)
   "chunk_delay_ms": 5}          sleeps between 64 KiB chunks (lets concurrent fetches overlap)

Files ending in .safetensors behave like LFS files: the resolve URL answers 302 with X-Linked-Etag
(SHA-256 hex, quoted) and the bytes come from /cdn/<path>, whose ETag is not a SHA-256 (as on the
real CDN). Other hub files carry a quoted git blob SHA-1 as ETag, which a client must not take for a
SHA-256.
"""
import argparse
import hashlib
import http.server
import json
import os
import re
import sys
import threading
import time

RESOLVE = re.compile(r"^/(?P<repo>[^?#]+?)/resolve/(?P<rev>[^/]+)/(?P<file>[^?#]+)$")
CHUNK = 64 * 1024


class State:
    def __init__(self, root, control, log):
        self.root = os.path.realpath(root)
        self.control = control
        self.log = log
        self.lock = threading.Lock()
        self.consumed = {}  # path -> number of one-shot faults already used

    def read_control(self):
        if not self.control or not os.path.exists(self.control):
            return {}
        with open(self.control, encoding="utf-8") as f:
            text = f.read()
        return json.loads(text) if text.strip() else {}

    def next_fault(self, control, path):
        faults = control.get("faults", {}).get(path, [])
        with self.lock:
            used = self.consumed.get(path, 0)
            if used < len(faults):
                self.consumed[path] = used + 1
                return faults[used]
        return None

    def record(self, entry):
        if not self.log:
            return
        with self.lock:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake_hub/1"

    def log_message(self, fmt, *args):  # quiet: the test reads --log instead
        pass

    def do_GET(self):
        state = self.server.state
        control = state.read_control()
        path = self.path.split("?", 1)[0]
        state.record({"method": "GET", "path": path, "authorization": self.headers.get("Authorization", ""),
                      "range": self.headers.get("Range", "")})
        token = control.get("token")
        if token and self.headers.get("Authorization", "") != "Bearer " + token:
            return self.send_status(401, "Unauthorized: a token is required")
        fault = state.next_fault(control, path)
        if fault in ("500", "502", "503", "429"):
            extra = {"Retry-After": "0"} if fault == "429" else {}
            return self.send_status(int(fault), "injected failure", extra)
        if fault == "404":
            return self.send_status(404, "injected 404")

        cdn = path.startswith("/cdn/")
        match = RESOLVE.match(path)
        if match:
            if match.group("rev") != "main":
                return self.send_status(404, "Revision not found")
            relative = match.group("repo") + "/" + match.group("file")
        elif cdn:
            relative = path[len("/cdn/"):]
        else:
            relative = path.lstrip("/")
        local = os.path.realpath(os.path.join(state.root, relative))
        if not local.startswith(state.root + os.sep) or not os.path.isfile(local):
            return self.send_status(404, "Entry not found")
        with open(local, "rb") as f:
            data = f.read()

        sha256 = hashlib.sha256(data).hexdigest()
        if path in control.get("bad_etag", []):
            sha256 = hashlib.sha256(data + b"tampered").hexdigest()
        if match and relative.endswith(".safetensors"):
            self.send_response(302)
            self.send_header("Location", "/cdn/" + relative)
            self.send_header("ETag", '"%s"' % sha256)
            self.send_header("X-Linked-Etag", '"%s"' % sha256)
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if cdn:
            etag = '"%s-1"' % hashlib.md5(data).hexdigest()
        elif match:
            etag = '"%s"' % (sha256 if path in control.get("bad_etag", []) else git_blob_sha1(data))
        else:
            etag = '"%s"' % hashlib.md5(data).hexdigest()
        self.send_body(data, etag, control, fault == "drop")

    def send_body(self, data, etag, control, drop):
        start, status = 0, 200
        range_header = self.headers.get("Range", "")
        m = re.match(r"^bytes=(\d+)-$", range_header)
        if m and not control.get("no_range"):
            start = int(m.group(1))
            if start >= len(data):
                return self.send_status(416, "Range Not Satisfiable",
                                        {"Content-Range": "bytes */%d" % len(data)})
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        if drop:
            self.send_header("Connection", "close")
        self.end_headers()
        limit = len(body) // 2 if drop else len(body)
        delay = control.get("chunk_delay_ms", 0) / 1000.0
        sent = 0
        try:
            while sent < limit:
                n = min(CHUNK, limit - sent)
                self.wfile.write(body[sent:sent + n])
                self.wfile.flush()
                sent += n
                if delay:
                    time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if drop:
            self.close_connection = True
            self.connection.shutdown(2)

    def send_status(self, status, message, extra=None):
        body = (json.dumps({"error": message}) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder served in the hub's layout")
    parser.add_argument("--control", help="JSON file with faults, re-read on every request")
    parser.add_argument("--log", help="file that gets one JSON line per request")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args.root, args.control, args.log)
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
