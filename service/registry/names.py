"""The one rule for the names the registry stores: model names, aliases and audit actors.

Every way into the registry checks the same rule - the admin API (path, query and header
patterns), `writes.register`, and `surrogate-train` before it starts a fit - so no stored
name can break a header, a URL or a log line later. A model name ends up in the export's
`Content-Disposition: attachment; filename="<name>-v<version>.csv"` and in URLs: letters,
digits, '.', '_' and '-' only, starting with a letter or digit, at most 128 characters (the
column's width). That leaves out CR/LF and NUL (header injection), quotes and ';' (a
forged `filename=` parameter), '/' and '..' tricks, spaces and every non-ASCII character,
bidirectional controls included (a name that displays differently from what it is).
"""

from __future__ import annotations

import re

from service.errors import InvalidInputError

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9._-]{0,63}$"
# Who acted, for the audit log: an operator's name (`X-Actor`) or "<user> (surrogate-train)".
# Printable ASCII words only, so an audit line or a log line cannot be forged with it.
ACTOR_PATTERN = r"^[A-Za-z0-9_.@ ()-]{1,128}$"

_RULES = {
    "name": (re.compile(MODEL_NAME_PATTERN),
             "letters, digits, '.', '_' and '-', starting with a letter or digit, "
             "at most 128 characters"),
    "alias": (re.compile(ALIAS_PATTERN),
              "letters, digits, '.', '_' and '-', starting with a letter, at most 64 "
              "characters"),
    "actor": (re.compile(ACTOR_PATTERN),
              "letters, digits, spaces and '.', '_', '@', '(', ')', '-', at most 128 "
              "characters"),
}


def _check(field: str, value: str) -> str:
    pattern, rule = _RULES[field]
    # fullmatch: `$` alone would also accept a trailing newline.
    if not isinstance(value, str) or not pattern.fullmatch(value):
        shown = repr(value)[:80]
        raise InvalidInputError(f"{field} {shown} is not allowed: use {rule}",
                                [{"field": field, "message": rule}])
    return value


def check_model_name(name: str) -> str:
    """`name` if it follows the rule, else InvalidInputError naming the field."""
    return _check("name", name)


def check_alias(alias: str) -> str:
    return _check("alias", alias)


def check_actor(actor: str) -> str:
    return _check("actor", actor)
