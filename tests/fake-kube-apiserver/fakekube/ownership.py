"""A simplified server-side apply: field ownership by manager, merge, prune and conflicts.

Each manager owns a set of leaf paths. Maps merge key by key; lists and scalars are
leaves, replaced whole (the real server merges some lists by key, e.g. containers by
name). An apply removes the fields its manager owned before and no longer sends, unless
another manager owns them too. Without force, changing a value another manager owns is
a 409 conflict, worded like the real one.
"""

import copy

from . import errors as E
from .status import now

# Identity and server-owned metadata: never part of anybody's field set.
SYSTEM_META = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
               "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


def leaf_paths(obj, prefix=()):
    """Paths to every scalar, list and empty map in obj."""
    paths = set()
    for key, value in obj.items():
        path = prefix + (key,)
        if isinstance(value, dict) and value:
            paths |= leaf_paths(value, path)
        else:
            paths.add(path)
    return paths


def owned_paths(obj):
    """The paths a manager takes ownership of when it sends obj."""
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    meta = body.get("metadata")
    if isinstance(meta, dict):
        body["metadata"] = {k: v for k, v in meta.items() if k not in SYSTEM_META}
    return {p for p in leaf_paths(body) if p != ("metadata",)}


def get_path(obj, path, default=None):
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def has_path(obj, path):
    missing = object()
    return get_path(obj, path, missing) is not missing


def remove_path(obj, path):
    """Remove path, and the maps that leaves empty below the top level (`spec` itself stays)."""
    parents = []
    for key in path[:-1]:
        if not isinstance(obj, dict) or key not in obj:
            return
        parents.append((obj, key))
        obj = obj[key]
    if isinstance(obj, dict):
        obj.pop(path[-1], None)
    for parent, key in reversed(parents[1:]):
        if parent[key] == {}:
            del parent[key]


def overlaps(path, paths):
    """True when path or one of its ancestors or descendants is in paths."""
    return any(p[:len(path)] == path or path[:len(p)] == p for p in paths)


