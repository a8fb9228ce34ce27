"""Kubernetes `Status` errors, shaped like the ones kube-apiserver returns.

The messages copy the real server's wording (k8s.io/apimachinery/pkg/api/errors and
pkg/util/validation/field) because clients and humans match on them.
"""


class ApiError(Exception):
    """An error answered as a `Status` object with an HTTP code."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message}
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def success_status(details):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}


def qualified(rt):
    """`deployments.apps`, or `configmaps` for the core group."""
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def details(rt, name, **extra):
    d = {}
    if name:
        d["name"] = name
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.plural
    d.update(extra)
    return d


# --- the errors, one function each -------------------------------------------------------

def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def resource_not_found():
    """What the server says for a path no API group serves (unknown plural, CRD not ready)."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def not_found(rt, name):
    return ApiError(404, "NotFound", f'{qualified(rt)} "{name}" not found', details(rt, name))


def namespace_not_found(namespace):
    return ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                    {"name": namespace, "kind": "namespaces"})


def already_exists(rt, name):
    return ApiError(409, "AlreadyExists", f'{qualified(rt)} "{name}" already exists',
                    details(rt, name))


def conflict(rt, name, why):
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(rt)} "{name}": {why}',
                    details(rt, name))


MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def unsupported_media_type(accepted):
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    + ", ".join(accepted), {})


def too_large(limit):
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def internal(message, reason="InternalError"):
    """reason="" gives the shape of an error the server did not classify (StatusReasonUnknown)."""
    d = {"causes": [{"message": message}]} if reason else None
    return ApiError(500, reason, f"Internal error occurred: {message}" if reason else message, d)


def forbidden(rt, name, namespace, user, verb, why=None):
    who = f'{qualified(rt)} "{name}"' if name else qualified(rt)
    if why is None:
        where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        why = f'User "{user}" cannot {verb} resource "{rt.plural}" in API group "{rt.group}" {where}'
    return ApiError(403, "Forbidden", f"{who} is forbidden: {why}", details(rt, name))


def too_many_requests(seconds=1):
    return ApiError(429, "TooManyRequests",
                    "the server has received too many requests and has asked us to try again later",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": "injected"}],
                     "retryAfterSeconds": seconds},
                    {"Retry-After": str(seconds)})


def service_unavailable(message="the server is currently unable to handle the request"):
    return ApiError(503, "ServiceUnavailable", message)


# --- field errors (422 Invalid) ----------------------------------------------------------

_CAUSE = {"Invalid value": "FieldValueInvalid", "Required value": "FieldValueRequired",
          "Forbidden": "FieldValueForbidden", "Unsupported value": "FieldValueNotSupported",
          "Too long": "FieldValueTooLong", "Duplicate value": "FieldValueDuplicate"}
_NO_VALUE = object()


class FieldError:
    def __init__(self, kind, field, value=_NO_VALUE, detail=""):
        self.kind, self.field, self.value, self.detail = kind, field, value, detail

    def body(self):
        s = self.kind
        if self.value is not _NO_VALUE and self.kind not in ("Required value", "Forbidden", "Too long"):
            s += ": " + go_repr(self.value)
        if self.detail:
            s += ": " + self.detail
        return s

    def __str__(self):
        return f"{self.field}: {self.body()}"


def field_invalid(field, value, detail):
    return FieldError("Invalid value", field, value, detail)


def field_required(field, detail=""):
    return FieldError("Required value", field, detail=detail)


def field_forbidden(field, detail):
    return FieldError("Forbidden", field, detail=detail)


def field_not_supported(field, value, supported):
    return FieldError("Unsupported value", field, value,
                      "supported values: " + ", ".join(f'"{s}"' for s in supported))


def field_too_long(field, limit):
    return FieldError("Too long", field, detail=f"must have at most {limit} bytes")


def invalid(kind, group, name, errors):
    """422 Invalid: `Deployment.apps "x" is invalid: <field errors>`."""
    texts = list(dict.fromkeys(str(e) for e in errors))   # the server drops duplicates
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    group_kind = f"{kind}.{group}" if group else kind
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    d["causes"] = [{"reason": _CAUSE.get(e.kind, "FieldValueInvalid"), "message": e.body(), "field": e.field}
                   for e in errors]
    return ApiError(422, "Invalid", f'{group_kind} "{name}" is invalid: {summary}', d)


def go_repr(value):
    """Roughly how Go's %v / %#v print the value in a field error."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        if all(isinstance(v, str) for v in value.values()):
            inner = ", ".join(f"{go_repr(k)}:{go_repr(value[k])}" for k in sorted(value))
            return "map[string]string{" + inner + "}"
        inner = ", ".join(f"{go_repr(k)}:{go_repr(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "[]string{" + ", ".join(go_repr(v) for v in value) + "}"
        return "[]interface {}{" + ", ".join(go_repr(v) for v in value) + "}"
    return str(value)
