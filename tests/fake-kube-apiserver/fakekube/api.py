"""The Kubernetes REST API over the store: discovery, GET/LIST, POST, PUT, PATCH (apply,
merge, strategic, JSON patch) and DELETE, with the real server's checks and errors."""

import base64
import binascii
import json
import random
import string
import time
import traceback
from dataclasses import dataclass, field

from . import bodies, errors as E, ownership, paths, resources as R, selectors, shapes


MAX_BODY = 3 * 1024 * 1024
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE, APPLY, STRATEGIC)
VERSION = {"major": "1", "minor": "30", "gitVersion": "v1.30.0+fake", "gitCommit": "0000000000000000000000000000000000000000",
           "gitTreeState": "clean", "buildDate": "2024-04-17T00:00:00Z", "goVersion": "go1.22.2", "compiler": "gc",
           "platform": "linux/amd64"}


@dataclass
class Request:
    method: str
    path: str
    query: dict                      # name -> [values]
    headers: dict                    # lower-case name -> value
    body: bytes = b""
    user: str = ""

    def q(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def content_type(self):
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Response:
    code: int
    body: object                     # dict -> JSON, str -> text/plain
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json"
    stream: object = None            # an iterator of watch events, sent chunked, one JSON per line


def ok(code, body):
    return Response(code, body)


class KubeApi:
    def __init__(self, store, server_address):
        self.store = store
        self.registry = store.registry
        self.server_address = server_address        # callable -> "127.0.0.1:port"

    def handle(self, req):
        try:
            return self._route(req)
        except E.ApiError as err:
            return Response(err.code, err.status(), dict(err.headers))
        except Exception as err:  # a bug in the double: answer like a server that panicked
            traceback.print_exc()
            err = E.internal(f"fake-kube-apiserver bug: {err!r}")
            return Response(err.code, err.status())

    # --- routing ------------------------------------------------------------------------

    def _route(self, req):
        if req.path in ("/healthz", "/livez", "/readyz"):
            return Response(200, "ok", content_type="text/plain; charset=utf-8")
        if req.path == "/version":
            return ok(200, VERSION)
        if req.path == "/":
            return ok(200, {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]})
        rp = paths.parse(req.path)
        if rp is None:
            raise E.resource_not_found()
        if isinstance(rp, str) or not rp.plural:
            if req.method != "GET":
                raise E.method_not_allowed()
            return self._discovery(req, rp)
        rt = self._resolve(rp)
        verb = paths.verb(req.method, rp, req.query)
        if verb not in rt.verbs:
            raise E.method_not_allowed()
        if rp.subresource:
            return self._subresource(req, rt, rp)
        handler = {"list": self._list, "watch": self._watch, "get": self._get, "create": self._create,
                   "update": self._update, "patch": self._patch, "delete": self._delete,
                   "deletecollection": self._delete_collection}.get(verb)
        if handler is None:
            raise E.method_not_allowed()
        return handler(req, rt, rp)

    def _resolve(self, rp):
        """The kind behind a path; 404 like the real server for anything it would not route."""
        rt = self.registry.lookup(rp.group, rp.version, rp.plural)
        if rt is None:
            raise E.resource_not_found()
        if rt.namespaced and rp.namespace is None and rp.name is not None:
            raise E.resource_not_found()
        if not rt.namespaced and rp.namespace is not None:
            raise E.resource_not_found()
        if rp.subresource and rp.subresource not in rt.subresources:
            raise E.resource_not_found()
        return rt

    def _discovery(self, req, rp):
        aggregated = R.wants_aggregated(req.headers.get("accept"))
        if rp in ("api", "apis") and aggregated:
            body = R.aggregated_discovery(self.registry, rp == "api", aggregated)
            return Response(200, body, content_type=aggregated)
        if rp == "api":
            return ok(200, R.api_versions(self.server_address()))
        if rp == "apis":
            return ok(200, R.api_group_list(self.registry))
        if isinstance(rp, str):
            body = R.api_group(self.registry, rp[len("group:"):])
        else:
            body = R.api_resource_list(self.registry, rp.group, rp.version)
        if body is None:
            raise E.resource_not_found()
        return ok(200, body)

    # --- reads --------------------------------------------------------------------------

    def _get(self, req, rt, rp):
        return ok(200, self.store.get(rt, rp.namespace, rp.name))

    def _list(self, req, rt, rp):
        items, rv = self.store.list(rt, rp.namespace, self._list_filter(req))
        meta = {"resourceVersion": rv}
        items, meta = _paginate(items, req, meta)
        if not rt.custom:       # typed lists carry no kind/apiVersion per item; unstructured ones do
            for item in items:
                item.pop("apiVersion", None)
                item.pop("kind", None)
        return ok(200, {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items})

    def _watch(self, req, rt, rp):
        """Events after resourceVersion; without one (or "0"), ADDED for what exists first."""
        keep = self._list_filter(req)
        rv = req.q("resourceVersion", "")
        if rv not in ("", "0") and not rv.isdigit():
            raise E.bad_request(f'resourceVersion: Invalid value: "{rv}": must be a non-negative integer')
        try:
            timeout = min(int(req.q("timeoutSeconds") or 1800), 3600)
        except ValueError:
            raise E.bad_request("timeoutSeconds must be an integer")
        deadline = time.monotonic() + timeout
        initial, since = [], int(rv or 0)
        if rv in ("", "0"):
            initial, current = self.store.list(rt, rp.namespace, keep)
            since = int(current)
        events = self.store.watch(rt, rp.namespace, keep, since, deadline)

        def stream():
            for obj in initial:
                yield {"type": "ADDED", "object": obj}
            try:
                yield from events
            except E.ApiError as err:       # a too old resourceVersion: 410 as an ERROR event, as the watch cache does
                yield {"type": "ERROR", "object": err.status()}
        return Response(200, None, stream=stream())

    def _list_filter(self, req):
        labels = selectors.parse_label_selector(req.q("labelSelector", ""))
        fields = selectors.parse_field_selector(req.q("fieldSelector", ""))
        return lambda obj: (selectors.label_matches(labels, (obj.get("metadata") or {}).get("labels") or {})
                            and selectors.field_matches(fields, obj))

    def _subresource(self, req, rt, rp):
        if req.method != "GET":
            raise E.ApiError(405, "MethodNotAllowed",
                             f"{req.method} on the {rp.subresource} subresource is not implemented by this test double",
                             {})
        obj = self.store.get(rt, rp.namespace, rp.name)
        if rp.subresource != "scale":
            return ok(200, obj)
        meta = obj["metadata"]
        match = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return ok(200, {"kind": "Scale", "apiVersion": "autoscaling/v1",
                        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                          "creationTimestamp") if k in meta},
                        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
                        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                                   "selector": ",".join(f"{k}={v}" for k, v in sorted(match.items()))}})

    # --- writes -------------------------------------------------------------------------

    def _create(self, req, rt, rp):
        if rt.namespaced and rp.namespace is None:
            raise E.resource_not_found()
        _check_options(req, "CreateOptions", apply=False)
        body = bodies.decode_object(req, rt)
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        name = meta.get("name", "")
        if not name:
            raise E.invalid(rt.kind, rt.group, "", [E.field_required("metadata.name",
                                                                     "name or generateName is required")])
        manager = _manager(req)

        def op(live, managers):
            return body, ownership.record_update(managers, manager, None, body, rt.api_version)
        _, obj = self.store.write(rt, rp.namespace, name, op, dry_run=_dry_run(req), create_only=True)
        return ok(201, obj)

    def _update(self, req, rt, rp):
        _check_options(req, "UpdateOptions", apply=False)
        body = bodies.decode_object(req, rt)
        manager = _manager(req)

        def op(live, managers):
            _check_resource_version(rt, rp.name, body, live)
            return body, ownership.record_update(managers, manager, live, body, rt.api_version)
        _, obj = self.store.write(rt, rp.namespace, rp.name, op, dry_run=_dry_run(req), must_exist=True)
        return ok(200, obj)

    def _patch(self, req, rt, rp):
        accepted = PATCH_TYPES if not rt.custom else (JSON_PATCH, MERGE, APPLY)
        if req.content_type not in accepted:
            raise E.unsupported_media_type(accepted)
        apply = req.content_type == APPLY
        _check_options(req, "PatchOptions", apply=apply)
        if apply:
            return self._apply(req, rt, rp)
        patch = bodies.decode_json(req.body, "error decoding patch")
        manager = _manager(req)

        def op(live, managers):
            if req.content_type == JSON_PATCH:
                new = ownership.json_patch(live, patch)
            else:
                if not isinstance(patch, dict):
                    raise E.bad_request("the body of the request must be a JSON object")
                new = ownership.merge_patch(live, patch)
                _check_resource_version(rt, rp.name, patch, live)
            new = ownership.drop_nulls(new)
            problems = shapes.shape_problems(rt, new) if isinstance(new, dict) else ["not an object"]
            if problems:     # the patched object does not decode: 422 on an empty GroupKind
                raise E.invalid("", "", "", [E.field_invalid("patch", json.dumps(new), problems[0])])
            return new, ownership.record_update(managers, manager, live, new, rt.api_version)
        _, obj = self.store.write(rt, rp.namespace, rp.name, op, dry_run=_dry_run(req), must_exist=True)
        return ok(200, obj)

    def _apply(self, req, rt, rp):
        manager = req.q("fieldManager")
        force = req.q("force", "false") == "true"
        body = bodies.decode_yaml(req.body)
        group, _, version = (body.get("apiVersion") or "").rpartition("/")
        if (group, version, body.get("kind", "")) != (rt.group, rt.version, rt.kind):
            raise E.bad_request(f"invalid object type: {group}/{version}, Kind={body.get('kind', '')}")
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        if meta.get("managedFields") is not None:
            raise E.bad_request("metadata.managedFields must be nil")
        problems = shapes.apply_problems(rt, body)
        if problems:
            who = f"{meta.get('namespace', '')}/{meta.get('name', '')}; {rt.group}/{rt.version}, Kind={rt.kind}"
            raise E.internal(f"failed to create typed patch object ({who}): {problems[0]}", reason="")
        config = ownership.drop_nulls(body)
        if rt.has_status:
            config.pop("status", None)

        def op(live, managers):
            _check_apply_preconditions(rt, rp.name, meta, live)
            return ownership.apply(live, managers, manager, config, force, rt.api_version)
        created, obj = self.store.write(rt, rp.namespace, rp.name, op, dry_run=_dry_run(req))
        return ok(201 if created else 200, obj)

    def _delete(self, req, rt, rp):
        opts = _delete_options(req)
        obj = self.store.delete(rt, rp.namespace, rp.name, opts.get("preconditions"), _dry_run(req, opts), req.user)
        if rt.kind in ("Namespace", "CustomResourceDefinition") and not rt.custom:
            # Both have finalizers: the real server answers with the object, now terminating.
            obj["metadata"]["deletionTimestamp"] = obj["metadata"]["creationTimestamp"]
            if rt.kind == "Namespace":
                obj["status"] = {"phase": "Terminating"}
            return ok(200, obj)
        return ok(200, E.success_status(E.details(rt, rp.name, uid=obj["metadata"]["uid"])))

    def _delete_collection(self, req, rt, rp):
        if rt.namespaced and rp.namespace is None:
            raise E.resource_not_found()
        opts = _delete_options(req)
        listing = self._list(req, rt, rp).body
        for item in listing["items"]:
            meta = item["metadata"]
            self.store.delete(rt, meta.get("namespace"), meta["name"], None, _dry_run(req, opts), req.user)
        listing["metadata"] = {"resourceVersion": str(self.store.rv)}
        return ok(200, listing)


