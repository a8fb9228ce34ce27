"""The kinds the fake server knows: a built-in table plus the CRDs applied at run time,
and the discovery documents built from them."""

import re
from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
NO_COLLECTION_DELETE = ("create", "delete", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple = ()
    categories: tuple = ()
    verbs: tuple = ALL_VERBS
    # What bumps metadata.generation: "spec" (anything outside metadata and status),
    # "spec+annotations" (Deployments copy annotations to ReplicaSets), "" = the kind has none.
    generation: str = "spec"
    subresources: tuple = ("status",)
    # "subdomain" (RFC 1123), "label" (RFC 1123 label), "dns1035", "path" (RBAC allows ':').
    name_rule: str = "subdomain"
    custom: bool = False           # served from a CustomResourceDefinition

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self):
        return self.kind.lower()

    @property
    def list_kind(self):
        return self.kind + "List"

    @property
    def has_status(self):
        """With a status subresource, writes to the main resource ignore `status`."""
        return "status" in self.subresources


def _r(api_version, plural, kind, scope, **kw):
    group, _, version = api_version.rpartition("/")
    return ResourceType(group, version, plural, kind, scope == "ns", **kw)


NS, CLUSTER = "ns", "cluster"
NO_GEN = {"generation": ""}
NO_STATUS = {"subresources": ()}

# The built-in kinds. Add a line to serve another one; validation, defaults and status
# synthesis are keyed by kind in their own modules and are optional.
BUILTIN = (
    _r("v1", "namespaces", "Namespace", CLUSTER, short_names=("ns",), verbs=NO_COLLECTION_DELETE,
       subresources=("finalize", "status"), name_rule="label", **NO_GEN),
    _r("v1", "configmaps", "ConfigMap", NS, short_names=("cm",), **NO_GEN, **NO_STATUS),
    _r("v1", "secrets", "Secret", NS, **NO_GEN, **NO_STATUS),
    _r("v1", "services", "Service", NS, short_names=("svc",), categories=("all",), name_rule="dns1035", **NO_GEN),
    _r("v1", "serviceaccounts", "ServiceAccount", NS, short_names=("sa",), **NO_GEN, **NO_STATUS),
    _r("v1", "persistentvolumeclaims", "PersistentVolumeClaim", NS, short_names=("pvc",), **NO_GEN),
    _r("v1", "pods", "Pod", NS, short_names=("po",), categories=("all",), **NO_GEN),
    _r("v1", "endpoints", "Endpoints", NS, short_names=("ep",), **NO_GEN, **NO_STATUS),
    _r("discovery.k8s.io/v1", "endpointslices", "EndpointSlice", NS, **NO_GEN, **NO_STATUS),
    _r("v1", "resourcequotas", "ResourceQuota", NS, short_names=("quota",), **NO_GEN),
    _r("v1", "limitranges", "LimitRange", NS, short_names=("limits",), **NO_GEN, **NO_STATUS),
    _r("apps/v1", "deployments", "Deployment", NS, short_names=("deploy",), categories=("all",),
       generation="spec+annotations", subresources=("status", "scale")),
    _r("apps/v1", "statefulsets", "StatefulSet", NS, short_names=("sts",), categories=("all",),
       subresources=("status", "scale")),
    _r("apps/v1", "daemonsets", "DaemonSet", NS, short_names=("ds",), categories=("all",)),
    _r("apps/v1", "replicasets", "ReplicaSet", NS, short_names=("rs",), categories=("all",),
       subresources=("status", "scale")),
    _r("batch/v1", "jobs", "Job", NS, categories=("all",)),
    _r("batch/v1", "cronjobs", "CronJob", NS, short_names=("cj",), categories=("all",)),
    _r("rbac.authorization.k8s.io/v1", "roles", "Role", NS, name_rule="path", **NO_GEN, **NO_STATUS),
    _r("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", NS, name_rule="path", **NO_GEN, **NO_STATUS),
    _r("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", CLUSTER, name_rule="path", **NO_GEN, **NO_STATUS),
    _r("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", CLUSTER, name_rule="path",
       **NO_GEN, **NO_STATUS),
    _r("networking.k8s.io/v1", "ingresses", "Ingress", NS, short_names=("ing",)),
    _r("networking.k8s.io/v1", "ingressclasses", "IngressClass", CLUSTER, **NO_STATUS),
    _r("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", NS, short_names=("netpol",), **NO_STATUS),
    _r("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", NS, short_names=("pdb",)),
    _r("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", CLUSTER,
       short_names=("crd", "crds")),
    _r("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration",
       CLUSTER, **NO_STATUS),
    _r("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration",
       CLUSTER, **NO_STATUS),
    _r("storage.k8s.io/v1", "storageclasses", "StorageClass", CLUSTER, short_names=("sc",), **NO_GEN, **NO_STATUS),
    _r("scheduling.k8s.io/v1", "priorityclasses", "PriorityClass", CLUSTER, short_names=("pc",),
       **NO_GEN, **NO_STATUS),
    _r("apiregistration.k8s.io/v1", "apiservices", "APIService", CLUSTER, categories=("api-extensions",), **NO_GEN),
    _r("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", NS, short_names=("hpa",),
       categories=("all",)),
)

