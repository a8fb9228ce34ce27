"""Status the controllers of a real cluster would write, driven by a test-controlled
"health mode" instead of running pods.

Modes: ready (the default), progressing (the rollout is under way and never finishes),
stale (the controller has not seen the new generation: status is left as it was) and
failed (the rollout gave up: ProgressDeadlineExceeded, BackoffLimitExceeded, ...).
"""

import hashlib
import json
import time

MODES = ("ready", "progressing", "stale", "failed")


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class HealthSettings:
    """Per-object modes win over per-kind defaults, which win over `ready`."""

    def __init__(self):
        self.kinds = {}      # kind -> mode ("*" for every kind)
        self.objects = {}    # "group/Kind/namespace/name" -> mode

    @staticmethod
    def object_key(group, kind, namespace, name):
        return f"{group}/{kind}/{namespace or ''}/{name}"

    def mode_for(self, rt, namespace, name):
        """The mode, or None for a custom resource nobody configured (its status is left alone)."""
        mode = self.objects.get(self.object_key(rt.group, rt.kind, namespace, name))
        mode = mode or self.kinds.get(rt.kind) or self.kinds.get("*")
        if mode is None and not rt.custom:
            mode = "ready"
        return mode

    def to_json(self):
        return {"kinds": self.kinds, "objects": self.objects}

    def load(self, data):
        self.kinds = dict(data.get("kinds") or {})
        self.objects = dict(data.get("objects") or {})


def synthesize(rt, obj, mode):
    """Set obj["status"] as the kind's controller would leave it in `mode`."""
    if mode is None or mode == "stale":
        return
    fn = KIND_STATUS.get((rt.group, rt.kind)) or (_custom if rt.custom else None)
    if fn:
        fn(obj, mode)
    elif rt.has_status:
        obj.setdefault("status", {})     # a status struct without omitempty: `"status": {}`


def _condition(type_, status, reason, message="", **extra):
    t = now()
    c = {"type": type_, "status": status, "lastTransitionTime": t, "reason": reason, "message": message}
    c.update(extra)
    return c


def _counts(**counts):
    """Replica counters are omitempty in the real API: zero means absent."""
    return {k: v for k, v in counts.items() if v}


def _replicas(obj):
    r = (obj.get("spec") or {}).get("replicas", 1)
    return r if isinstance(r, int) else 1


def _generation(obj):
    return (obj.get("metadata") or {}).get("generation", 1)


def _template_hash(obj):
    template = (obj.get("spec") or {}).get("template") or {}
    return hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _deployment(obj, mode):
    r = _replicas(obj)
    rs = f'ReplicaSet "{obj["metadata"]["name"]}-{_template_hash(obj)}"'
    status = {"observedGeneration": _generation(obj)}
    if mode == "ready":
        status.update(_counts(replicas=r, updatedReplicas=r, readyReplicas=r, availableReplicas=r))
        available = _condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        progressing = _condition("Progressing", "True", "NewReplicaSetAvailable", f"{rs} has successfully progressed.")
    else:
        status.update(_counts(replicas=r, updatedReplicas=r, unavailableReplicas=r))
        available = _condition("Available", "False", "MinimumReplicasUnavailable",
                               "Deployment does not have minimum availability.")
        progressing = (_condition("Progressing", "True", "ReplicaSetUpdated", f"{rs} is progressing.")
                       if mode == "progressing" else
                       _condition("Progressing", "False", "ProgressDeadlineExceeded", f"{rs} has timed out progressing."))
    for c in (available, progressing):
        c["lastUpdateTime"] = c["lastTransitionTime"]
    status["conditions"] = [available, progressing]
    obj["status"] = status


def _statefulset(obj, mode):
    r = _replicas(obj)
    revision = f'{obj["metadata"]["name"]}-{_template_hash(obj)}'
    previous = (obj.get("status") or {}).get("currentRevision") or revision
    status = {"observedGeneration": _generation(obj), "collisionCount": 0, "updateRevision": revision}
    if mode == "ready":
        status.update(_counts(replicas=r, readyReplicas=r, currentReplicas=r, updatedReplicas=r, availableReplicas=r))
        status["currentRevision"] = revision
    else:
        status.update(_counts(replicas=r, currentReplicas=r))
        status["currentRevision"] = previous
    obj["status"] = dict(sorted(status.items()))


def _daemonset(obj, mode):
    ready = 1 if mode == "ready" else 0
    status = {"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0,
              "numberReady": ready, "observedGeneration": _generation(obj), "updatedNumberScheduled": 1}
    status.update(_counts(numberAvailable=ready, numberUnavailable=1 - ready))
    obj["status"] = status


def _replicaset(obj, mode):
    r = _replicas(obj)
    ready = r if mode == "ready" else 0
    obj["status"] = dict({"observedGeneration": _generation(obj)},
                         **_counts(replicas=r, fullyLabeledReplicas=r, readyReplicas=ready, availableReplicas=ready))


