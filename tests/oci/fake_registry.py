#!/usr/bin/env python3
"""A registry that lies, for oci_test: serves an OCI layout over the distribution v2 API
behind an anonymous bearer token, and misbehaves the way MODE says.

usage: fake_registry.py LAYOUT MODE   (prints "PORT <n>" once it listens on 127.0.0.1)
MODE: honest | redirect | wrong-digest-header | huge-manifest | long-blob | basic-auth |
      flaky (the first GET of each manifest and blob answers 503)
"""
import http.server
import json
import os
import sys
import threading
import urllib.parse

LAYOUT, MODE = sys.argv[1], sys.argv[2]
TOKEN = "tok-123"
SCOPE = "repository:test/app:pull"
FAILED_ONCE = set()
LOCK = threading.Lock()


def blob_file(digest):
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        return None
    path = os.path.join(LAYOUT, "blobs", "sha256", hexpart)
    return path if os.path.exists(path) else None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        port = self.server.server_address[1]
        url = urllib.parse.urlparse(self.path)
        if url.path == "/token":
            query = urllib.parse.parse_qs(url.query)
            if query.get("service") != ["fake-registry"] or query.get("scope") != [SCOPE]:
                return self.send(400, b"bad token request")
            return self.send(200, json.dumps({"token": TOKEN}).encode(),
                             [("Content-Type", "application/json")])
        if url.path.startswith("/redirected/"):
            path = blob_file("sha256:" + url.path[len("/redirected/"):])
            if path is None:
                return self.send(404)
            with open(path, "rb") as f:
                return self.send(200, f.read(), [("Content-Type", "application/octet-stream")])
        if MODE == "basic-auth":
            return self.send(401, b"", [("WWW-Authenticate", 'Basic realm="fake"')])
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            challenge = 'Bearer realm="http://127.0.0.1:%d/token",service="fake-registry",scope="%s"'
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                             [("WWW-Authenticate", challenge % (port, SCOPE))])
        prefix = "/v2/test/app/"
        if not url.path.startswith(prefix):
            return self.send(404)
        kind, _, ref = url.path[len(prefix):].partition("/")
        if MODE == "flaky":
            with LOCK:
                first = url.path not in FAILED_ONCE
                FAILED_ONCE.add(url.path)
            if first:
                return self.send(503, b"busy")
        if kind == "manifests":
            return self.manifest(ref)
        if kind == "blobs":
            return self.blob(ref)
        return self.send(404)

    def manifest(self, ref):
        media_type = None
        if ref.startswith("sha256:"):
            digest = ref
        else:
            with open(os.path.join(LAYOUT, "index.json")) as f:
                index = json.load(f)
            found = [d for d in index["manifests"]
                     if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref]
            if not found:
                return self.send(404)
            digest, media_type = found[0]["digest"], found[0]["mediaType"]
        path = blob_file(digest)
        if path is None:
            return self.send(404)
        with open(path, "rb") as f:
            body = f.read()
        if media_type is None:
            doc = json.loads(body)
            default = ("application/vnd.oci.image.index.v1+json" if "manifests" in doc
                       else "application/vnd.oci.image.manifest.v1+json")
            media_type = doc.get("mediaType", default)
        header_digest = digest
        if MODE == "wrong-digest-header":
            header_digest = "sha256:" + "0" * 64
        if MODE == "huge-manifest":
            body = body + b" " * (5 << 20)
        return self.send(200, body, [("Content-Type", media_type),
                                     ("Docker-Content-Digest", header_digest)])

    def blob(self, digest):
        path = blob_file(digest)
        if path is None:
            return self.send(404)
        if MODE == "redirect":
            return self.send(307, b"", [("Location", "/redirected/" + digest[7:])])
        with open(path, "rb") as f:
            body = f.read()
        if MODE == "long-blob":
            body += b"more"
        return self.send(200, body, [("Content-Type", "application/octet-stream")])


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("PORT %d" % server.server_address[1], flush=True)
server.serve_forever()
