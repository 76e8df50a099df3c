"""Validates raw MediaPackage response bodies against botocore's service model: every
key must be a member of the operation's output shape (by its wire name) and every value
of the modelled type, recursively. boto3 silently drops unknown keys and mistyped values
would surface only in user code, so the tests check the wire, not the parsed result."""

import json

import botocore.session

_TYPES = {
    "string": str,
    "boolean": bool,
    "integer": int,
    "long": int,
    "double": (int, float),
    "float": (int, float),
    "timestamp": (str, int, float),
}


def _check(shape, value, path, problems):
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object for {shape.name}, got {type(value).__name__}")
            return
        wire = {m.serialization.get("name", name): m for name, m in shape.members.items()
                if m.serialization.get("location") is None}
        for key, item in value.items():
            if key not in wire:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
            else:
                _check(wire[key], item, f"{path}.{key}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check(shape.value, item, f"{path}[{key}]", problems)
    else:
        expected = _TYPES.get(kind, object)
        if isinstance(value, bool) and kind != "boolean":
            problems.append(f"{path}: boolean where {kind} expected")
        elif not isinstance(value, expected):
            problems.append(f"{path}: {type(value).__name__} where {kind} expected")
        elif kind == "string" and shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")


def problems_in(operation_name, body):
    """Problems of a raw JSON response body for an operation ([] when it conforms)."""
    model = botocore.session.get_session().get_service_model("mediapackage")
    output = model.operation_model(operation_name).output_shape
    if not body:
        return []
    value = json.loads(body)
    if output is None:
        return [f"{operation_name} has no output shape but the body is {body[:80]!r}"]
    problems = []
    _check(output, value, operation_name, problems)
    return problems


def validate_responses(client):
    """Makes every successful call of `client` fail with AssertionError when its raw
    response body does not conform to the service model."""

    def after_call(http_response, model, **_):
        if http_response.status_code < 300:
            problems = problems_in(model.name, http_response.content)
            assert not problems, f"{model.name} response does not match botocore's model: {problems}"

    client.meta.events.register("after-call.mediapackage", after_call)
    return client
