"""The day's positives by two source trees, alternating, on one running server: the
before/after of a change to the positives pass, measured side by side in one run.

    TUBETRACE_HOME=... python -m bench.positives_sbs BEFORE_TREE AFTER_TREE [--day 2022-04-09]
        [--cold]

--cold restarts the managed server of TUBETRACE_HOME and drops the OS page cache before each
run (root only), so every run reads the day from disk. Each run reads the whole day with
`reports.positives_stream` and prints its seconds, the positive tubes and the persons it
found (both trees must find the same)."""

from __future__ import annotations

import json

from bench.measure import drop_os_cache, run_in_tree, side_by_side, trees
from engine.server.managed import ManagedServer
from engine.settings import get_settings

RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from engine.analysis import reports
from engine.store.gateway import connect
from engine.settings import get_settings
gw = connect(get_settings())
start = time.perf_counter()
items = list(reports.positives_stream(gw, sys.argv[2]))
seconds = time.perf_counter() - start
gw.close()
print(json.dumps({"seconds": seconds, "tubes": len({i["tube_code"] for i in items}),
                  "persons": sum(len(i["trace"]["persons"]) for i in items)}))
"""


def main() -> None:
    parser = side_by_side(__doc__ or "", rounds=2)
    parser.add_argument("--day", default="2022-04-09")
    parser.add_argument("--cold", action="store_true", help="each run from disk (see above)")
    args = parser.parse_args()
    pair = trees(args)
    settings = get_settings()
    if args.cold and settings.neo4j_uri:
        raise SystemExit("--cold restarts the managed server; unset NEO4J_URI")
    if args.cold and not drop_os_cache():
        raise SystemExit("--cold: the OS page cache cannot be dropped here (root only)")
    server = ManagedServer(settings) if args.cold else None
    found = set()
    for r in range(args.rounds):
        for name, tree in pair.items():
            if server is not None:
                server.stop()
                drop_os_cache()
                server.start()
            res = json.loads(run_in_tree(tree, RUN, args.day).splitlines()[-1])
            found.add((res["tubes"], res["persons"]))
            print(
                f"round {r} {name}: {res['seconds']:.1f} s for {res['tubes']:,} positive tubes "
                f"({res['persons']:,} persons)",
                flush=True,
            )
    print("both trees found the same:", len(found) == 1)


if __name__ == "__main__":
    main()
