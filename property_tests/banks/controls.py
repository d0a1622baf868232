"""Running a property against a wrong derivation: the property must find a failing example."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

CONTROL_SETTINGS = settings(
    max_examples=200,
    phases=[Phase.generate],
    derandomize=True,
    database=None,
    deadline=None,
    report_multiple_bugs=False,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)


def rejects(prop: Callable[..., None], strategy: st.SearchStrategy, **kwargs: Any) -> bool:
    """True when Hypothesis, drawing from ``strategy``, finds an example on which ``prop``
    (called with ``kwargs``) raises ``AssertionError``."""

    @CONTROL_SETTINGS
    @given(strategy)
    def run(example):
        prop(example, **kwargs)

    try:
        run()
    except AssertionError:
        return True
    return False
