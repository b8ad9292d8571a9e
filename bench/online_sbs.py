"""The online load of one city by two source trees, alternating, into one wiped server: the
before/after of a change to the write path, measured side by side in one run.

    TUBETRACE_HOME=... python -m bench.online_sbs BEFORE_TREE AFTER_TREE CITY_DIR [--rounds 3]

Each round wipes the database of TUBETRACE_HOME, loads CITY_DIR/compounds.csv, then times
`tubetrace load registrations CITY_DIR/registrations.csv` run from each tree in turn."""

from __future__ import annotations

import time
from pathlib import Path

from bench.measure import run_in_tree, side_by_side, trees

RUN = (
    "import sys; sys.path.insert(0, sys.argv[1]); from cli.main import main; "
    "sys.argv = ['tubetrace'] + sys.argv[2:]; main()"
)
WIPE = (
    "import sys; sys.path.insert(0, sys.argv[1]); from engine.settings import get_settings; "
    "from bench.devdb import connect, wipe; gw = connect(get_settings()); s = gw.secret(); "
    "wipe(gw); gw.write('ensure_secret', key='person_id_secret', value=s); "
    "gw.close()"
)


def main() -> None:
    parser = side_by_side(__doc__ or "", rounds=3)
    parser.add_argument("city", type=Path)
    args = parser.parse_args()
    pair = trees(args)
    rows = sum(1 for _ in (args.city / "registrations.csv").open(encoding="utf-8")) - 1
    rates: dict[str, list[float]] = {name: [] for name in pair}
    for r in range(args.rounds):
        for name, tree in pair.items():
            run_in_tree(tree, WIPE)
            run_in_tree(tree, RUN, "load", "compounds", str(args.city / "compounds.csv"))
            t = time.perf_counter()
            out = run_in_tree(
                tree, RUN, "load", "registrations", str(args.city / "registrations.csv")
            )
            seconds = time.perf_counter() - t
            rates[name].append(rows / seconds)
            summary = out.splitlines()[-1] if out else ""
            print(f"round {r} {name}: {rows / seconds:.0f} rows/s | {summary}", flush=True)
    for name, values in rates.items():
        print(name, "rows/s:", ", ".join(f"{v:.0f}" for v in values))
    ratios = (a / b for a, b in zip(rates["after"], rates["before"], strict=True))
    print("after/before:", ", ".join(f"{x:.2f}x" for x in ratios))


if __name__ == "__main__":
    main()