# --- helpers --------------------------------------------------------------------------------

def _manager(req):
    """Like managerOrUserAgent: the fieldManager, else the User-Agent up to its first '/'."""
    return req.q("fieldManager") or (req.headers.get("user-agent") or "unknown").split("/")[0]


def _dry_run(req, opts=None):
    values = req.query.get("dryRun") or (opts or {}).get("dryRun") or []
    return "All" in values


def _check_options(req, options_kind, apply):
    """The checks of ValidatePatchOptions / ValidateCreateOptions (422 on meta.k8s.io options)."""
    errs = []
    manager = req.q("fieldManager")
    if apply and not manager:
        errs.append(E.field_required("fieldManager", "is required for apply patch"))
    if not apply and req.q("force") is not None and options_kind == "PatchOptions":
        errs.append(E.field_forbidden("force", "may not be specified for non-apply patch"))
    if manager and len(manager.encode()) > 128:
        errs.append(E.FieldError("Too long", "fieldManager", detail="may not be more than 128 bytes"))
    for value in req.query.get("dryRun", []):
        if value != "All":
            errs.append(E.field_not_supported("dryRun", value, ["All"]))
    fv = req.q("fieldValidation")
    if fv is not None and fv not in ("", "Ignore", "Warn", "Strict"):
        errs.append(E.field_not_supported("fieldValidation", fv, ["", "Ignore", "Warn", "Strict"]))
    if errs:
        raise E.invalid(options_kind, "meta.k8s.io", "", errs)


