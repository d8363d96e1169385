"""The suite's own machinery: pytest-xdist's ``--dist loadgroup`` really keeps an ``xdist_group`` on one
worker (`make test` relies on it: the Ray cluster tests share one cluster; pytest 9.2.0 with
pytest-xdist 3.8.0 silently stopped grouping). A real pytest run in a subprocess, on a generated file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("xdist")


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path: Path):
    (tmp_path / "test_grouped.py").write_text(textwrap.dedent("""\
        import json, os, pytest
        pytestmark = pytest.mark.xdist_group("together")

        @pytest.mark.parametrize("i", range(6))
        def test_member(i, request):
            with open(os.environ["GROUP_LOG"], "a") as fh:
                fh.write(json.dumps([request.node.nodeid, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
        """))
    (tmp_path / "test_free.py").write_text("import pytest\n\n@pytest.mark.parametrize('i', range(6))\n"
                                           "def test_free(i):\n    pass\n")
    log = tmp_path / "group.log"
    env = dict(os.environ, GROUP_LOG=str(log))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup",
                        "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 6
    assert all(nodeid.endswith("@together") for nodeid, _ in rows), rows
    assert len({worker for _, worker in rows}) == 1, rows   # one worker ran the whole group
