"""labelSelector and fieldSelector query parameters, with the real semantics:
`k!=v` and `k notin (...)` also match objects without the label."""

import re

from . import errors as E
from .validation import label_value_problems, qualified_name_problems

SET_RE = re.compile(r"^(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
EQ_RE = re.compile(r"^(?P<key>[^\s!=()]+)\s*(?P<op>==|!=|=)\s*(?P<value>[^\s!=(),]*)$")
KEY_RE = re.compile(r"^(?P<neg>!?)\s*(?P<key>[^\s!=()]+)$")


def _split_terms(text):
    """Split on commas that are not inside a `( ... )` value set."""
    terms, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t.strip() for t in terms]


def parse_label_selector(text):
    """-> list of (key, op, values); op in exists, !, =, !=, in, notin. 400 on bad syntax."""
    requirements = []
    if not text or not text.strip():
        return requirements
    for term in _split_terms(text):
        req = _parse_term(term)
        if req is None:
            raise E.bad_request(f"unable to parse requirement: found '{term}', expected: "
                                "identifier, '!', 'in', 'notin', '=', '==' or '!='")
        key, op, values = req
        for problem in qualified_name_problems(key):
            raise E.bad_request(f'unable to parse requirement: key: Invalid value: "{key}": {problem}')
        for value in values:
            for problem in label_value_problems(value):
                raise E.bad_request(f'unable to parse requirement: values[0][{key}]: Invalid value: '
                                    f'"{value}": {problem}')
        requirements.append(req)
    return requirements


def _parse_term(term):
    m = SET_RE.match(term)
    if m:
        values = [v.strip() for v in m.group("values").split(",")]
        return m.group("key"), m.group("op"), values
    m = EQ_RE.match(term)
    if m:
        op = "=" if m.group("op") == "==" else m.group("op")
        return m.group("key"), op, [m.group("value")]
    m = KEY_RE.match(term)
    if m:
        return m.group("key"), "!" if m.group("neg") else "exists", []
    return None


def label_matches(requirements, labels):
    for key, op, values in requirements:
        present, value = key in labels, labels.get(key)
        if op == "exists":
            ok = present
        elif op == "!":
            ok = not present
        elif op in ("=", "in"):
            ok = present and value in values
        else:                                       # != and notin also match a missing label
            ok = not present or value not in values
        if not ok:
            return False
    return True


FIELD_SELECTABLE = ("metadata.name", "metadata.namespace")


def parse_field_selector(text):
    requirements = []
    if not text:
        return requirements
    for term in _split_terms(text):
        m = EQ_RE.match(term)
        if not m:
            raise E.bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        if m.group("key") not in FIELD_SELECTABLE:
            raise E.bad_request(f'field label not supported: {m.group("key")}')
        op = "=" if m.group("op") == "==" else m.group("op")
        requirements.append((m.group("key"), op, m.group("value")))
    return requirements


def field_matches(requirements, obj):
    meta = obj.get("metadata") or {}
    for key, op, value in requirements:
        actual = meta.get(key.split(".", 1)[1], "")
        if (actual == value) != (op == "="):
            return False
    return True
