"""Real near-duplicate corpora: several releases of the same packages, as wheels unpacked
like `pip install --target` (one folder each), cached under .cache/bench-releases/."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench-releases"

#: 4 releases each of 7 code-heavy packages (about 23,000 files in PolyCoder's languages).
MAIN = [f"{p}=={v}" for p, vs in {
    "django": ["3.2.25", "4.1.13", "4.2.16", "5.0.9"],
    "sympy": ["1.10.1", "1.11.1", "1.12", "1.13.3"],
    "sqlalchemy": ["1.4.54", "2.0.0", "2.0.25", "2.0.36"],
    "numpy": ["1.23.5", "1.24.4", "1.25.2", "1.26.4"],
    "pandas": ["1.5.3", "2.0.3", "2.1.4", "2.2.3"],
    "scipy": ["1.10.1", "1.11.4", "1.12.0", "1.13.1"],
    "matplotlib": ["3.6.3", "3.7.5", "3.8.2", "3.9.4"],
}.items() for v in vs]

#: Many more releases, for the >= 100,000-document run.
SCALE = MAIN + [f"{p}=={v}" for p, vs in {
    "django": [f"4.2.{i}" for i in range(1, 16)] + [f"5.0.{i}" for i in range(1, 9)]
    + [f"4.1.{i}" for i in range(1, 13)] + ["3.2.20", "3.2.21", "3.2.22", "3.2.23"],
    "numpy": [f"1.24.{i}" for i in range(0, 4)] + [f"1.25.{i}" for i in range(0, 2)]
    + [f"1.26.{i}" for i in range(0, 4)] + ["1.23.2", "1.23.3", "1.23.4"],
    "pandas": ["1.5.0", "1.5.1", "1.5.2", "2.0.0", "2.0.1", "2.0.2", "2.1.0", "2.1.1",
               "2.1.2", "2.1.3", "2.2.0", "2.2.1", "2.2.2"],
    "scipy": ["1.9.3", "1.10.0", "1.11.1", "1.11.2", "1.11.3", "1.12.0rc1", "1.13.0"],
    "matplotlib": ["3.6.2", "3.7.0", "3.7.1", "3.7.2", "3.7.3", "3.7.4", "3.8.0", "3.8.1",
                   "3.8.3", "3.8.4", "3.9.0", "3.9.1", "3.9.2"],
    "sympy": ["1.9", "1.11", "1.13.0", "1.13.1"],
}.items() for v in vs]


def fetch(specs: list[str]) -> list[Path]:
    """Download (once) and unpack each release; returns their folders."""
    wheels = CACHE / "wheels"
    targets = {s: CACHE / s.replace("==", "-") for s in specs}
    missing = [s for s, d in targets.items() if not (d / ".complete").exists()]
    rounds: list[list[str]] = []  # pip resolves one release of a package per call
    for s in missing:
        name = s.split("==")[0]
        free = next((r for r in rounds if name not in {x.split("==")[0] for x in r}), None)
        if free is None:
            rounds.append(free := [])
        free.append(s)
    for batch in rounds:
        print(f"downloading {len(batch)} wheels ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--python-version", "3.11", "--platform",
                        "manylinux2014_x86_64", "--dest", str(wheels), *batch], check=True)
    for s in missing:
        name, version = s.split("==")
        wheel = next(w for w in wheels.glob("*.whl")
                     if w.name.lower().startswith(f"{name}-{version}-".lower()))
        with zipfile.ZipFile(wheel) as z:
            z.extractall(targets[s])
        (targets[s] / ".complete").touch()
    return [targets[s] for s in specs]
