"""CPU cost of the live-call registry and its heartbeat, per call-second (``cluster.py``).

Run: ``.venv/bin/python bench/registry.py [--database-url URL] [--calls 200] [--beats 200]
[--call-seconds 180] [--concurrent 50]``. Figures are printed, never asserted.

What one instance pays, in its own process (``time.process_time``: the client side; the
database server's own CPU is not counted):

- per call: :meth:`LiveRegistry.register` + :meth:`LiveRegistry.unregister` (one upsert and
  one delete, in background tasks), measured over ``--calls`` calls started together;
- per instance: one :meth:`LiveRegistry.heartbeat` (one upsert, three purge deletes), every
  ``HEARTBEAT_S`` (5 s) whatever the number of calls, measured over ``--beats`` beats.

Per call-second = (register + unregister) / ``--call-seconds`` (the mean call length) +
heartbeat / ``HEARTBEAT_S`` / ``--concurrent`` (the heartbeat shared by the live calls).
The default database is a fresh SQLite file; pass ``--database-url postgresql://...`` (a
schema of its own with ``?options=-csearch_path%3D...``) for PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from vonage_bridge.cluster import HEARTBEAT_S, Cluster, LiveRegistry, new_instance_id
from vonage_bridge.store import SqlCallStore


async def measure(args: argparse.Namespace) -> None:
    url = args.database_url
    tmp = None
    if url is None:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    store = await SqlCallStore.open(url)
    try:
        registry = LiveRegistry(Cluster(store, new_instance_id()))
        await registry.heartbeat()
        uuids = [f"bench-{n:06d}" for n in range(args.calls)]
        t0, c0 = time.perf_counter(), time.process_time()
        for u in uuids:
            registry.register(
                u,
                front_door="vonage",
                direction="inbound",
                caller="447700900000",
                called="447700900001",
            )
        await registry.settled()
        for u in uuids:
            registry.unregister(u)
        await registry.settled()
        per_call = (time.process_time() - c0) / args.calls
        wall_call = (time.perf_counter() - t0) / args.calls
        c0 = time.process_time()
        for _ in range(args.beats):
            await registry.heartbeat()
        per_beat = (time.process_time() - c0) / args.beats
        await registry.leave()
    finally:
        await store.close()
        if tmp is not None:
            tmp.cleanup()
    per_call_second = per_call / args.call_seconds + per_beat / HEARTBEAT_S / args.concurrent
    print(f"database: {store.dialect}")
    print(
        f"register + unregister: {per_call * 1e3:.3f} ms CPU per call "
        f"({wall_call * 1e3:.3f} ms wall, {args.calls} calls at once)"
    )
    print(f"heartbeat: {per_beat * 1e3:.3f} ms CPU per beat (every {HEARTBEAT_S:g} s)")
    print(
        f"per call-second: {per_call_second * 1e3:.4f} ms CPU "
        f"({args.call_seconds:g} s calls, {args.concurrent} live at once; target <= 0.2 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--beats", type=int, default=200)
    parser.add_argument("--call-seconds", type=float, default=180.0)
    parser.add_argument("--concurrent", type=int, default=50)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
