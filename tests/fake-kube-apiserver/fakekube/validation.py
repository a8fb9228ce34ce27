"""Validation the real server performs, for the fields a deploy tool gets wrong in practice.

The wording follows k8s.io/apimachinery/pkg/util/validation and pkg/apis/*/validation.
Only what is listed here is checked: unknown fields and most value ranges pass.
"""

import base64
import binascii
import re

from . import errors as E

SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1035_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
QUALIFIED_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
CONFIG_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+")

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
QUALIFIED_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                 "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                 "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                   "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',"
                   "  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
                  "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")

MAX_ANNOTATIONS_BYTES = 256 * 1024
MAX_CONFIGMAP_BYTES = 1024 * 1024


# --- names and metadata --------------------------------------------------------------------

def name_problems(name, rule):
    """The messages IsDNS1123Subdomain & co. return for `name` (empty list when valid)."""
    if rule == "path":
        return [m for bad, m in ((name == ".", "may not be '.'"), (name == "..", "may not be '..'"),
                                 ("/" in name, "may not contain '/'"), ("%" in name, "may not contain '%'")) if bad]
    limit, regex, msg = {"subdomain": (253, SUBDOMAIN_RE, SUBDOMAIN_MSG), "label": (63, LABEL_RE, LABEL_MSG),
                         "dns1035": (63, DNS1035_RE, DNS1035_MSG)}[rule]
    problems = []
    if len(name) > limit:
        problems.append(f"must be no more than {limit} characters")
    if not regex.fullmatch(name):
        problems.append(msg)
    return problems


def qualified_name_problems(key):
    parts = key.split("/")
    if len(parts) > 2:
        return ["a qualified name " + QUALIFIED_MSG + " with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    problems = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            problems += ["prefix part " + m for m in name_problems(prefix, "subdomain")]
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    if name and not QUALIFIED_NAME_RE.fullmatch(name):
        problems.append("name part " + QUALIFIED_MSG)
    return problems


def label_value_problems(value):
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not LABEL_VALUE_RE.fullmatch(value):
        problems.append(LABEL_VALUE_MSG)
    return problems


def validate_metadata(rt, obj):
    meta = obj.get("metadata") or {}
    errs = []
    name = meta.get("name", "")
    if not name:
        errs.append(E.field_required("metadata.name", "name or generateName is required"))
    else:
        errs += [E.field_invalid("metadata.name", name, m) for m in name_problems(name, rt.name_rule)]
    for key, value in (meta.get("labels") or {}).items():
        errs += [E.field_invalid("metadata.labels", key, m) for m in qualified_name_problems(key)]
        errs += [E.field_invalid("metadata.labels", value, m) for m in label_value_problems(str(value))]
    annotations = meta.get("annotations") or {}
    for key in annotations:
        errs += [E.field_invalid("metadata.annotations", key, m) for m in qualified_name_problems(key.lower())]
    if sum(len(k) + len(str(v)) for k, v in annotations.items()) > MAX_ANNOTATIONS_BYTES:
        errs.append(E.field_too_long("metadata.annotations", MAX_ANNOTATIONS_BYTES))
    return errs


def decode_problem(kind, obj):
    """Secret data must be base64; the server fails to decode the object otherwise (400)."""
    if kind != "Secret":
        return None
    for key, value in (obj.get("data") or {}).items():
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError, TypeError):
            bad = next((i for i, ch in enumerate(value) if ch not in BASE64_CHARS), len(value) - len(value) % 4)
            return f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte {bad}'
    return None


BASE64_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


# --- per-kind validation ---------------------------------------------------------------------

def validate(rt, obj, old):
    """Raise 422 Invalid when the object (or the change from `old`) is not acceptable."""
    errs = validate_metadata(rt, obj)
    check = KIND_CHECKS.get((rt.group, rt.kind))
    if check:
        errs += check(obj, old)
    if errs:
        name = (obj.get("metadata") or {}).get("name", "")
        raise E.invalid(rt.kind, rt.group, name, errs)


def _spec(obj):
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _workload(kind, with_restart_always=True):
    def check(obj, old):
        spec = _spec(obj)
        errs = []
        selector = spec.get("selector")
        if selector is None:
            errs.append(E.field_required("spec.selector"))
        elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
            errs.append(E.field_invalid("spec.selector", selector, f"empty selector is invalid for {kind}"))
        if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
            errs.append(E.field_invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0"))
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels")
        if not selector_matches(selector, labels or {}):
            errs.append(E.field_invalid("spec.template.metadata.labels", labels or {},
                                        "`selector` does not match template `labels`"))
        errs += _pod_spec(template.get("spec") or {}, "spec.template.spec")
        restart = (template.get("spec") or {}).get("restartPolicy", "Always")
        if with_restart_always and restart != "Always":
            errs.append(E.field_not_supported("spec.template.spec.restartPolicy", restart, ["Always"]))
        if old is not None and _spec(old).get("selector") != selector:
            errs.append(E.field_invalid("spec.selector", selector, "field is immutable"))
        return errs
    return check


def _pod_spec(pod_spec, path):
    errs = []
    containers = pod_spec.get("containers")
    if not containers:
        errs.append(E.field_required(f"{path}.containers"))
    for field in ("containers", "initContainers"):
        for i, c in enumerate(pod_spec.get(field) or []):
            if not c.get("name"):
                errs.append(E.field_required(f"{path}.{field}[{i}].name"))
            if not c.get("image"):
                errs.append(E.field_required(f"{path}.{field}[{i}].image"))
    return errs


def selector_matches(selector, labels):
    """metav1.LabelSelector semantics; a missing selector matches nothing."""
    if not selector:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


STATEFULSET_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                       "minReadySeconds")


