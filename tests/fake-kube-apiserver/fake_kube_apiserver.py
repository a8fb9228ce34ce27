#!/usr/bin/env python3
"""fake-kube-apiserver: a TEST DOUBLE of the Kubernetes API server, for tests only.

It serves, over HTTPS on 127.0.0.1, the part of the Kubernetes REST API a deploy agent
uses: discovery, server-side apply, GET/LIST with selectors, PUT/POST/PATCH, DELETE, with
the real server's status codes and `Status` error bodies, field ownership, defaults,
validation, generations and controller-like status. Clients talk to it exactly as they
would to a real cluster (client certificate or bearer token, same URLs, same bodies).

Tests steer it through a control API under /_fake/ (health modes, failure injection,
token rotation, drift, request log). Nothing here is fit for anything but tests.

    python3 fake_kube_apiserver.py --port 0 --cert server.crt --key server.key \\
        --client-ca ca.crt [--token TOKEN]... [--state FILE]

Prints `LISTENING <port>` on stdout once it accepts connections; logs to stderr;
exits 0 on SIGTERM. See README.md next to this file.
"""

import argparse
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.dont_write_bytecode = True     # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakekube import errors as E, paths  # noqa: E402
from fakekube.api import MAX_BODY, KubeApi, Request  # noqa: E402
from fakekube.control import Control, Injector, RequestLog, Tokens, injected_error  # noqa: E402
from fakekube.resources import ResourceType  # noqa: E402
from fakekube.store import Store  # noqa: E402

HANDSHAKE_TIMEOUT = 10
IDLE_TIMEOUT = 90       # kube-apiserver's idle timeout for keep-alive connections


def log(message):
    sys.stderr.write(f"fake-kube-apiserver: {message}\n")
    sys.stderr.flush()


class BodyTooLarge(Exception):
    pass


