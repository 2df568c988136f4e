"""The HTTP depth keys of a `[virtual_server.check]`: request headers, HTTP/1.0, basic
authentication, keepalived's body `digest`, `regex_no_match`, several `urls`, and the
HTTPS client certificate. Kept beside `director.config.load`, which merges `HTTP_CHECK`
into its check readers and calls `http_problems` once the check is read.

Everything here ends up in a request line or a header, so the rule is the request
builder's: no byte that could end a line or split one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from director.config.model import CheckConfig, Config, HttpUrl
from director.config.problems import Problem
from director.config.read import Reader, Section, boolean, read_fields, text

MAX_HEADERS = 32
MAX_URLS = 32
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is fine in a header value
_DIGEST = re.compile(r"[0-9a-fA-F]{32}")
# built by the probe itself: a second one would make the request ambiguous
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "authorization"})


def _headers(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[tuple[str, str], ...]:
    table = s.raw(key, None)
    if table is None:
        return default
    if not isinstance(table, dict):
        s.error(key, 'must be a table of header names and values, e.g. { "X-Check" = "lb" }')
        return default
    if len(table) > MAX_HEADERS:
        s.error(key, f"at most {MAX_HEADERS} headers, got {len(table)}")
        return default
    found = []
    for name, value in table.items():
        where = f"{key}.{name}" if _TOKEN.fullmatch(name) else key
        if not _TOKEN.fullmatch(name):
            s.error(where, f"{name!r} is not a header name")
        elif name.lower() in _OWN_HEADERS:
            s.error(where, "is set by the check itself (use host, http_user / http_password)")
        elif not isinstance(value, str) or _UNSAFE_VALUE.search(value):
            s.error(where, "must be a string without line breaks or control characters")
        else:
            found.append((name, value))
    return tuple(found)


def _user(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str | None:
    value = s.string(key, default)
    if isinstance(value, str) and (":" in value or _UNSAFE_VALUE.search(value) or not value):
        s.error(key, "must be a user name without ':' or control characters (basic authentication)")
        return default
    return value


def _password(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str:
    value = s.string(key, default)
    if isinstance(value, str) and _UNSAFE_VALUE.search(value):
        s.error(key, "must not contain control characters")
        return default
    return value


def _digest(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str | None:
    value = s.string(key, default)
    if isinstance(value, str) and not _DIGEST.fullmatch(value):
        s.error(key, f"must be an MD5 digest, 32 hexadecimal digits, got {value!r}")
        return default
    return value.lower() if isinstance(value, str) else value


def _file(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> str | None:
    value = s.string(key, default)
    if isinstance(value, str) and (not value.startswith("/") or "\0" in value):
        s.error(key, f'must be an absolute path, got "{value}"')
        return default
    return value


def url_readers(path: Reader, status: Reader, regex: Reader) -> dict[str, Reader]:
    """The readers of one `urls` entry; the loader passes its own path, status and regex readers."""
    return {"path": path, "expect_status": status, "expect_body": regex, "regex_no_match": boolean,
            "digest": _digest, "host": text}


def urls_reader(readers: dict[str, Reader], check_url: Callable[[Section, HttpUrl], None]) -> Reader:
    def read(s: Section, key: str, default: Any, choices: tuple[Any, ...]) -> tuple[HttpUrl, ...]:
        if s.raw(key, None) is None:
            return default
        sections = s.tables(key)
        if len(sections) > MAX_URLS:
            s.error(key, f"at most {MAX_URLS} URLs, got {len(sections)}")
            return default
        urls = []
        for sub in sections:
            url = HttpUrl(**read_fields(sub, HttpUrl, readers))
            check_url(sub, url)
            _no_match_needs_regex(sub, url.regex_no_match, url.expect_body)
            sub.finish()
            urls.append(url)
        return tuple(urls)
    return read


HTTP_CHECK: dict[str, Reader] = {
    "headers": _headers,
    "http_version": text,
    "http_user": _user,
    "http_password": _password,
    "digest": _digest,
    "regex_no_match": boolean,
    "tls_cert": _file,
    "tls_key": _file,
    "tls_ca": _file,
}
# set with urls, these would be ignored: each URL has its own
PER_URL = ("path", "expect_status", "expect_body", "regex_no_match", "digest")


def http_problems(s: Section, check: CheckConfig) -> None:
    """Errors across the keys of one check."""
    if check.urls:
        for key in PER_URL:
            if s.has(key):
                s.error(key, "is set per URL when urls is given: move it into each [[...check.urls]] entry")
    else:
        _no_match_needs_regex(s, check.regex_no_match, check.expect_body)
    if s.has("http_password") and check.http_user is None:
        s.error("http_password", "needs http_user")
    if check.tls_key is not None and check.tls_cert is None:
        s.error("tls_key", "needs tls_cert (the certificate the key belongs to)")
    if check.tls_ca is not None and check.tls_verify is not True:
        s.error("tls_ca", "has no effect unless tls_verify = true")
    if check.method == "HEAD" and (check.digest is not None or any(u.digest for u in check.urls)):
        s.error("method", "a HEAD request gets no body, so no digest can match it: use GET")


def tls_file_problems(config: Config) -> list[Problem]:
    """check-config on the host: each TLS file a check names must be a readable regular file
    (the probe would fail every time otherwise, with that reason)."""
    problems = []
    for index, vs in enumerate(config.virtual_servers):
        for key in ("tls_cert", "tls_key", "tls_ca"):
            path = getattr(vs.check, key)
            if path is None:
                continue
            if not os.path.isfile(path):
                problems.append(Problem(("virtual_server", index, "check", key), f'no file "{path}" on this host'))
            elif not os.access(path, os.R_OK):
                problems.append(Problem(("virtual_server", index, "check", key), f'"{path}" is not readable'))
    return problems


def _no_match_needs_regex(s: Section, no_match: bool, expect_body: str | None) -> None:
    if no_match and expect_body is None:
        s.error("regex_no_match", "needs expect_body (the pattern the body must not match)")