def deep_merge(base, patch):
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def drop_nulls(value):
    """JSON null decodes to a zero value in Go: for a map of fields, the same as absent."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def apply(live, managers, manager, config, force, api_version):
    """Merge an apply configuration into live (None when creating) -> (new object, managers)."""
    new = copy.deepcopy(live) if live is not None else {}
    mine = managers.get(manager, {})
    sent = owned_paths(config)
    others = {name: set(map(tuple, m["paths"])) for name, m in managers.items() if name != manager}

    conflicts = [(name, p) for p in sorted(sent) for name, theirs in others.items()
                 if overlaps(p, theirs) and live is not None and get_path(live, p) != get_path(config, p)]
    if conflicts and not force:
        raise conflict_error(conflicts, managers)
    for name, p in conflicts:       # forced: the applier takes the fields over
        others[name] = {q for q in others[name] if not overlaps(p, {q})}

    for p in set(map(tuple, mine.get("paths", ()))) - sent:
        extended = any(q[:len(p)] == p for q in sent)      # a leaf that became a map: merge handles it
        if not extended and not any(overlaps(p, theirs) for theirs in others.values()):
            remove_path(new, p)
    deep_merge(new, config)

    result = {name: dict(managers[name], paths=sorted(paths)) for name, paths in others.items() if paths}
    unchanged = mine.get("operation") == "Apply" and set(map(tuple, mine.get("paths", ()))) == sent
    result[manager] = mine if unchanged else {"operation": "Apply", "apiVersion": api_version, "time": now(),
                                              "paths": sorted(sent)}
    return new, result


def record_update(managers, manager, old, new, api_version):
    """An Update (PUT, PATCH, kubectl edit) owns the fields it changed, taking them from others."""
    changed = _changed_paths(old or {}, new)
    if not changed:
        return managers
    result = {}
    for name, m in managers.items():
        paths = {tuple(p) for p in m["paths"] if not overlaps(tuple(p), changed)}
        if name != manager and paths:
            result[name] = dict(m, paths=sorted(paths))
    mine = {tuple(p) for p in managers.get(manager, {}).get("paths", ())}
    mine = {p for p in mine | changed if has_path(new, p)} - {("metadata",)}
    mine = {p for p in mine if p[0] != "metadata" or len(p) < 2 or p[1] not in SYSTEM_META}
    if mine:
        result[manager] = {"operation": "Update", "apiVersion": api_version, "time": now(), "paths": sorted(mine)}
    return result


def _changed_paths(old, new, prefix=()):
    changed = set()
    for key in set(old) | set(new):
        if prefix == () and key in ("apiVersion", "kind", "status"):
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) or isinstance(b, dict):
            a = a if a is not None else {}
            b = b if b is not None else {}
        if isinstance(a, dict) and isinstance(b, dict):
            changed |= _changed_paths(a, b, prefix + (key,))
        elif a != b:
            changed.add(prefix + (key,))
    return changed


def conflict_error(conflicts, managers):
    def who(name):
        m = managers.get(name, {})
        if m.get("operation") == "Update":
            return f'"{name}" using {m.get("apiVersion", "")} at {m.get("time", "")}'
        return f'"{name}"'

    def dotted(path):
        return "." + ".".join(path)

    if len(conflicts) == 1:
        name, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {who(name)}: {dotted(p)}"
    else:
        lines = []
        for name in sorted({n for n, _ in conflicts}):
            lines.append(f"conflicts with {who(name)}:")
            lines += [f"- {dotted(p)}" for n, p in conflicts if n == name]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {who(n)}", "field": dotted(p)}
              for n, p in conflicts]
    return E.ApiError(409, "Conflict", message, {"causes": causes})


# --- the other patch types --------------------------------------------------------------------

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (also used for strategic merge patches: lists replace whole)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target, ops):
    """RFC 6902 add / remove / replace / test / copy / move."""
    doc = copy.deepcopy(target)
    if not isinstance(ops, list):
        raise E.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "test":
            if _pointer_get(doc, path) != op.get("value"):
                raise E.ApiError(422, "Invalid", f"testing value {path} failed: test failed")
        elif kind == "remove":
            _pointer_set(doc, path, remove=True)
        elif kind in ("add", "replace"):
            if kind == "replace":
                _pointer_get(doc, path)
            _pointer_set(doc, path, copy.deepcopy(op.get("value")), insert=kind == "add")
        elif kind in ("copy", "move"):
            value = copy.deepcopy(_pointer_get(doc, op.get("from", "")))
            if kind == "move":
                _pointer_set(doc, op.get("from", ""), remove=True)
            _pointer_set(doc, path, value, insert=True)
        else:
            raise E.bad_request(f"Unexpected kind: {kind}")
    return doc


def _pointer_parts(path):
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _pointer_get(doc, path):
    for part in _pointer_parts(path):
        try:
            doc = doc[int(part)] if isinstance(doc, list) else doc[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise E.ApiError(422, "Invalid", f"doc is missing path: \"{path}\": missing value")
    return doc


def _pointer_set(doc, path, value=None, remove=False, insert=False):
    parts = _pointer_parts(path)
    if not parts:
        raise E.ApiError(422, "Invalid", "the root of the document can not be replaced by a JSON patch")
    parent = _pointer_get(doc, "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts[:-1])) \
        if len(parts) > 1 else doc
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if remove:
            parent.pop(index)
        elif insert:
            parent.insert(index, value)
        else:
            parent[index] = value
    elif isinstance(parent, dict):
        if remove:
            if last not in parent:
                raise E.ApiError(422, "Invalid", f"Unable to remove nonexistent key: {last}: missing value")
            del parent[last]
        else:
            parent[last] = value
    else:
        raise E.ApiError(422, "Invalid", f"doc is missing path: \"{path}\": missing value")
