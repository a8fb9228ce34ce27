"""The object store: one lock, a global resourceVersion, the write pipeline every change
goes through (identity, namespace, system metadata, defaults, validation, generation,
status), cascading deletes, and optional persistence to a JSON file."""

import collections
import copy
import json
import os
import threading
import time
import uuid

from . import defaults, errors as E, ownership, shapes, status as S, validation
from .resources import BUILTIN, CRD_GROUP, Registry, is_established

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
WATCH_HISTORY = 4096
META_ORDER = ("name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
              "deletionTimestamp", "labels", "annotations", "ownerReferences", "finalizers")


def builtin(kind):
    return next(rt for rt in BUILTIN if rt.kind == kind)


def spec_part(rt, obj):
    """Everything a change of which bumps metadata.generation."""
    part = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")
            and not (k == "status" and (rt.has_status or not rt.custom))}
    if rt.generation == "spec+annotations":
        part["metadata.annotations"] = (obj.get("metadata") or {}).get("annotations") or {}
    return part


def _order_metadata(obj):
    """The real field order, and empty maps and lists dropped (they are omitempty in Go)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if v not in ({}, [])}
    ordered = {k: meta[k] for k in META_ORDER if k in meta}
    ordered.update((k, v) for k, v in meta.items() if k not in ordered)
    obj["metadata"] = ordered


def _paths_of(managers):
    return {name: sorted(map(tuple, m["paths"])) for name, m in managers.items()}


class Store:
    def __init__(self, state_file=None, root_ca_pem=""):
        self.lock = threading.RLock()
        self.records = {}            # (group, plural, namespace, name) -> {"obj": ..., "managers": ...}
        self.rv = 0
        self.changed = threading.Condition(self.lock)
        self.events = collections.deque(maxlen=WATCH_HISTORY)    # (rv, type, key, object) for watches
        self.history_floor = 0       # watches from before this resourceVersion cannot be served
        self.health = S.HealthSettings()
        self.registry = Registry(self.established_crds)
        self.state_file = state_file
        self.root_ca_pem = root_ca_pem
        if state_file and os.path.exists(state_file):
            self._load()
        else:
            self.bootstrap()
        self.history_floor = self.rv

    # --- reading --------------------------------------------------------------------------

    @staticmethod
    def key(rt, namespace, name):
        return (rt.group, rt.plural, namespace if rt.namespaced else "", name)

    def established_crds(self):
        with self.lock:
            return [r["obj"] for k, r in sorted(self.records.items())
                    if k[0] == CRD_GROUP and k[1] == "customresourcedefinitions" and is_established(r["obj"])]

    def get(self, rt, namespace, name):
        with self.lock:
            rec = self.records.get(self.key(rt, namespace, name))
            if rec is None:
                raise E.not_found(rt, name)
            return self._view(rt, rec["obj"])

    def list(self, rt, namespace, keep=lambda obj: True):
        """-> (items sorted by namespace/name, the store's resourceVersion)."""
        with self.lock:
            items = [self._view(rt, r["obj"]) for k, r in sorted(self.records.items())
                     if k[:2] == (rt.group, rt.plural) and (not namespace or k[2] == namespace) and keep(r["obj"])]
            return items, str(self.rv)

    def namespace_exists(self, namespace):
        with self.lock:
            return ("", "namespaces", "", namespace) in self.records

    def all_objects(self):
        with self.lock:
            return [(copy.deepcopy(r["obj"]), sorted(r["managers"])) for _, r in sorted(self.records.items())]

    @staticmethod
    def _view(rt, obj):
        view = copy.deepcopy(obj)
        view["apiVersion"] = rt.api_version       # custom resources are served in every version as stored
        return view

    # --- the write pipeline ---------------------------------------------------------------

    def write(self, rt, namespace, name, op, dry_run=False, must_exist=False, create_only=False):
        """op(live or None, managers) -> (new object, managers). Returns (created, object)."""
        with self.lock:
            key = self.key(rt, namespace, name)
            rec = self.records.get(key)
            if rec is None and must_exist:
                raise E.not_found(rt, name)
            if rec is not None and create_only:
                raise E.already_exists(rt, name)
            live = self._view(rt, rec["obj"]) if rec else None
            new, managers = op(copy.deepcopy(live), copy.deepcopy(rec["managers"]) if rec else {})
            new["apiVersion"], new["kind"] = rt.api_version, rt.kind
            problems = shapes.shape_problems(rt, new)
            if problems:
                raise E.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {problems[0]}')
            self._check_identity(rt, namespace, name, new)
            if live is None:
                if rt.namespaced and not self.namespace_exists(namespace):
                    raise E.namespace_not_found(namespace)
                self._init_system_meta(rt, new)
            else:
                self._keep_system_meta(rt, new, live)
            problem = validation.decode_problem(rt.kind, new)
            if problem:
                raise E.bad_request(problem)
            defaults.apply_defaults(rt, new, live, self)
            validation.validate(rt, new, live)
            _order_metadata(new)
            if live is not None and new == live and _paths_of(managers) == _paths_of(rec["managers"]):
                return False, live
            self._set_generation(rt, new, live)
            if dry_run:
                return live is None, new
            self._refresh_status(rt, new, live)
            self._commit(key, new, managers)
            if live is None and rt.kind == "Namespace" and not rt.group:
                self._seed_namespace(name)
            return live is None, self._view(rt, new)

    @staticmethod
    def _check_identity(rt, namespace, name, new):
        """The checks of rest.EnsureObjectNamespaceMatchesRequestNamespace and checkName."""
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise E.bad_request("metadata: expected object")
        want = namespace if rt.namespaced else ""
        have = meta.get("namespace") or ""
        if have != want:
            if not have:
                meta["namespace"] = want
            elif not want:
                meta.pop("namespace")
            else:
                raise E.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if meta.get("name", "") != name:
            raise E.bad_request(f"the name of the object ({meta.get('name', '')}) does not match the name on the URL ({name})")

    @staticmethod
    def _init_system_meta(rt, new):
        meta = new["metadata"]
        for k in ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "managedFields",
                  "selfLink"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = S.now()
        if rt.has_status:
            new.pop("status", None)

    @staticmethod
    def _keep_system_meta(rt, new, live):
        meta, old = new["metadata"], live["metadata"]
        for k in ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp"):
            if k in old:
                meta[k] = old[k]
            else:
                meta.pop(k, None)
        meta.pop("managedFields", None)
        if rt.has_status:
            if "status" in live:
                new["status"] = copy.deepcopy(live["status"])
            else:
                new.pop("status", None)

    @staticmethod
    def _set_generation(rt, new, live):
        meta = new["metadata"]
        if not rt.generation:
            meta.pop("generation", None)
        elif live is None:
            meta["generation"] = 1
        elif spec_part(rt, new) != spec_part(rt, live):
            meta["generation"] = live["metadata"].get("generation", 1) + 1

    def _refresh_status(self, rt, new, live):
        """Controllers react to a new object, a new generation, or (kinds without one) a spec change."""
        if live is not None:
            if rt.generation and new["metadata"].get("generation") == live["metadata"].get("generation"):
                return
            if not rt.generation and spec_part(rt, new) == spec_part(rt, live):
                return
        meta = new["metadata"]
        S.synthesize(rt, new, self.health.mode_for(rt, meta.get("namespace"), meta["name"]))

    def _commit(self, key, obj, managers):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        _order_metadata(obj)
        stored = copy.deepcopy(obj)      # records and events are never changed in place, only replaced
        self._event("MODIFIED" if key in self.records else "ADDED", key, stored)
        self.records[key] = {"obj": stored, "managers": managers}
        self.persist()

    def _remove(self, key):
        """Delete one record; like etcd, every deletion is a revision of its own."""
        obj = copy.deepcopy(self.records.pop(key)["obj"])
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._event("DELETED", key, obj)

    def _event(self, kind, key, obj):
        if len(self.events) == self.events.maxlen:
            self.history_floor = self.events[0][0]
        self.events.append((self.rv, kind, key, obj))
        self.changed.notify_all()

    def watch(self, rt, namespace, keep, since, deadline):
        """Yield the watch events of rt after resourceVersion `since` until `deadline`
        (time.monotonic()). Raises 410 Expired when that history is gone."""
        with self.lock:
            if since < self.history_floor:
                raise E.ApiError(410, "Expired", f"too old resource version: {since} ({self.rv})")
        last = since
        while True:
            with self.changed:
                batch = [e for e in self.events if e[0] > last]
                if not batch:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self.changed.wait(min(remaining, 1.0))
                    continue
                last = batch[-1][0]
            for _, kind, key, obj in batch:
                if key[:2] == (rt.group, rt.plural) and (not namespace or key[2] == namespace) and keep(obj):
                    yield {"type": kind, "object": self._view(rt, obj)}

    # --- allocator used by defaults ----------------------------------------------------------

    def cluster_ip(self):
        used = {(r["obj"].get("spec") or {}).get("clusterIP") for k, r in self.records.items() if k[1] == "services"}
        n = 10
        while f"10.43.{n // 250}.{n % 250 + 1}" in used:
            n += 1
        return f"10.43.{n // 250}.{n % 250 + 1}"

    def node_port(self):
        used = {p.get("nodePort") for k, r in self.records.items() if k[1] == "services"
                for p in (r["obj"].get("spec") or {}).get("ports") or []}
        return next(p for p in range(30000, 32768) if p not in used)

    # --- deletion ---------------------------------------------------------------------------

    def delete(self, rt, namespace, name, preconditions=None, dry_run=False, user=""):
        with self.lock:
            key = self.key(rt, namespace, name)
            rec = self.records.get(key)
            if rec is None:
                raise E.not_found(rt, name)
            obj = self._view(rt, rec["obj"])
            self._check_preconditions(rt, name, obj, preconditions or {})
            if rt.kind == "Namespace" and not rt.group and name in PROTECTED_NAMESPACES:
                raise E.forbidden(rt, name, "", user, "delete", why="this namespace may not be deleted")
            if dry_run:
                return obj
            self._cascade(rt, obj)
            self._remove(key)
            self.persist()
            return obj

    @staticmethod
    def _check_preconditions(rt, name, obj, pre):
        meta = obj["metadata"]
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise E.conflict(rt, name, f"Precondition failed: UID in precondition: {pre['uid']}, "
                                       f"UID in object meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise E.conflict(rt, name, f"Precondition failed: ResourceVersion in precondition: "
                                       f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                       f"{meta.get('resourceVersion')}")

    def _cascade(self, rt, obj):
        """A Namespace takes its content along; a CRD takes its custom resources."""
        if rt.kind == "Namespace" and not rt.group:
            doomed = [k for k in self.records if k[2] == obj["metadata"]["name"]]
        elif rt.kind == "CustomResourceDefinition" and rt.group == CRD_GROUP:
            spec = obj.get("spec") or {}
            doomed = [k for k in self.records
                      if k[:2] == (spec.get("group"), (spec.get("names") or {}).get("plural"))]
        else:
            doomed = []
        for k in doomed:
            self._remove(k)

    # --- test controls ----------------------------------------------------------------------

    def pin_mode(self, group, kind, namespace, name, mode):
        with self.lock:
            self.health.objects[S.HealthSettings.object_key(group, kind, namespace, name)] = mode
            self.persist()

    def set_status(self, rt, namespace, name, mode=None, status=None):
        """Pin an object's health mode (it may not exist yet) or overwrite its status."""
        with self.lock:
            if mode:
                self.health.objects[S.HealthSettings.object_key(rt.group, rt.kind, namespace, name)] = mode
            key = self.key(rt, namespace, name)
            rec = self.records.get(key)
            if rec is None:
                self.persist()
                return None
            obj = copy.deepcopy(rec["obj"])
            if status is not None:
                obj["status"] = status
            else:
                S.synthesize(rt, obj, mode)
            if obj != rec["obj"]:
                self._commit(key, obj, rec["managers"])
            return self._view(rt, obj)

    def set_kind_default(self, kind, mode, refresh=False):
        """New objects and new generations of `kind` ("*": all) get `mode`; refresh=True
        also re-synthesizes the status of the existing ones now."""
        with self.lock:
            self.health.kinds[kind] = mode
            if refresh:
                for key, rec in list(self.records.items()):
                    rt = self.registry.by_kind(rec["obj"].get("apiVersion"), rec["obj"].get("kind"))
                    if rt and kind in ("*", rt.kind):
                        self._resynthesize(key, rt)
            self.persist()

    def _resynthesize(self, key, rt):
        rec = self.records[key]
        obj = copy.deepcopy(rec["obj"])
        meta = obj["metadata"]
        S.synthesize(rt, obj, self.health.mode_for(rt, meta.get("namespace"), meta["name"]))
        if obj != rec["obj"]:
            self._commit(key, obj, rec["managers"])

    def reset(self):
        with self.lock:
            for key in sorted(self.records):
                self._remove(key)
            self.health = S.HealthSettings()
            self.bootstrap()

    # --- bootstrap and persistence ------------------------------------------------------------

    def bootstrap(self):
        """What a fresh cluster has: the system namespaces and the `kubernetes` Service."""
        for ns in SYSTEM_NAMESPACES:
            self.create_system_object(builtin("Namespace"), "", {"metadata": {"name": ns}})
        self.create_system_object(builtin("Service"), "default", {
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}})

    def create_system_object(self, rt, namespace, body, manager="kube-apiserver"):
        def op(live, managers):
            return copy.deepcopy(body), ownership.record_update({}, manager, None, body, rt.api_version)
        return self.write(rt, namespace, body["metadata"]["name"], op)

    def _seed_namespace(self, namespace):
        """Every namespace gets a `default` ServiceAccount and the cluster CA ConfigMap."""
        self.create_system_object(builtin("ServiceAccount"), namespace, {"metadata": {"name": "default"}},
                                  "kube-controller-manager")
        self.create_system_object(builtin("ConfigMap"), namespace, {
            "metadata": {"name": "kube-root-ca.crt", "annotations": {
                "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver "
                                             "when using internal endpoints such as the internal service IP or "
                                             "kubernetes.default.svc. No other usage is guaranteed across "
                                             "distributions of Kubernetes clusters."}},
            "data": {"ca.crt": self.root_ca_pem}}, "kube-controller-manager")

    def persist(self):
        """Write the whole store. Each record's JSON is made once, when it changes: a store
        holding large CRDs is rewritten on every change and must stay cheap to write."""
        if not self.state_file:
            return
        head = json.dumps({"format": 1, "resourceVersion": self.rv, "health": self.health.to_json()})
        records = ",\n".join(self._record_json(k, r) for k, r in sorted(self.records.items()))
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(head[:-1] + ', "records": [\n' + records + "\n]}\n")
        os.replace(tmp, self.state_file)

    @staticmethod
    def _record_json(key, rec):
        if "json" not in rec:
            rec["json"] = json.dumps({"key": list(key), "object": rec["obj"], "managers": rec["managers"]},
                                     separators=(",", ":"))
        return rec["json"]

    def _load(self):
        with open(self.state_file) as f:
            data = json.load(f)
        self.rv = data.get("resourceVersion", 0)
        self.health.load(data.get("health") or {})
        for r in data.get("records", []):
            self.records[tuple(r["key"])] = {"obj": r["object"], "managers": r["managers"]}
