"""The suite's own rules (STYLE rule 7): nothing written into the source tree."""

from hypothesis import settings


def test_hypothesis_keeps_no_example_database():
    assert settings.default.database is None
    assert settings(max_examples=3, deadline=None).database is None  # per-test settings inherit it
