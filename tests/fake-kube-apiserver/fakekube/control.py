"""The test-only control API under /_fake/, and the state it drives: bearer tokens,
failure injection rules and the request log."""

import copy
import json
import re
import threading
import time

from . import errors as E, ownership
from .status import MODES

DEFAULT_TOKEN_USER = "system:serviceaccount:sovdev:sovdev-agent"
ACTIONS = ("status", "delay", "drop", "drop_after", "huge")
MAX_LOG = 10000


class ControlError(Exception):
    def __init__(self, message, code=400):
        super().__init__(message)
        self.code = code


class Tokens:
    def __init__(self, tokens=()):
        self.lock = threading.Lock()
        self.users = {t: DEFAULT_TOKEN_USER for t in tokens}

    def user_for(self, token):
        with self.lock:
            return self.users.get(token)

    def update(self, add=(), remove=()):
        with self.lock:
            for entry in add:
                if isinstance(entry, dict):
                    self.users[entry["token"]] = entry.get("user", DEFAULT_TOKEN_USER)
                else:
                    self.users[str(entry)] = DEFAULT_TOKEN_USER
            for token in remove:
                self.users.pop(token, None)
            return len(self.users)


class RequestLog:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []
        self.seq = 0

    def add(self, **entry):
        with self.lock:
            self.seq += 1
            self.entries.append(dict(seq=self.seq, time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry))
            del self.entries[:-MAX_LOG]

    def snapshot(self):
        with self.lock:
            return list(self.entries)

    def clear(self):
        with self.lock:
            self.entries.clear()


class Injector:
    """Rules matched in order against (method, path[, query]); each fires `count` times
    (None: forever) after letting `skip` matching requests through, and with `for_ms` only
    until that many milliseconds have passed since it was added (an outage of a set length,
    whatever the client's pace; `count` then defaults to forever)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.next_id = 1

    def add(self, spec):
        action = spec.get("action", "status")
        if action not in ACTIONS:
            raise ControlError(f"action must be one of {', '.join(ACTIONS)}")
        if action == "status" and not isinstance(spec.get("code"), int):
            raise ControlError("action status needs an integer code")
        count = spec.get("count", None if "for_ms" in spec else 1)
        try:
            rule = {"id": 0, "method": str(spec.get("method", "*")).upper(), "path_regex": spec.get("path_regex", ""),
                    "query_regex": spec.get("query_regex"), "action": action, "code": spec.get("code"),
                    "reason": spec.get("reason"), "message": spec.get("message"),
                    "delay_ms": int(spec.get("delay_ms", 0)), "skip": int(spec.get("skip", 0)),
                    "bytes": int(spec.get("bytes", 0)),
                    "remaining": None if count is None or count < 0 else int(count), "fired": 0,
                    "for_ms": None if spec.get("for_ms") is None else int(spec["for_ms"]), "until": None}
            if rule["for_ms"] is not None:
                rule["until"] = time.monotonic() + rule["for_ms"] / 1000.0
            re.compile(rule["path_regex"])
            re.compile(rule["query_regex"] or "")
        except (re.error, TypeError, ValueError) as err:
            raise ControlError(f"bad rule: {err}")
        with self.lock:
            rule["id"] = self.next_id
            self.next_id += 1
            self.rules.append(rule)
            return dict(rule)

    def clear(self):
        with self.lock:
            self.rules.clear()

    def snapshot(self):
        with self.lock:
            return [dict(r) for r in self.rules]

    def match(self, method, path, query):
        with self.lock:
            for rule in self.rules:
                if rule["method"] not in ("*", method) or not re.search(rule["path_regex"], path):
                    continue
                if rule["query_regex"] and not re.search(rule["query_regex"], query):
                    continue
                if rule["remaining"] == 0:
                    continue
                if rule["until"] is not None and time.monotonic() >= rule["until"]:
                    continue
                if rule["skip"] > 0:
                    rule["skip"] -= 1
                    continue
                if rule["remaining"] is not None:
                    rule["remaining"] -= 1
                rule["fired"] += 1
                return dict(rule)
            return None


def injected_error(rule, rt, name, namespace, user, verb):
    """The Status an injected rule answers with, worded like the real server's."""
    code, message, reason = rule["code"], rule.get("message"), rule.get("reason")
    if code == 403:
        err = E.forbidden(rt, name, namespace, user, verb)
    elif code == 409:
        err = E.conflict(rt, name, message or E.MODIFIED)
        message = None
    elif code == 422:
        err = E.invalid(rt.kind, rt.group, name or "", [
            E.FieldError("Invalid value", "spec", "injected", message or "injected failure")])
        message = None
    elif code == 404:
        err = E.not_found(rt, name) if name else E.resource_not_found()
    elif code == 429:
        err = E.too_many_requests()
    elif code == 503:
        err = E.service_unavailable()
    elif code == 504:
        err = E.ApiError(504, "Timeout", "Timeout: request did not complete within the allotted timeout", {})
    elif code == 500:
        err = E.internal(message or "injected failure")
        message = None
    else:
        err = E.ApiError(code, reason or "", message or f"injected failure ({code})")
    if message:
        err.message = message
    if reason:
        err.reason = reason
    return err


