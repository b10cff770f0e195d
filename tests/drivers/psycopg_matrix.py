"""psycopg 3 through a pooler in transaction mode: 8 concurrent clients x 30
queries each, with psycopg's default prepare_threshold (prepares after 5
executions, names _pg3_N), with prepare_threshold=0 (prepares everything),
and in pipeline mode. Exits non-zero (with the error) on any failure.

usage: psycopg_matrix.py CONNINFO
"""
import sys
import threading

import psycopg

CONNINFO = sys.argv[1]
CLIENTS = 8
QUERIES = 30
errors = []


def client(n, threshold, pipeline):
    try:
        with psycopg.connect(CONNINFO, autocommit=True, prepare_threshold=threshold) as conn:
            for i in range(QUERIES):
                if pipeline:
                    with conn.pipeline():
                        cur1 = conn.execute("SELECT %s::int + %s::int", (i, n))
                        cur2 = conn.execute("SELECT %s::text || 'x'", (f"{n}-{i}",))
                    assert cur1.fetchone()[0] == i + n
                    assert cur2.fetchone()[0] == f"{n}-{i}x"
                else:
                    # Each client's query text differs, under the same _pg3_ names.
                    row = conn.execute(f"SELECT %s::int * {n + 1}", (i,)).fetchone()
                    assert row[0] == i * (n + 1), row
                    with conn.transaction():
                        row = conn.execute("SELECT %s::int + 1", (i,)).fetchone()
                        assert row[0] == i + 1
    except Exception as e:  # noqa: BLE001 - report everything
        errors.append(f"client {n} threshold={threshold} pipeline={pipeline}: {e!r}")


for threshold, pipeline in [(5, False), (0, False), (0, True)]:
    threads = [threading.Thread(target=client, args=(n, threshold, pipeline)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

if errors:
    print("\n".join(errors))
    sys.exit(1)
print("ok")
