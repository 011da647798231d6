#!/usr/bin/env python3
# zoo_server.py ROOT PORT_FILE LOG_FILE: a local HTTP server for the model
# zoo tests (standard library only).  It listens on 127.0.0.1 at a free
# port, writes the port to PORT_FILE, logs one line per request to LOG_FILE
# ("GET PATH RANGE") and serves the files under ROOT until it is killed:
#
#   /PATH            the file, honouring "Range: bytes=N-" / "bytes=N-M"
#                    (206 with Content-Range; 416 past the end)
#   /short/PATH      announces the file's full Content-Length, sends the
#                    first half of what was asked for, then closes
#   /redirect/PATH   302 to /PATH (Hugging Face redirects to its storage)
#   /norange/PATH    ignores Range: always 200 with the whole file
#   /slow/PATH       the file, after a second's wait (overlapping downloads)
#
# A path that is no file under ROOT gets 404.
import http.server
import os
import re
import sys
import time

root, port_file, log_file = sys.argv[1:4]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def log(self):
        with open(log_file, "a") as f:
            f.write(f"GET {self.path} {self.headers.get('Range', '-')}\n")

    def send_body(self, status, body, length, extra=()):
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.log()
        path = self.path
        mode = None
        for prefix in ("short", "redirect", "norange", "slow"):
            if path.startswith(f"/{prefix}/"):
                mode, path = prefix, path[len(prefix) + 1:]
        if mode == "slow":
            time.sleep(1)
        if mode == "redirect":
            self.send_response(302)
            self.send_header("Location", path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        file = os.path.abspath(os.path.join(root, path.lstrip("/")))
        if not file.startswith(os.path.abspath(root) + os.sep) or not os.path.isfile(file):
            msg = b"not found\n"
            self.send_body(404, msg, len(msg))
            return
        with open(file, "rb") as f:
            data = f.read()
        size = len(data)
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m is None or mode == "norange":
            status, start, end, extra = 200, 0, size, []
        else:
            start = int(m.group(1))
            end = min(int(m.group(2)) + 1, size) if m.group(2) else size
            if start >= size:
                self.send_body(416, b"", 0, [("Content-Range", f"bytes */{size}")])
                return
            status, extra = 206, [("Content-Range", f"bytes {start}-{end - 1}/{size}")]
        body = data[start:end]
        if mode == "short":
            body = body[: len(body) // 2]
        self.send_body(status, body, end - start, extra)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