class Control:
    def __init__(self, store, tokens, injector, log):
        self.store, self.tokens, self.injector, self.log = store, tokens, injector, log

    def handle(self, method, path, query, body):
        """-> (code, JSON body)."""
        route = {("POST", "/_fake/status"): self._status, ("POST", "/_fake/health-default"): self._health_default,
                 ("POST", "/_fake/inject"): self._inject, ("GET", "/_fake/injections"): self._injections,
                 ("POST", "/_fake/clear-injections"): self._clear_injections, ("POST", "/_fake/tokens"): self._tokens,
                 ("GET", "/_fake/objects"): self._objects, ("POST", "/_fake/mutate"): self._mutate,
                 ("GET", "/_fake/requests"): self._requests, ("POST", "/_fake/requests/clear"): self._clear_requests,
                 ("POST", "/_fake/reset"): self._reset}.get((method, path.rstrip("/")))
        if route is None:
            return 404, {"error": f"no control endpoint {method} {path}"}
        try:
            spec = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(spec, dict):
                raise ControlError("the body must be a JSON object")
            return route(spec, query)
        except ValueError as err:
            return 400, {"error": f"bad JSON: {err}"}
        except ControlError as err:
            return err.code, {"error": str(err)}
        except E.ApiError as err:
            return err.code, err.status()

    def _resolve(self, spec):
        rt = self.store.registry.by_kind(spec.get("apiVersion"), spec.get("kind"))
        if rt is None:
            raise ControlError(f"unknown kind {spec.get('apiVersion')}/{spec.get('kind')} "
                               "(a custom kind needs its CRD applied and Established)")
        if not spec.get("name"):
            raise ControlError("name is required")
        if rt.namespaced and not spec.get("namespace"):
            raise ControlError(f"{rt.kind} is namespaced: namespace is required")
        return rt, (spec.get("namespace") or "") if rt.namespaced else ""

    @staticmethod
    def _mode(spec):
        mode = spec.get("mode")
        if mode is not None and mode not in MODES:
            raise ControlError(f"mode must be one of {', '.join(MODES)}")
        return mode

    def _status(self, spec, query):
        mode, status = self._mode(spec), spec.get("status")
        if (mode is None) == (status is None):
            raise ControlError("give exactly one of mode and status")
        if mode and self.store.registry.by_kind(spec.get("apiVersion"), spec.get("kind")) is None:
            # A custom kind whose CRD is not there yet: remember the mode for when it is.
            group = str(spec.get("apiVersion", "")).rpartition("/")[0]
            self.store.pin_mode(group, spec.get("kind"), spec.get("namespace"), spec.get("name"), mode)
            return 200, {"object": None}
        rt, namespace = self._resolve(spec)
        obj = self.store.set_status(rt, namespace, spec["name"], mode=mode, status=status)
        return 200, {"object": obj}

    def _health_default(self, spec, query):
        mode = self._mode(spec)
        if not spec.get("kind") or mode is None:
            raise ControlError("kind and mode are required")
        self.store.set_kind_default(spec["kind"], mode, refresh=bool(spec.get("refresh")))
        return 200, {"kinds": dict(self.store.health.kinds)}

    def _inject(self, spec, query):
        return 200, self.injector.add(spec)

    def _injections(self, spec, query):
        return 200, {"items": self.injector.snapshot()}

    def _clear_injections(self, spec, query):
        self.injector.clear()
        return 200, {"items": []}

    def _tokens(self, spec, query):
        return 200, {"count": self.tokens.update(spec.get("add") or (), spec.get("remove") or ())}

    def _objects(self, spec, query):
        want = {k: query[k][0] for k in ("apiVersion", "kind", "namespace", "name") if k in query}
        items, managers = [], {}
        for obj, names in self.store.all_objects():
            meta = obj.get("metadata") or {}
            facts = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                     "namespace": meta.get("namespace", ""), "name": meta.get("name")}
            if all(facts[k] == v for k, v in want.items()):
                items.append(obj)
                managers["/".join(str(facts[k]) for k in ("apiVersion", "kind", "namespace", "name"))] = names
        return 200, {"resourceVersion": str(self.store.rv), "items": items, "managers": managers}

    def _mutate(self, spec, query):
        """An edit as a human makes it (kubectl edit): a merge patch owned by an Update manager."""
        rt, namespace = self._resolve(spec)
        patch = spec.get("patch")
        if not isinstance(patch, dict):
            raise ControlError("patch must be an object (a JSON merge patch)")
        manager = spec.get("manager", "kubectl-edit")

        def op(live, managers):
            new = ownership.merge_patch(live, copy.deepcopy(patch))
            return new, ownership.record_update(managers, manager, live, new, rt.api_version)
        _, obj = self.store.write(rt, namespace, spec["name"], op, must_exist=True)
        return 200, {"object": obj}

    def _requests(self, spec, query):
        return 200, {"items": self.log.snapshot()}

    def _clear_requests(self, spec, query):
        self.log.clear()
        return 200, {"items": []}

    def _reset(self, spec, query):
        self.store.reset()
        self.injector.clear()
        self.log.clear()
        return 200, {"resourceVersion": str(self.store.rv)}
