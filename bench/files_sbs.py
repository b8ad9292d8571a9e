"""The bulk import's first step (the import files) by two source trees, alternating: the
before/after of a change to it, measured side by side in one run. No server is needed.

    python -m bench.files_sbs BEFORE_TREE AFTER_TREE CITY_DIR [--rounds 2]

Each run writes CITY_DIR's import files into a temporary folder and prints registrations/s
and the main process's CPU share (user+system seconds over wall seconds)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.measure import run_in_tree, side_by_side, trees

RUN = """
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from engine.settings import get_settings
from loaders.bulk import _inputs
from loaders.bulk_files import write_import_files
with tempfile.TemporaryDirectory() as out:
    start, cpu = time.perf_counter(), time.process_time()
    plan = write_import_files(Path(out) / "f", _inputs("all", Path(sys.argv[2])),
                              get_settings(), "x" * 64)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"rows": plan.summaries["registrations"].read, "wall": wall,
                  "main_cpu": cpu / wall}))
"""


def main() -> None:
    parser = side_by_side(__doc__ or "", rounds=2)
    parser.add_argument("city", type=Path)
    args = parser.parse_args()
    pair = trees(args)
    rates: dict[str, list[float]] = {name: [] for name in pair}
    for r in range(args.rounds):
        for name, tree in pair.items():
            out = run_in_tree(tree, RUN, str(args.city.resolve()))
            res = json.loads(out.splitlines()[-1])
            rate = res["rows"] / res["wall"]
            rates[name].append(rate)
            print(
                f"round {r} {name}: {rate:,.0f} registrations/s, "
                f"main process {res['main_cpu']:.0%} of a core",
                flush=True,
            )
    ratios = (a / b for a, b in zip(rates["after"], rates["before"], strict=True))
    print("after/before:", ", ".join(f"{x:.2f}x" for x in ratios))


if __name__ == "__main__":
    main()
