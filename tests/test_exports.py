"""The public API is small and deliberate: a test guards ``devskyy.__all__``."""

from __future__ import annotations

import devskyy


def test_all_names_resolve() -> None:
    for name in devskyy.__all__:
        assert getattr(devskyy, name) is not None, name


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        devskyy.nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert str(exc) == "module 'devskyy' has no attribute 'nope'"
    else:
        raise AssertionError("expected AttributeError")