def _check_resource_version(rt, name, body, live):
    meta = body.get("metadata") if isinstance(body, dict) else None
    want = meta.get("resourceVersion") if isinstance(meta, dict) else None
    if want and live is not None and want != live["metadata"].get("resourceVersion"):
        raise E.conflict(rt, name, E.MODIFIED)


def _check_apply_preconditions(rt, name, meta, live):
    uid = meta.get("uid")
    if uid and live is None:
        raise E.conflict(rt, name, f"uid mismatch: the provided object specified uid {uid}, "
                                   "and no existing object was found")
    if uid and uid != live["metadata"].get("uid"):
        raise E.conflict(rt, name, f"Precondition failed: UID in precondition: {uid}, "
                                   f"UID in object meta: {live['metadata'].get('uid')}")
    if live is not None:
        _check_resource_version(rt, name, {"metadata": meta}, live)


def _delete_options(req):
    opts = bodies.decode_json(req.body, "error decoding DeleteOptions") if req.body.strip() else {}
    if not isinstance(opts, dict):
        raise E.bad_request("DeleteOptions must be a JSON object")
    policy = req.q("propagationPolicy") or opts.get("propagationPolicy")
    if policy is not None and policy not in ("Foreground", "Background", "Orphan"):
        raise E.invalid("DeleteOptions", "meta.k8s.io", "", [E.field_not_supported(
            "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])])
    return opts


def _paginate(items, req, meta):
    start = 0
    token = req.q("continue")
    if token:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["start"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise E.bad_request("continue key is not valid: invalid continue token")
    limit = req.q("limit")
    try:
        limit = int(limit) if limit else 0
    except ValueError:
        raise E.bad_request(f'strconv.ParseInt: parsing "{limit}": invalid syntax')
    page = items[start:start + limit] if limit > 0 else items[start:]
    if limit > 0 and start + limit < len(items):
        meta["continue"] = base64.urlsafe_b64encode(json.dumps({"start": start + limit}).encode()).decode()
        meta["remainingItemCount"] = len(items) - start - limit
    return page, meta