def _job(obj, mode):
    spec = obj.get("spec") or {}
    status = {"startTime": (obj.get("status") or {}).get("startTime") or now()}
    if mode == "ready":
        status.update(succeeded=spec.get("completions", 1), completionTime=now(), ready=0, terminating=0,
                      conditions=[_condition("SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods"),
                                  _condition("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods")])
    elif mode == "progressing":
        status.update(active=1, ready=0, terminating=0)
    else:
        status.update(failed=spec.get("backoffLimit", 6) + 1, ready=0, terminating=0,
                      conditions=[_condition("FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                                  _condition("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")])
    for c in status.get("conditions", []):
        c["lastProbeTime"] = c["lastTransitionTime"]
    obj["status"] = status


def _crd(obj, mode):
    spec = obj.get("spec") or {}
    names = dict(spec.get("names") or {})
    storage = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
    gen = _generation(obj)
    if mode == "ready":
        conditions = [_condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", observedGeneration=gen),
                      _condition("Established", "True", "InitialNamesAccepted", "the initial names have been accepted",
                                 observedGeneration=gen)]
    elif mode == "progressing":
        conditions = [_condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", observedGeneration=gen),
                      _condition("Established", "False", "Installing", "the initial names have been accepted",
                                 observedGeneration=gen)]
    else:
        conditions = [_condition("NamesAccepted", "False", "MultipleNamesNotAccepted",
                                 f'"{names.get("plural", "")}" is already in use', observedGeneration=gen),
                      _condition("Established", "False", "NotAccepted", "not all names are accepted",
                                 observedGeneration=gen)]
    obj["status"] = {"conditions": conditions, "acceptedNames": names if mode != "failed" else {"plural": "", "kind": ""},
                     "storedVersions": storage}


def _pod(obj, mode):
    if mode == "ready":
        conditions = [_condition(t, "True", "") for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                                                           "ContainersReady", "PodScheduled")]
        obj["status"] = {"phase": "Running", "conditions": conditions, "podIP": "10.42.0.10", "hostIP": "172.18.0.2",
                         "startTime": now(), "qosClass": "BestEffort"}
    elif mode == "progressing":
        obj["status"] = {"phase": "Pending", "conditions": [_condition("PodScheduled", "True", "")],
                         "qosClass": "BestEffort"}
    else:
        obj["status"] = {"phase": "Failed", "reason": "Error", "qosClass": "BestEffort"}
    for c in obj["status"].get("conditions", []):
        c.pop("reason"), c.pop("message")
        c["lastProbeTime"] = None


def _pvc(obj, mode):
    spec = obj.get("spec") or {}
    if mode == "ready":
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        obj["status"] = {"phase": "Bound", "accessModes": spec.get("accessModes", []), "capacity": {"storage": storage}}
    else:
        obj["status"] = {"phase": "Pending"}


def _service(obj, mode):
    lb = {}
    if (obj.get("spec") or {}).get("type") == "LoadBalancer" and mode == "ready":
        lb = {"ingress": [{"ip": "172.18.0.2", "ipMode": "VIP"}]}
    obj["status"] = {"loadBalancer": lb}


def _ingress(obj, mode):
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "172.18.0.2"}]} if mode == "ready" else {}}


def _namespace(obj, mode):
    obj["status"] = {"phase": "Active"}


def _pdb(obj, mode):
    ok = "True" if mode == "ready" else "False"
    obj["status"] = {"observedGeneration": _generation(obj), "disruptionsAllowed": 0, "currentHealthy": 0,
                     "desiredHealthy": 0, "expectedPods": 0,
                     "conditions": [_condition("DisruptionAllowed", ok, "SufficientPods" if ok == "True" else "InsufficientPods",
                                               observedGeneration=_generation(obj))]}


def _hpa(obj, mode):
    spec = obj.get("spec") or {}
    replicas = spec.get("minReplicas", 1)
    obj["status"] = {"currentReplicas": replicas, "desiredReplicas": replicas}


def _apiservice(obj, mode):
    if mode == "ready":
        obj["status"] = {"conditions": [_condition("Available", "True", "Passed", "all checks passed")]}
    else:
        obj["status"] = {"conditions": [_condition("Available", "False", "MissingEndpoints",
                                                   "endpoints for service/x in \"x\" have no addresses")]}


def _custom(obj, mode):
    """Generic kstatus conventions: Ready, Reconciling and Stalled conditions."""
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    status["observedGeneration"] = _generation(obj)
    if mode == "ready":
        status["conditions"] = [_condition("Ready", "True", "Succeeded", "", observedGeneration=_generation(obj))]
    elif mode == "progressing":
        status["conditions"] = [_condition("Reconciling", "True", "Progressing", ""),
                                _condition("Ready", "False", "Progressing", "")]
    else:
        status["conditions"] = [_condition("Stalled", "True", "Failed", "reconcile failed"),
                                _condition("Ready", "False", "Failed", "reconcile failed")]
    obj["status"] = status


KIND_STATUS = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Service"): _service,
    ("", "Namespace"): _namespace,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("policy", "PodDisruptionBudget"): _pdb,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("apiregistration.k8s.io", "APIService"): _apiservice,
}
