#!/usr/bin/env python3
"""A stand-in for the Hugging Face hub for tests/test_pull.sh (stdlib only).

Serves ROOT/ORG/REPO/PATH at /ORG/REPO/resolve/REV/PATH on 127.0.0.1 (a free
port, written to --port-file), with its own Range handling. The REPO name is
a list of behaviours joined by '-':
  hub      answer with a 302 to /cdn/ORG/REPO/PATH carrying X-Linked-Etag
           (the sha256), X-Linked-Size and ETag, as the hub does for LFS files
  badsha   (with hub) an X-Linked-Etag that is not the file's sha256
  cut      a request without Range gets Content-Length of the whole file but
           the connection is closed after CUT bytes (--cut)
  norange  Range headers are ignored: always 200 with the whole file
  nolen    no Content-Length: the body ends when the connection closes
  slow     the body comes in 32 KiB pieces 30 ms apart
  auth     401 without "Authorization: Bearer secret"
Anything else is a 404. Every request is logged as one JSON line to --log
(path, range, authorization, status)."""
import argparse
import hashlib
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--root", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--cut", type=int, default=300000)
args = ap.parse_args()
lock = threading.Lock()


def log(entry):
    with lock, open(args.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def finish_log(self, status):
        log({"path": self.path, "range": self.headers.get("Range"),
             "auth": self.headers.get("Authorization"), "status": status})

    def plain(self, status, text, extra=()):
        body = text.encode()
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.finish_log(status)

    def do_GET(self):
        m = re.match(r"^/(cdn/)?([^/]+)/([^/]+)/(?:resolve/([^/]+)/)?(.+)$", self.path)
        if not m or (not m.group(1) and not m.group(4)):
            return self.plain(404, "no such path\n")
        cdn, org, repo, _rev, rel = m.groups()
        flags = set(repo.split("-"))
        path = os.path.join(args.root, org, repo, rel)
        if not os.path.isfile(path):
            return self.plain(404, "Entry not found\n")
        if "auth" in flags and self.headers.get("Authorization") != "Bearer secret":
            return self.plain(401, "Invalid credentials\n")
        data = open(path, "rb").read()
        sha = hashlib.sha256(data).hexdigest()
        if "badsha" in flags:
            sha = hashlib.sha256(b"something else").hexdigest()
        if "hub" in flags and not cdn:
            self.send_response(302)
            self.send_header("Location", "/cdn/%s/%s/%s" % (org, repo, rel))
            self.send_header("X-Linked-Etag", '"%s"' % sha)
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("ETag", '"%s"' % sha)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return self.finish_log(302)
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and "norange" not in flags:
            r = re.match(r"^bytes=(\d+)-$", rng)
            if not r:
                return self.plain(400, "bad range\n")
            start = int(r.group(1))
            if start >= len(data):
                return self.plain(416, "range not satisfiable\n", [("Content-Range", "bytes */%d" % len(data))])
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if "hub" in flags:
            self.send_header("ETag", '"%s"' % sha)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        if "nolen" in flags:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.finish_log(status)
        if "cut" in flags and not rng:
            self.wfile.write(body[:args.cut])
            self.wfile.flush()
            self.close_connection = True
            return
        try:
            if "slow" in flags:
                for i in range(0, len(body), 32768):
                    self.wfile.write(body[i:i + 32768])
                    self.wfile.flush()
                    time.sleep(0.03)
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
srv.serve_forever()
