"""How long ``graftonnx demo --epochs 4`` takes with the old thread defaults and the new ones, on a loaded machine.

Why: the demo took more than 600 s on a busy 2-core machine with torch's and onnxruntime's
default pools and 107 s with one thread per process.  This runs the demo in fresh
processes: ``before`` is the code at ``--base`` (a git revision, unpacked to a temp folder)
with no thread settings; ``after`` is this checkout with its automatic count (and with
``--threads 1``); each with and without ``--hogs`` busy-looping processes that stand for
the other jobs of a shared machine.  Writes ``benchmarks/results/threads.json``.

    python benchmarks/bench_threads.py --base 5cd52c4 --hogs 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run_demo", "main"]

ROOT = Path(__file__).resolve().parents[1]
_HOG = "while True:\n    pass\n"


def run_demo(pythonpath: Path, extra: list[str], hogs: int, out: Path) -> float:
    """Seconds for one demo run in a fresh process, with ``hogs`` busy processes alongside."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "GRAFTONNX_THREADS")}
    env["PYTHONPATH"] = str(pythonpath)
    busy = [subprocess.Popen([sys.executable, "-c", _HOG]) for _ in range(hogs)]
    try:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "graftonnx", *extra, "demo", "--epochs", "4", "--no-progress",
                        "-o", str(out)], env=env, check=True, capture_output=True)
        return round(time.perf_counter() - t, 1)
    finally:
        for p in busy:
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="5cd52c4", help="git revision of the 'before' code")
    ap.add_argument("--hogs", type=int, default=1, help="busy-looping processes for the loaded runs")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "threads.json"))
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from graftonnx.threads import available_cores, pick_threads

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", a.base, "graftonnx"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        runs = {}
        for hogs in (0, a.hogs):
            for name, path, extra in (("before (library defaults)", base, []), ("after (auto)", ROOT, []),
                                      ("after (--threads 1)", ROOT, ["--threads", "1"])):
                key = f"{name}, {hogs} busy process(es)"
                runs[key] = run_demo(path, extra, hogs, Path(tmp) / f"demo-{len(runs)}")
                print(f"{key}: {runs[key]} s", flush=True)
    import torch

    record = {"command": "graftonnx demo --epochs 4 --no-progress", "base_revision": a.base, "seconds": runs,
              "machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "cpu_count": os.cpu_count(), "available_cores": available_cores(),
                          "auto_threads": pick_threads(), "torch": torch.__version__,
                          "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
              "note": "one run each on a shared machine (other jobs ran too): differences under ~10 % are noise"}
    Path(a.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {a.out}")


if __name__ == "__main__":
    main()
