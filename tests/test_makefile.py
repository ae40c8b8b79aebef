"""`make test` keeps its promise: every test file that runs Blender runs again on Blender 4.2 LTS."""
from __future__ import annotations

import re

from tests.conftest import ROOT

NOT_BLENDER = ("test_layout.py", "test_makefile.py")  # they only name bpy in text
USES_BLENDER = re.compile(r"""importorskip\(["']bpy["']\)|^\s*import bpy\b|\bimport (torch, )?bpy\b""", re.M)


def test_every_blender_test_file_is_in_the_4_2_run():
    text = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    listed = set(re.search(r"^BPY_TESTS \?=(.*)$", text, re.M).group(1).split())
    blender = {f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py")
               if p.name not in NOT_BLENDER and USES_BLENDER.search(p.read_text(encoding="utf-8"))}
    assert len(blender) > 10 and not blender - listed, f"add to BPY_TESTS in the Makefile: {sorted(blender - listed)}"
    assert all((ROOT / name).is_file() for name in listed)
