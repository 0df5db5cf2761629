"""The README's first Python example runs as pasted (it uses the agent's --sandbox)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"


def test_readme_example_runs(agent_binary: str, tmp_path: Path) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
    assert blocks, "the README has no python example"
    example = tmp_path / "example.py"
    example.write_text(blocks[0])
    env = dict(os.environ)
    env["SMARTCAR_AUTH_AGENT"] = agent_binary
    env.pop("SMARTCAR_AUTH_AGENT_ARGS", None)
    for name in list(env):
        if name.startswith("SMARTCAR_") and name != "SMARTCAR_AUTH_AGENT":
            env.pop(name)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent / "src"), env.get("PYTHONPATH")]))

    run = subprocess.run([sys.executable, str(example)], env=env, capture_output=True, text=True, timeout=60)

    assert run.returncode == 0, run.stderr
    assert "stored tokens for my-car" in run.stdout
    assert "valid until 20" in run.stdout