class FakeCluster:
    """Everything a request handler needs, shared by all connections."""

    def __init__(self, args):
        with open(args.client_ca) as f:
            ca_pem = f.read()
        self.store = Store(args.state, ca_pem)
        self.tokens = Tokens(args.token or ())
        self.injector = Injector()
        self.log = RequestLog()
        self.port = 0
        self.api = KubeApi(self.store, lambda: f"127.0.0.1:{self.port}")
        self.control = Control(self.store, self.tokens, self.injector, self.log)

    def authenticate(self, conn, headers):
        """The user name, or None. A verified client certificate or a known bearer token
        authenticates (the real server's union authenticator); nothing else does."""
        cert = conn.getpeercert()
        if cert:
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        return value
        auth = headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return self.tokens.user_for(auth[7:].strip())
        return None

    def injection_context(self, method, path, query):
        """(kind, name, namespace, verb) of a request, for the wording of an injected error."""
        rp = paths.parse(path)
        if not isinstance(rp, paths.ResourcePath) or not rp.plural:
            rp = paths.ResourcePath("", "v1", path.strip("/").split("/")[-1] or "resources")
        rt = self.store.registry.lookup(rp.group, rp.version, rp.plural) or ResourceType(
            rp.group, rp.version, rp.plural, rp.plural.capitalize(), rp.namespace is not None)
        return rt, rp.name, rp.namespace, paths.verb(method, rp, query)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive: libcurl reuses connections
    server_version = "fake-kube-apiserver"
    timeout = IDLE_TIMEOUT

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def version_string(self):
        return self.server_version

    def log_request(self, code="-", size="-"):
        pass      # one line per request is written by _handle, with the user and the timing

    def log_message(self, fmt, *args):
        log(fmt % args)

    def _handle(self):
        started = time.monotonic()
        url = urlsplit(self.path)
        try:
            body = self._read_body()
        except BodyTooLarge:
            return self._finish(started, url.path, url.query, "", *self._error(E.too_large(MAX_BODY)))
        except (ValueError, OSError):
            self.close_connection = True
            return
        user = self.server.fake.authenticate(self.connection, self.headers)
        if user is None:
            return self._finish(started, url.path, url.query, "", *self._error(E.unauthorized()))
        req = Request(self.command, url.path, parse_qs(url.query, keep_blank_values=True),
                      {k.lower(): v for k, v in self.headers.items()}, body, user)
        if req.path.startswith("/_fake/"):
            code, reply = self.server.fake.control.handle(req.method, req.path, req.query, body)
            self._send(code, reply)
            log(f"{user} {self.command} {self.path} {code} (control)")
            return
        self._serve(started, req, url.query)

    def _serve(self, started, req, raw_query):
        """A Kubernetes API request, through the failure injection rules."""
        fake = self.server.fake
        rule = fake.injector.match(req.method, req.path, raw_query)
        action = rule["action"] if rule else None
        if action == "delay":
            time.sleep(rule["delay_ms"] / 1000.0)
        if action == "drop":
            return self._drop(started, req.path, raw_query, req.user, rule)
        if action == "huge":
            return self._huge(started, req, raw_query, rule)
        if action == "status":
            rt, name, namespace, verb = fake.injection_context(req.method, req.path, req.query)
            err = injected_error(rule, rt, name, namespace, req.user, verb)
            return self._finish(started, req.path, raw_query, req.user, *self._error(err), rule)
        resp = fake.api.handle(req)
        if action == "drop_after":
            return self._drop(started, req.path, raw_query, req.user, rule, resp.code)
        if resp.stream is not None:
            self._record(started, req.path, raw_query, req.user, resp.code, rule)
            return self._stream(resp)
        self._finish(started, req.path, raw_query, req.user, resp.code, resp.body, resp.headers, resp.content_type,
                     rule)

    def _huge(self, started, req, raw_query, rule):
        """A 200 answer of rule["bytes"] bytes (a JSON object with one long string), written in
        1 MiB pieces so the double never holds it: what a hostile or broken server could send."""
        head = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"huge"},"status":{"blob":"'
        tail = b'"}}\n'
        total = max(rule["bytes"], len(head) + len(tail))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(total))
        self.end_headers()
        try:
            self.wfile.write(head)
            left = total - len(head) - len(tail)
            piece = b"x" * (1 << 20)
            while left > 0:
                self.wfile.write(piece[:min(left, len(piece))])
                left -= min(left, len(piece))
            self.wfile.write(tail)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True  # the client gave up on it, as it should
        self._record(started, req.path, raw_query, req.user, 200, rule)

    def _error(self, err):
        return err.code, err.status(), err.headers, "application/json"

    def _finish(self, started, path, query, user, code, body, headers, content_type, rule=None):
        self._send(code, body, headers, content_type)
        self._record(started, path, query, user, code, rule)

    def _record(self, started, path, query, user, code, rule=None):
        action = f"{rule['action']}#{rule['id']}" if rule else None
        self.server.fake.log.add(method=self.command, path=path, query=query, code=code, user=user,
                                 contentType=self.headers.get("Content-Type", ""), injected=action)
        elapsed = (time.monotonic() - started) * 1000
        suffix = f" [injected {action}]" if action else ""
        log(f"{user or '-'} {self.command} {self.path} {code} {elapsed:.1f}ms{suffix}")

    def _send(self, code, body, headers=None, content_type="application/json"):
        if isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body, separators=(",", ":")).encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, resp):
        """A watch: chunked, one JSON event per line, until the watch times out or the client leaves."""
        self.send_response(resp.code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        try:
            for event in resp.stream:
                data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def _drop(self, started, path, query, user, rule, code=None):
        """Close the connection without an answer (for drop_after: after doing the work)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._record(started, path, query, user, code or 0, rule)

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._discard(length)
            raise BodyTooLarge()
        return self.rfile.read(length) if length else b""

    def _read_chunked(self):
        data, too_large = bytearray(), False
        while True:
            size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunk = self.rfile.read(size)
            self.rfile.readline(65537)
            if len(data) + len(chunk) > MAX_BODY:
                too_large = True
            else:
                data += chunk
        if too_large:
            raise BodyTooLarge()
        return bytes(data)

    def _discard(self, length):
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                break
            length -= len(chunk)


class FakeApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, tls_context, fake):
        self.tls_context = tls_context
        self.fake = fake
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        """The TLS handshake runs here, on the connection's own thread, so one slow or
        broken client cannot stall the accept loop."""
        request.settimeout(HANDSHAKE_TIMEOUT)
        # Headers and body go out as separate TLS records; without NODELAY, Nagle and the
        # peer's delayed ACK hold the second one back ~40 ms.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as err:
            log(f"TLS handshake with {client_address[0]}:{client_address[1]} failed: {err}")
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionError, ssl.SSLError, TimeoutError, socket.timeout)):
            return      # the client went away; nothing to report
        log(f"error serving {client_address}:\n{traceback.format_exc()}")


def tls_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(args.client_ca)
    # Optional: token-only clients present no certificate. A certificate not signed by the
    # client CA fails the handshake (the real server would answer 401 instead).
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def parse_args(argv):
    p = argparse.ArgumentParser(description="Kubernetes API server test double (tests only).")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: pick a free one)")
    p.add_argument("--cert", required=True, help="server certificate (PEM)")
    p.add_argument("--key", required=True, help="server private key (PEM)")
    p.add_argument("--client-ca", required=True, help="CA that signs accepted client certificates (PEM)")
    p.add_argument("--token", action="append", help="accepted bearer token (repeatable)")
    p.add_argument("--state", help="JSON file the store is saved to on every change and loaded from at start")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    fake = FakeCluster(args)
    server = FakeApiServer(("127.0.0.1", args.port), tls_context(args), fake)
    fake.port = server.server_address[1]

    def stop(signum, frame):
        # shutdown() waits for serve_forever to return: never call it from that thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"LISTENING {fake.port}", flush=True)
    log(f"listening on https://127.0.0.1:{fake.port}")
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
