"""Request bodies: JSON, or YAML read the way the real server reads it (sigs.k8s.io/yaml)."""

import json

from . import errors as E
from .ownership import drop_nulls
from .shapes import shape_problems

try:
    import yaml

    class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):     # libyaml when there: 10x faster
        """YAML 1.1 as go-yaml reads it: timestamps stay strings (JSON has no dates) and a
        plain `=` is a string, not PyYAML's "value" tag (CRDs list it in operator enums)."""

    _Loader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")]
        for k, v in _Loader.yaml_implicit_resolvers.items()}
except ImportError:       # JSON bodies (valid YAML) still work
    yaml = None


def decode_json(body, what):
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise E.bad_request(f"{what}: {err}")


def decode_yaml(body):
    """An apply body: JSON, or YAML when PyYAML is there; it must be an object."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except ValueError:
        if yaml is None:
            raise E.bad_request("error decoding YAML: this test double reads YAML only with python3-yaml; send JSON")
        try:
            doc = _string_keys(yaml.load(body.decode("utf-8"), Loader=_Loader))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise E.bad_request(f"error decoding YAML: {err}")
    if not isinstance(doc, dict):
        raise E.bad_request(f"error decoding YAML: error unmarshaling JSON: json: cannot unmarshal "
                            f"{type(doc).__name__} into Go value of type map[string]interface {{}}")
    return doc


def _string_keys(value):
    """sigs.k8s.io/yaml turns non-string keys into strings: `on:` (a YAML 1.1 bool) is "true"."""
    if isinstance(value, dict):
        return {_key_text(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def _key_text(key):
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def decode_object(req, rt):
    """A POST/PUT body: JSON or YAML, of the URL's kind."""
    if req.content_type in ("application/yaml", "application/apply-patch+yaml"):
        body = decode_yaml(req.body)
    else:
        body = decode_json(req.body, "couldn't get version/kind; json parse error")
    if not isinstance(body, dict):
        raise E.bad_request("the body of the request must be a JSON object")
    if not body.get("kind"):
        raise E.bad_request(f"Object 'Kind' is missing in '{req.body.decode('utf-8', 'replace')[:200]}'")
    if body.get("apiVersion") != rt.api_version or body.get("kind") != rt.kind:
        raise E.bad_request(f"the API version in the data ({body.get('apiVersion')}) does not match the expected "
                            f"API version ({rt.api_version})" if body.get("apiVersion") != rt.api_version else
                            f"the kind in the data ({body.get('kind')}) does not match the expected kind ({rt.kind})")
    body = drop_nulls(body)
    problems = shape_problems(rt, body)
    if problems:
        raise E.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {problems[0]}')
    return body
