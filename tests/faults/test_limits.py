"""No input makes ``nds`` use more than 1 GB of memory or print a line longer than 1,000 characters.

The inputs are the ones that used to cost the most: the 601-byte YAML whose nested aliases stood
for billions of values (17.9 GB and a 2 GB error line before), a 50 MB YAML, and the largest JSON
inputs the size limit lets through, built of the objects that take the most memory per byte.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .helpers import MAX_LINE
from .test_strict_inputs import alias_bomb

REPO = Path(__file__).resolve().parents[2]
LIMIT_MB = 1024


def flow_bomb(levels: int = 9, width: int = 9) -> str:
    """The alias bomb as one flow sequence, for ``--set``."""
    items = ["&a0 [" + ", ".join(["x"] * width) + "]"]
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "[" + ", ".join(items) + "]"


def test_hostile_inputs_stay_under_one_gigabyte_and_short_lines(tmp_path: Path, finished_run: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    assert 550 <= len(bomb.read_bytes()) <= 700
    big_yaml = tmp_path / "big.yaml"
    big_yaml.write_text("strategy: spos\nseed: '" + "9" * 50_000_000 + "'\n")
    near_limit = 15_900_000
    lists = tmp_path / "lists.json"  # the JSON with the most Python objects per byte: empty lists
    lists.write_text("[" + ",".join(["[]"] * (near_limit // 3)) + "]")
    dicts = tmp_path / "dicts.json"
    dicts.write_text("[" + ",".join(['{"arch":{}}'] * (near_limit // 12)) + "]")
    strings = tmp_path / "strings.json"  # the most objects the container bound lets through: short strings
    strings.write_text('[{"arch": {"cell/0_1": "none"}, "predicted_accuracy": 1.5, "s": [' +
                       ",".join(['"a"'] * (near_limit // 4 - 20)) + "]}]")
    long_value = tmp_path / "long.yaml"
    long_value.write_text("strategy: spos\nspace:\n  kwargs:\n    x: " + json.dumps(["y" * 1000] * 900) + "\n"
                          "training:\n  epochs: -1\n")
    table = tmp_path / "gt.json"
    table.write_text((finished_run.parent / "run" / "results.json").read_text())  # not a table: refused
    out = str(tmp_path / "out")
    cases = [
        ("601-byte alias bomb", ["train", "--config", str(bomb), "--out", out]),
        ("alias bomb in --set", ["train", "--out", out, "--set", "space.kwargs.x=" + flow_bomb()]),
        ("50 MB YAML", ["train", "--config", str(big_yaml), "--out", out]),
        ("long values", ["train", "--config", str(long_value), "--out", out]),
        ("16 MB of empty lists", ["rank", "--predictions", str(lists), "--ground-truth", str(table)]),
        ("16 MB of dicts", ["rank", "--predictions", str(dicts), "--ground-truth", str(table)]),
        ("16 MB archs to evaluate", ["evaluate", "--checkpoint", str(finished_run / "supernet.pt"), "--archs",
                                     str(dicts), "--out", out + ".json"]),
        ("16 MB of short strings", ["rank", "--predictions", str(strings), "--ground-truth", str(table)]),
        ("16 MB to plot", ["plot", str(lists), "--out", out]),
    ]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "tests.faults.memory_probe", str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    rows, (total,) = lines[:-1], lines[-1:]
    assert [r["case"] for r in rows] == [c[0] for c in cases]
    report = "\n".join(f"{r['case']}: exit {r['code']}, peak so far {r['peak_mb']:.0f} MB, longest line "
                       f"{r['longest_line']}: {r['first_line']}" for r in rows)
    report += f"\npeak of the process (getrusage RUSAGE_CHILDREN): {total['getrusage_children_max_rss_mb']:.0f} MB"
    print(report)
    for row in rows:
        assert row["code"] == 2, report
        assert row["longest_line"] <= MAX_LINE, report
    assert total["getrusage_children_max_rss_mb"] < LIMIT_MB, report
    assert not Path(out).exists()
