"""Test scheduling under pytest-xdist (``-n 2 --dist loadgroup``, the README's test command).

Tests that execute notebooks share state in order: the ci-profile notebooks run by nbval share
the run folder ``runs/`` (checkpoints that one notebook trains and the next reads; a second run
in the same folder is refused), and the full-profile rehearsal runs its notebooks in order in
one folder per dataset. Each family is one xdist group, so it runs on one worker, in collection
order; every other test goes to whichever worker is free. Without xdist this hook does nothing.
"""

import pytest


def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        path = item.path
        if path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group("notebooks"))
        elif path.name == "test_notebooks_rehearsal.py":
            item.add_marker(pytest.mark.xdist_group("rehearsal"))
