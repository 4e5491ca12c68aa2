"""Request validation the way a Laravel API does it, and the JSON Schema of each form.

A form maps field names to `Field`s. `validate` trims strings and turns empty ones into null
(Laravel's TrimStrings and ConvertEmptyStringsToNull, passwords excepted), checks every field,
and raises one 422 naming each failing field with Laravel's wording. The same declarations give
the OpenAPI document its request schemas, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import email_validator
import msgspec
from email_validator import EmailNotValidError, validate_email

from config import settings
from domain.errors import BadRequest, Invalid
from handlers.rosetta.errors import INVALID


@dataclass(frozen=True)
class Field:
    type: str = "string"  # string | integer | boolean | array
    required: bool = False
    nullable: bool = False
    min: int | None = None
    max: int | None = None
    max_bytes: int | None = None
    email: bool = False
    url: bool = False
    one_of: tuple | None = None
    items: "Field | None" = None
    confirmed: bool = False  # `<name>_confirmation` must be equal
    trim: bool = True
    format: str | None = None  # date-time
    pattern: str | None = None  # a regular expression the whole value must match
    pattern_rule: str = "must match the required format"  # what to tell when it does not
    description: str = ""
    example: Any = None


Form = dict[str, Field]

_TYPE_WORDS = {"string": "a string", "integer": "an integer", "boolean": "true or false", "array": "an array"}


def body(request) -> dict:
    """The JSON object of the request body; an absent body is an empty one."""
    if not request.body:
        return {}
    try:
        data = msgspec.json.decode(request.body)
    except (msgspec.DecodeError, RecursionError):  # msgspec gives up on deep nesting with a RecursionError
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    return data


def query(request) -> dict:
    return {name: values[0] for name, values in request.args.items()}


def validate(data: dict, form: Form) -> dict:
    """The form's fields of `data`, cleaned; a 422 naming every field that fails."""
    clean, errors = {}, {}
    for name, field in form.items():
        raw = data.get(name)
        value = _normalize(raw, field)
        problem = _check(name, value, field, data)
        if problem is None and isinstance(raw, str) and field.max is not None and len(raw) > field.max:
            problem = f"The {_words(name)} field must not be greater than {field.max} characters."
        if problem is None and field.confirmed and value is not None and data.get(f"{name}_confirmation") != value:
            problem = f"The {_words(name)} field confirmation does not match."
        if problem is None and field.items is not None and isinstance(value, list):
            value = [_normalize(item, field.items) for item in value]
            # Laravel names each failing item by its index: `abilities.0`.
            items = {f"{name}.{i}": _check(f"{name}.{i}", item, field.items, data) for i, item in enumerate(value)}
            errors.update({key: [text] for key, text in items.items() if text})
            if any(items.values()):
                continue
        if problem:
            errors[name] = [problem]
        elif name in data or value is not None:
            clean[name] = int(value) if field.type == "integer" and value is not None else value
    if errors:
        raise Invalid(INVALID, errors)
    return clean


def _normalize(value, field: Field):
    if isinstance(value, str) and field.trim:
        value = value.strip()
    return None if value == "" else value


def _words(name: str) -> str:
    return name.replace("_", " ")


def _check(name: str, value, field: Field, data: dict) -> str | None:
    attr = _words(name)
    if value is None or value == []:
        return f"The {attr} field is required." if field.required else None
    if field.type == "integer":
        if isinstance(value, str) and (digits := value.removeprefix("-")).isascii() and digits.isdigit():
            value = int(value)
        elif isinstance(value, float) and value.is_integer():  # JSON's 12.0 is an integer (JSON Schema, Laravel)
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            return f"The {attr} field must be an integer."
    elif field.type == "boolean":
        if not isinstance(value, bool):
            return f"The {attr} field must be true or false."
    elif field.type == "array":
        if not isinstance(value, list):
            return f"The {attr} field must be an array."
    elif not isinstance(value, str):
        return f"The {attr} field must be {_TYPE_WORDS[field.type]}."
    return _check_string(attr, value, field) if isinstance(value, str) else _check_other(name, attr, value, field, data)


def _check_string(attr: str, value: str, field: Field) -> str | None:
    if "\x00" in value:
        return f"The {attr} field must not contain NUL characters."
    if field.min is not None and len(value) < field.min:
        return f"The {attr} field must be at least {field.min} characters."
    if field.max is not None and len(value) > field.max:
        return f"The {attr} field must not be greater than {field.max} characters."
    if field.max_bytes is not None and len(value.encode()) > field.max_bytes:
        return f"The {attr} field must not be greater than {field.max_bytes} bytes."
    if field.email and not is_email(value):
        return f"The {attr} field must be a valid email address."
    if field.url and not is_url(value):
        return f"The {attr} field must be a valid URL."
    if field.one_of is not None and value not in field.one_of:
        return f"The selected {attr} is invalid."
    if field.pattern is not None and not re.fullmatch(field.pattern, value):
        return f"The {attr} field {field.pattern_rule}."
    return None


