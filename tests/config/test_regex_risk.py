"""Patterns a hostile reply can make backtrack for seconds are refused; the
patterns health checks really use, and possessive or atomic rewrites, are not."""

from __future__ import annotations

import pytest

from director.config.regex_risk import backtracking_risk


@pytest.mark.parametrize("pattern", [
    r"(a+)+$", r"(a*)*", r"(\w+\s?)*$", r"(a{1,5})+", r"(?:x(a+)+y)", r"(?=(a+)+)", r"(.*,)*end",
    r"(?:(?:ab)+c?)+x", r"(a|(b+)+)", r"(?P<n>x)?(?(n)(a+)+|b)", r"(a+?)+",
])
def test_nested_variable_repeats_are_refused(pattern: str) -> None:
    assert backtracking_risk(pattern) == "a repeat inside a repeat can try exponentially many splits of a reply"


@pytest.mark.parametrize("pattern", [
    "OK", "<title>.*</title>", r"status: (up|ok)", r"(ab){2,}", r"^HTTP.*200", r"(a++)+$", r"(?>a+)+$",
    r"(a+)++$", r"(a{3}){2,}", r"\d+\.\d+", r"(x(a+){2})", "(unclosed",
])
def test_linear_and_bounded_patterns_pass(pattern: str) -> None:
    assert backtracking_risk(pattern) is None
