"""The top-level API: every name in ``fcam_nb.__all__`` resolves, and the version is the
project's."""

import re
from pathlib import Path

import pytest

import fcam_nb


def test_every_export_resolves():
    for name in fcam_nb.__all__:
        assert getattr(fcam_nb, name) is not None, name
    assert sorted(dir(fcam_nb)) == sorted(fcam_nb.__all__)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        fcam_nb.no_such_thing  # noqa: B018


def test_version_is_the_projects():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert fcam_nb.__version__ == re.search(r'^version = "(.+)"', text, re.M).group(1)