def _check_other(name: str, attr: str, value, field: Field, data: dict) -> str | None:
    if field.type == "integer":
        value = int(value)
        if field.min is not None and value < field.min:
            return f"The {attr} field must be at least {field.min}."
        if field.max is not None and value > field.max:
            return f"The {attr} field must not be greater than {field.max}."
    if field.type == "array":
        if field.max is not None and len(value) > field.max:
            return f"The {attr} field must not have more than {field.max} items."
    return None


# Laravel's `email` rule (egulias RFCValidation) takes any RFC 5322 address, deliverable or not:
# special-use and single-label domains, IP literals in brackets, quoted local parts. email-validator
# takes them only when told, and special-use names other than `test` not even then.
_LIKE_LARAVEL = {"test_environment": True, "globally_deliverable": False, "allow_domain_literal": True,
                 "allow_quoted_local": True}
_SPECIAL_USE = frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES) - {"test"}  # each a single label


def is_email(value: str) -> bool:
    """Whether Laravel's `email` rule takes `value`; with `[auth] strict_email_domains`, whether
    email-validator's defaults do (a globally deliverable domain name, no IP literal, no quotes)."""
    strict = settings().auth.strict_email_domains
    try:
        validate_email(value if strict else _unreserved(value), check_deliverability=False,
                       **({} if strict else _LIKE_LARAVEL))
    except EmailNotValidError:
        return False
    return True


def _unreserved(address: str) -> str:
    """`address` with a special-use top-level label (`localhost`, `.local`, `.invalid`...) spelt as an
    ordinary label of the same length, so email-validator checks its syntax and lengths but not its use."""
    local, at, domain = address.rpartition("@")
    head, dot, last = domain.rpartition(".")
    if last.isascii() and last.lower() in _SPECIAL_USE:
        return f"{local}{at}{head}{dot}{'x' * len(last)}"
    return address


def is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def confirmations(form: Form) -> Form:
    """The form with a `<name>_confirmation` field beside each confirmed one (the spec requires it)."""
    extra = {}
    for name, field in form.items():
        if field.confirmed:
            extra[f"{name}_confirmation"] = Field(required=field.required, trim=field.trim,
                                                  description=f"Must equal {name}.", example=field.example)
    return {**form, **extra}


# What str.strip() takes away: JavaScript's \s (the pattern dialect of JSON Schema) leaves out \x1c-\x1f and \x85.
_SPACE = r"[\s\x1c-\x1f\x85]"


def json_schema(form: Form) -> dict:
    """The JSON Schema (OpenAPI 3.1) of a request body that passes `form`."""
    return {"type": "object", "properties": {name: _schema(field) for name, field in form.items()},
            **({"required": required} if (required := [n for n, f in form.items() if f.required]) else {})}


def _schema(field: Field) -> dict:
    schema: dict = {"type": [field.type, "null"] if field.nullable or not field.required else field.type}
    if field.type == "string":
        # Blank is null, so a required string needs a character (other than white space when trimmed); a
        # format rules out blanks and NULs itself, and generators choke on a format and a pattern at once.
        if field.pattern is not None:
            # The value is trimmed before it is matched, and an optional blank one is null.
            optional = "" if field.required else "?"
            schema["pattern"] = (rf"^{_SPACE}*(?:{field.pattern}){optional}{_SPACE}*$" if field.trim
                                 else f"^(?:{field.pattern})$")
        elif not (field.email or field.url or field.format):
            required = rf"^{_SPACE}*[^\s\x00\x1c-\x1f\x85][^\x00]*$" if field.trim else r"^[^\x00]+$"
            schema["pattern"] = required if field.required else r"^[^\x00]*$"
        if field.min is not None:
            schema["minLength"] = field.min
        if field.max is not None:
            schema["maxLength"] = min(field.max, field.max_bytes or field.max)  # a character is at least a byte
        if fmt := "email" if field.email else "uri" if field.url else field.format:
            # An optional field may be blank instead (it is null then).
            blank = {"pattern": rf"^{_SPACE}*$"}
            schema.update({"format": fmt} if field.required else {"anyOf": [{"format": fmt}, blank]})
        if field.one_of is not None:
            schema["enum"] = list(field.one_of) + ([None] if "null" in schema["type"] else [])
    if field.type == "integer":
        if field.min is not None:
            schema["minimum"] = field.min
        if field.max is not None:
            schema["maximum"] = field.max
    if field.type == "array":
        schema["items"] = _schema(field.items) if field.items else {}
        if field.max is not None:
            schema["maxItems"] = field.max
    if field.description:
        schema["description"] = field.description
    if field.example is not None:
        schema["examples"] = [field.example]
    return schema
