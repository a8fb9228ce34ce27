"""Parsing Kubernetes API paths, shared by the router and the failure injector."""

from dataclasses import dataclass
from urllib.parse import unquote

NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass
class ResourcePath:
    group: str
    version: str
    plural: str = ""          # empty: the group/version's discovery document
    namespace: str = None     # None: no /namespaces/<ns>/ in the path
    name: str = None          # None: a collection
    subresource: str = None


def parse(path):
    """-> ResourcePath, or a string naming a discovery document ("api", "apis", "group:<g>"),
    or None when no API serves the path."""
    segs = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
    if not segs or "" in segs:
        return None
    if segs[0] == "api":
        if len(segs) == 1:
            return "api"
        group, version, rest = "", segs[1], segs[2:]
    elif segs[0] == "apis":
        if len(segs) == 1:
            return "apis"
        if len(segs) == 2:
            return "group:" + segs[1]
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        return None
    return _parse_rest(group, version, rest)


def _parse_rest(group, version, rest):
    rp = ResourcePath(group, version)
    if not rest:
        return rp
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in NAMESPACE_SUBRESOURCES:
        rp.namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    rp.plural = rest[0]
    rp.name = rest[1] if len(rest) > 1 else None
    rp.subresource = rest[2] if len(rest) > 2 else None
    return rp


def verb(method, rp, query):
    """The RBAC verb of a request, as the authorizer names it."""
    if method == "GET":
        if rp.name is None:
            return "watch" if query.get("watch", [""])[0] in ("true", "1") else "list"
        return "get"
    if method == "DELETE":
        return "delete" if rp.name is not None else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())