CRD_GROUP = "apiextensions.k8s.io"


def crd_types(crd):
    """The ResourceTypes a CRD object serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    types = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        subresources = tuple(sorted((v.get("subresources") or {}).keys()))
        types.append(ResourceType(
            group=spec.get("group", ""), version=v.get("name", ""), plural=names.get("plural", ""),
            kind=names.get("kind", ""), namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
            subresources=subresources, custom=True))
    return types


def is_established(crd):
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


class Registry:
    """Built-in kinds plus the kinds of the CRDs that are Established right now."""

    def __init__(self, established_crds):
        self._established_crds = established_crds     # callable -> list of CRD objects

    def all_types(self):
        types = list(BUILTIN)
        for crd in self._established_crds():
            types.extend(crd_types(crd))
        return types

    def lookup(self, group, version, plural):
        for rt in self.all_types():
            if (rt.group, rt.version, rt.plural) == (group, version, plural):
                return rt
        return None

    def by_kind(self, api_version, kind):
        for rt in self.all_types():
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        return None

    def group_versions(self):
        """{group: [versions, preferred first]} in the order the server lists them."""
        groups = {}
        for rt in self.all_types():
            if rt.group:
                versions = groups.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
        for versions in groups.values():
            versions.sort(key=version_priority)
        return groups

    def types_in(self, group, version):
        return [rt for rt in self.all_types() if rt.group == group and rt.version == version]


def version_priority(version):
    """Kubernetes version order: GA before beta before alpha, higher numbers first."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), version)


# --- discovery documents -------------------------------------------------------------------

def api_versions(server_address):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_entry(group, versions):
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry):
    groups = [_group_entry(g, vs) for g, vs in registry.group_versions().items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry, group):
    versions = registry.group_versions().get(group)
    if not versions:
        return None
    return dict({"kind": "APIGroup", "apiVersion": "v1"}, **_group_entry(group, versions))


def api_resource_list(registry, group, version):
    types = registry.types_in(group, version)
    if not types:
        return None
    resources = []
    for rt in types:
        entry = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                 "kind": rt.kind, "verbs": list(rt.verbs)}
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            resources.append(_subresource_entry(rt, sub))
    body = {"kind": "APIResourceList", "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources}
    if group:   # the real server omits apiVersion for the core list only
        body = dict({"kind": "APIResourceList", "apiVersion": "v1"}, **body)
    return body


def _subresource_entry(rt, sub):
    entry = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced, "kind": rt.kind,
             "verbs": list(SUBRESOURCE_VERBS)}
    if sub == "scale":
        entry.update(group="autoscaling", version="v1", kind="Scale")
    elif sub == "finalize":
        entry["verbs"] = ["update"]
    return entry


def wants_aggregated(accept):
    """The aggregated discovery type the client prefers, or None for the legacy documents.

    Clients list several types in preference order; the server answers with the first
    one it supports (parameters in any order), and plain application/json means legacy."""
    for part in (accept or "").split(","):
        media, *params = [p.strip() for p in part.split(";")]
        params = dict(p.split("=", 1) for p in params if "=" in p)
        if media == "application/json" and params.get("g") == "apidiscovery.k8s.io" \
                and params.get("as") == "APIGroupDiscoveryList" and params.get("v") in ("v2", "v2beta1"):
            return f"application/json;g=apidiscovery.k8s.io;v={params['v']};as=APIGroupDiscoveryList"
        if media in ("application/json", "*/*", "application/*"):
            return None
    return None


def aggregated_discovery(registry, core, media_type):
    api_version = "apidiscovery.k8s.io/" + ("v2" if ";v=v2;" in media_type else "v2beta1")
    items = []
    if core:
        items.append({"metadata": {"creationTimestamp": None},
                      "versions": [_aggregated_version(registry, "", "v1")]})
    else:
        for group, versions in registry.group_versions().items():
            items.append({"metadata": {"name": group, "creationTimestamp": None},
                          "versions": [_aggregated_version(registry, group, v) for v in versions]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}


def _aggregated_version(registry, group, version):
    resources = []
    for rt in registry.types_in(group, version):
        entry = {"resource": rt.plural,
                 "responseKind": {"group": group, "version": version, "kind": rt.kind},
                 "scope": "Namespaced" if rt.namespaced else "Cluster",
                 "singularResource": rt.singular, "verbs": list(rt.verbs)}
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        subs = [{"subresource": s, "responseKind": {"group": group, "version": version, "kind": rt.kind},
                 "verbs": list(SUBRESOURCE_VERBS)} for s in rt.subresources]
        if subs:
            entry["subresources"] = subs
        resources.append(entry)
    return {"version": version, "resources": resources, "freshness": "Current"}
