"""Test scheduling under pytest-xdist (``-n 2``, the README's test command).

The ci-profile notebooks that nbval executes share the run folder ``runs/nb``: one notebook
trains the checkpoints the next one reads, and a second run in the same folder is refused. So
under xdist all notebook cells form ONE unit of work, run in order on one worker; every test
module (the full-profile rehearsal's included: it runs its notebooks in order in one folder per
dataset) is a unit too, as in ``--dist loadscope``. The largest units are handed out first, so
the notebooks start at once beside the rest. Without ``-n`` this hook is not called.
"""

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class NotebooksTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "notebooks" if path.endswith(".ipynb") else path

    return NotebooksTogether(config, log)