def _statefulset(obj, old):
    errs = _workload("statefulset")(obj, old)
    if old is not None:
        frozen = lambda o: {k: v for k, v in _spec(o).items() if k not in STATEFULSET_MUTABLE}
        if frozen(obj) != frozen(old):
            errs.append(E.field_forbidden("spec", "updates to statefulset spec for fields other than 'replicas', "
                                          "'ordinals', 'template', 'updateStrategy', "
                                          "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
    return errs


def _job(obj, old):
    spec = _spec(obj)
    template = spec.get("template") or {}
    errs = _pod_spec(template.get("spec") or {}, "spec.template.spec")
    restart = (template.get("spec") or {}).get("restartPolicy")
    if restart not in ("OnFailure", "Never"):
        if restart is None:
            errs.append(E.field_required("spec.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"'))
        else:
            errs.append(E.field_not_supported("spec.template.spec.restartPolicy", restart, ["OnFailure", "Never"]))
    if old is not None and _spec(old).get("template") != template:
        errs.append(E.field_invalid("spec.template", template, "field is immutable"))
    return errs


def _cronjob(obj, old):
    spec = _spec(obj)
    errs = [] if spec.get("schedule") else [E.field_required("spec.schedule")]
    job_template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    errs += _pod_spec(job_template.get("spec") or {}, "spec.jobTemplate.spec.template.spec")
    return errs


def _service(obj, old):
    spec = _spec(obj)
    errs = []
    headless = spec.get("clusterIP") == "None"
    ports = spec.get("ports") or []
    if not ports and not headless and spec.get("type") != "ExternalName":
        errs.append(E.field_required("spec.ports"))
    for i, p in enumerate(ports):
        port = p.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            errs.append(E.field_invalid(f"spec.ports[{i}].port", port, "must be between 1 and 65535, inclusive"))
        if len(ports) > 1 and not p.get("name"):
            errs.append(E.field_required(f"spec.ports[{i}].name"))
    if old is not None and _spec(old).get("clusterIP") not in (None, "") and \
            spec.get("clusterIP") != _spec(old).get("clusterIP"):
        errs.append(E.field_invalid("spec.clusterIPs[0]", spec.get("clusterIPs") or [], "may not change once set"))
    return errs


def _config_data(obj, old):
    errs = []
    total = 0
    for field in ("data", "binaryData"):
        for key, value in (obj.get(field) or {}).items():
            total += len(key) + len(value)
            if not CONFIG_KEY_RE.fullmatch(key) or len(key) > 253:
                errs.append(E.field_invalid(f"{field}[{key}]", key, CONFIG_KEY_MSG))
    if total > MAX_CONFIGMAP_BYTES:
        errs.append(E.field_too_long("[]", MAX_CONFIGMAP_BYTES))
    return errs


def _pvc(obj, old):
    spec = _spec(obj)
    errs = []
    if not spec.get("accessModes"):
        errs.append(E.field_required("spec.accessModes", "at least 1 access mode is required"))
    if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        errs.append(E.field_required("spec.resources[storage]"))
    if old is not None:
        strip = lambda s: {k: v for k, v in s.items() if k not in ("resources", "volumeAttributesClassName")}
        if strip(spec) != strip(_spec(old)):
            errs.append(E.field_forbidden("spec", "spec is immutable after creation except resources.requests and "
                                          "volumeAttributesClassName for bound claims"))
    return errs


def _role_binding(obj, old):
    errs = [] if obj.get("roleRef") else [E.field_required("roleRef.name")]
    if old is not None and old.get("roleRef") != obj.get("roleRef"):
        errs.append(E.field_invalid("roleRef", obj.get("roleRef"), "cannot change roleRef"))
    return errs


def _crd(obj, old):
    spec = _spec(obj)
    names = spec.get("names") or {}
    group = spec.get("group", "")
    errs = []
    name = (obj.get("metadata") or {}).get("name", "")
    if name != f"{names.get('plural', '')}.{group}":
        errs.append(E.field_invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        errs.append(E.field_required("spec.group"))
    elif "." not in group:
        errs.append(E.field_invalid("spec.group", group, "should be a domain with at least one dot"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errs.append(E.field_not_supported("spec.scope", spec.get("scope", ""), ["Cluster", "Namespaced"]))
    for field in ("plural", "kind"):
        if not names.get(field):
            errs.append(E.field_required(f"spec.names.{field}"))
    versions = spec.get("versions") or []
    if not versions:
        errs.append(E.field_invalid("spec.versions", versions, "must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(E.field_invalid("spec.versions", versions, "must have exactly one version marked as storage version"))
    if old is not None:
        if _spec(old).get("scope") != spec.get("scope"):
            errs.append(E.field_invalid("spec.scope", spec.get("scope"), "field is immutable"))
    return errs


KIND_CHECKS = {
    ("apps", "Deployment"): _workload("deployment"),
    ("apps", "ReplicaSet"): _workload("replicaset"),
    ("apps", "DaemonSet"): _workload("daemonset"),
    ("apps", "StatefulSet"): _statefulset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("", "Service"): _service,
    ("", "ConfigMap"): _config_data,
    ("", "Secret"): _config_data,
    ("", "PersistentVolumeClaim"): _pvc,
    ("rbac.authorization.k8s.io", "RoleBinding"): _role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _role_binding,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}
