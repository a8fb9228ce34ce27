"""The types of the fields the server reads, checked before anything else looks at a body.

Without the real OpenAPI schemas, this covers the fields the double's defaults and
validation touch. A mismatch is what the real server fails to decode: a 500 from server-side
apply's typed conversion ("failed to create typed patch object"), a 400 from POST/PUT, a
422 from a merge or JSON patch.
"""

from .errors import go_repr

STR, INT, MAP, LIST = str, int, dict, list
TYPE_NAMES = {STR: "string", INT: "numeric (int or float)", MAP: "map", LIST: "list"}


def _pod_spec(p):
    shape = {p: MAP, f"{p}.restartPolicy": STR}
    for field in ("containers", "initContainers"):
        c = f"{p}.{field}"
        shape.update({c: LIST, f"{c}.*": MAP, f"{c}.*.name": STR, f"{c}.*.image": STR, f"{c}.*.ports": LIST,
                      f"{c}.*.ports.*": MAP})
    return shape


def _template(p):
    return {p: MAP, f"{p}.metadata": MAP, f"{p}.metadata.labels": MAP, f"{p}.metadata.labels.*": STR,
            **_pod_spec(f"{p}.spec")}


SELECTOR = {"spec.selector": MAP, "spec.selector.matchLabels": MAP, "spec.selector.matchLabels.*": STR,
            "spec.selector.matchExpressions": LIST, "spec.selector.matchExpressions.*": MAP,
            "spec.selector.matchExpressions.*.values": LIST}
WORKLOAD = {"spec": MAP, "spec.replicas": INT, **SELECTOR, **_template("spec.template"),
            "spec.strategy": MAP, "spec.strategy.rollingUpdate": MAP, "spec.updateStrategy": MAP,
            "spec.updateStrategy.rollingUpdate": MAP, "spec.volumeClaimTemplates": LIST,
            "spec.volumeClaimTemplates.*": MAP, "spec.volumeClaimTemplates.*.spec": MAP}
STRING_DATA = {"data": MAP, "data.*": STR, "binaryData": MAP, "binaryData.*": STR, "stringData": MAP,
               "stringData.*": STR}

COMMON = {"metadata": MAP, "metadata.name": STR, "metadata.namespace": STR, "metadata.generateName": STR,
          "metadata.resourceVersion": STR, "metadata.uid": STR, "metadata.labels": MAP, "metadata.labels.*": STR,
          "metadata.annotations": MAP, "metadata.annotations.*": STR, "metadata.finalizers": LIST}

KIND_SHAPES = {
    ("apps", "Deployment"): WORKLOAD,
    ("apps", "StatefulSet"): WORKLOAD,
    ("apps", "DaemonSet"): WORKLOAD,
    ("apps", "ReplicaSet"): WORKLOAD,
    ("batch", "Job"): {"spec": MAP, "spec.completions": INT, "spec.backoffLimit": INT, **SELECTOR,
                       **_template("spec.template")},
    ("batch", "CronJob"): {"spec": MAP, "spec.schedule": STR, "spec.jobTemplate": MAP, "spec.jobTemplate.spec": MAP,
                           **_template("spec.jobTemplate.spec.template")},
    ("", "Pod"): {"spec": MAP, **_pod_spec("spec")},
    ("", "Service"): {"spec": MAP, "spec.type": STR, "spec.clusterIP": STR, "spec.clusterIPs": LIST,
                      "spec.ports": LIST, "spec.ports.*": MAP, "spec.ports.*.port": INT, "spec.ports.*.name": STR,
                      "spec.selector": MAP, "spec.selector.*": STR},
    ("", "ConfigMap"): STRING_DATA,
    ("", "Secret"): dict(STRING_DATA, type=STR),
    ("", "Namespace"): {"spec": MAP},
    ("", "PersistentVolumeClaim"): {"spec": MAP, "spec.accessModes": LIST, "spec.resources": MAP,
                                    "spec.resources.requests": MAP},
    ("rbac.authorization.k8s.io", "RoleBinding"): {"roleRef": MAP, "subjects": LIST},
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): {"roleRef": MAP, "subjects": LIST},
    ("apiextensions.k8s.io", "CustomResourceDefinition"): {
        "spec": MAP, "spec.group": STR, "spec.scope": STR, "spec.names": MAP, "spec.names.plural": STR,
        "spec.names.singular": STR, "spec.names.kind": STR, "spec.names.listKind": STR,
        "spec.names.shortNames": LIST, "spec.names.categories": LIST, "spec.versions": LIST,
        "spec.versions.*": MAP, "spec.versions.*.name": STR, "spec.versions.*.subresources": MAP},
}


def shape_problems(rt, obj):
    """Type mismatches in obj, as `.spec.replicas: expected numeric (int or float), got ...`."""
    shape = dict(COMMON)
    if not rt.custom:
        shape.update(KIND_SHAPES.get((rt.group, rt.kind), {}))
    elif rt.has_status:
        shape["status"] = MAP
    problems = []
    for pattern, want in shape.items():
        for path, value in _values_at(obj, pattern.split(".")):
            if value is not None and (not isinstance(value, want) or (want is INT and isinstance(value, bool))):
                problems.append(f"{path}: expected {TYPE_NAMES[want]}, got "
                                f"&value.valueUnstructured{{Value:{go_repr(value).strip(chr(34))}}}")
    return problems


def _values_at(obj, parts, path=""):
    """(path, value) for every value matching the dotted pattern ("*": each map value or list item)."""
    if not parts:
        yield path, obj
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        items = (obj.items() if isinstance(obj, dict) else
                 ((f"[{i}]", v) for i, v in enumerate(obj)) if isinstance(obj, list) else ())
        for key, value in items:
            step = key if key.startswith("[") and isinstance(obj, list) else f".{key}"
            yield from _values_at(value, rest, path + step)
    elif isinstance(obj, dict) and head in obj:
        yield from _values_at(obj[head], rest, f"{path}.{head}")


def apply_problems(rt, config):
    """Shape problems plus what only an apply checks: the key fields of associative lists
    (a container without `name`, a Service port without `port`)."""
    problems = shape_problems(rt, config)
    if problems or rt.custom:
        return problems
    spec = _map(config.get("spec"))
    if rt.kind == "Service":
        problems += _missing_keys(spec.get("ports"), ".spec.ports", "port")
    template_spec = _map(_map(spec.get("template")).get("spec"))
    for field in ("containers", "initContainers"):
        problems += _missing_keys(template_spec.get(field), f".spec.template.spec.{field}", "name")
    if rt.kind == "Pod":
        problems += _missing_keys(spec.get("containers"), ".spec.containers", "name")
    return problems


def _map(value):
    """A field the kind does not have (no schema here) may hold anything."""
    return value if isinstance(value, dict) else {}


def _missing_keys(items, path, key):
    return [f'{path}: element {i}: associative list with keys has an element that omits key field "{key}" '
            f"(and doesn't have default value)"
            for i, item in enumerate(items or []) if key not in item]
