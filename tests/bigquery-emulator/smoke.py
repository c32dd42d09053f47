"""Smoke test for a running local-bigquery emulator.

Run with the emulator venv's python:

    $ROOT/venv/bin/python smoke.py REST_PORT GRPC_PORT [--host 127.0.0.1]
        [--project test] [--verbose]

Checks, in order (each prints one line; --verbose also dumps request/response JSON):
  rest:    create dataset, create table (nested RECORD + REPEATED), insertAll with
           string and int64-micros timestamps, tabledata.list, jobs.query  -- plain
           HTTP (urllib), the way a non-Google client would talk to it
  quirks:  numeric (seconds) timestamp, gzip request body (informational only)
  client:  google-cloud-bigquery query_and_wait + insert_rows_json
  write:   Storage Write API over gRPC: _default stream append (proto rows),
           then a PENDING stream append/finalize/batchCommit
Prints PASS at the end and exits 0 when rest + client + write all worked.
"""

import argparse
import gzip
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

ARGS = None


def show(label, obj):
    if ARGS.verbose:
        print(f"  {label}: {json.dumps(obj, sort_keys=False)}")


def call(method, path, body=None, gz=False, query=""):
    url = f"http://{ARGS.host}:{ARGS.rest_port}/bigquery/v2/projects/{ARGS.project}{path}"
    if query:
        url += "?" + query
    data = None
    headers = {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
        if gz:
            data = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
    show(f"{method} {url.split(str(ARGS.rest_port), 1)[1]}", body)
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    out = json.loads(raw) if raw else None
    show(f"-> {status}", out)
    return status, out


SCHEMA = {
    "fields": [
        {"name": "id", "type": "INTEGER", "mode": "REQUIRED"},
        {"name": "name", "type": "STRING"},
        {"name": "ts", "type": "TIMESTAMP"},
        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
        {
            "name": "addr",
            "type": "RECORD",
            "fields": [
                {"name": "city", "type": "STRING"},
                {"name": "zip", "type": "INTEGER"},
            ],
        },
        {
            "name": "items",
            "type": "RECORD",
            "mode": "REPEATED",
            "fields": [
                {"name": "sku", "type": "STRING"},
                {"name": "qty", "type": "INTEGER"},
            ],
        },
    ]
}


def rest(dataset, table):
    st, out = call("POST", "/datasets", {"datasetReference": {"projectId": ARGS.project, "datasetId": dataset}})
    assert st == 200, (st, out)
    st, out = call("POST", "/datasets", {"datasetReference": {"projectId": ARGS.project, "datasetId": dataset}})
    print(f"rest: dataset created; duplicate create -> HTTP {st} {out and out.get('error', {}).get('status')}")
    st, out = call(
        "POST",
        f"/datasets/{dataset}/tables",
        {"tableReference": {"projectId": ARGS.project, "datasetId": dataset, "tableId": table}, "schema": SCHEMA},
    )
    assert st == 200, (st, out)
    st, out = call("GET", f"/datasets/{dataset}/tables/{table}")
    assert st == 200 and out["schema"]["fields"][4]["fields"][0]["name"] == "city", (st, out)
    rows = [
        {"insertId": "r1", "json": {"id": 1, "name": "a", "ts": "2024-01-02T03:04:05.123456Z",
                                     "tags": ["x", "y"], "addr": {"city": "Oslo", "zip": 150},
                                     "items": [{"sku": "s1", "qty": 2}, {"sku": "s2", "qty": 3}]}},
        {"insertId": "r2", "json": {"id": "2", "name": None, "ts": "2024-01-02 03:04:05 UTC",
                                     "tags": [], "addr": None, "items": []}},
        {"insertId": "r3", "json": {"id": 3, "ts": "2024-01-02T03:04:05.5+00:00"}},
    ]
    st, out = call("POST", f"/datasets/{dataset}/tables/{table}/insertAll", {"kind": "bigquery#tableDataInsertAllRequest", "rows": rows})
    assert st == 200 and "insertErrors" not in out, (st, out)
    # insertId de-dup (60 s window): same insertId again is dropped silently
    st, out = call("POST", f"/datasets/{dataset}/tables/{table}/insertAll", {"rows": rows[:1]})
    assert st == 200 and "insertErrors" not in out, (st, out)
    st, out = call("GET", f"/datasets/{dataset}/tables/{table}/data", query="maxResults=10")
    assert st == 200 and out["totalRows"] == "3", (st, out)
    print(f"rest: insertAll ok; tabledata.list totalRows={out['totalRows']} first row f/v: {json.dumps(out['rows'][0])}")
    st, out = call(
        "POST",
        "/queries",
        {"query": f"SELECT id, ts, addr.city AS city, ARRAY_LENGTH(items) AS n FROM `{ARGS.project}.{dataset}.{table}` ORDER BY id",
         "useLegacySql": False, "timeoutMs": 10000},
    )
    assert st == 200 and out["jobComplete"] and out["totalRows"] == "3", (st, out)
    print(f"rest: jobs.query rows={json.dumps(out['rows'])}")
    st, out = call(
        "POST", "/queries",
        {"query": f"SELECT COUNT(*) AS c FROM `{dataset}.{table}`", "useLegacySql": False,
         "formatOptions": {"useInt64Timestamp": True}},
    )
    assert st == 200, (st, out)


def quirks(dataset, table):
    for label, ts in (("seconds number", 1704164645.5), ("micros number", 1704164645123456),
                      ("seconds string", "1704164645"), ("micros string", "1704164645123456"),
                      ("no zone", "2024-01-02T03:04:05.123456"), ("nanos", "2024-01-02T03:04:05.123456789Z"),
                      ("offset", "2024-01-02T05:04:05+02:00")):
        st, out = call("POST", f"/datasets/{dataset}/tables/{table}/insertAll",
                       {"rows": [{"json": {"id": 100, "ts": ts}}]})
        errs = out.get("insertErrors") if isinstance(out, dict) else None
        msg = errs[0]["errors"][0]["message"] if errs else "accepted"
        print(f"quirk: timestamp as {label} {ts!r} -> HTTP {st}: {msg}")
    st, out = call("POST", f"/datasets/{dataset}/tables/{table}/insertAll",
                   {"rows": [{"insertId": "gz1", "json": {"id": 200, "name": "gz"}}]}, gz=True)
    print(f"quirk: gzip body (Content-Encoding: gzip) -> HTTP {st}: "
          f"{'accepted' if st == 200 and 'insertErrors' not in out else out}")
    st, out = call("POST", f"/datasets/{dataset}/tables/{table}/insertAll",
                   {"rows": [{"json": {"id": 300, "nope": 1}}]})
    print(f"quirk: unknown field -> HTTP {st}: {json.dumps(out)}")
    st, out = call("POST", f"/datasets/{dataset}/tables/{table}/insertAll",
                   {"rows": [{"json": {"id": 301, "nope": 1}}, {"json": {"id": 302}}],
                    "skipInvalidRows": True, "ignoreUnknownValues": False})
    print(f"quirk: skipInvalidRows=true -> HTTP {st}: {json.dumps(out)}")
    st, out = call("DELETE", f"/datasets/{dataset}/tables/{table}")
    # recreate for the next steps
    call("POST", f"/datasets/{dataset}/tables",
         {"tableReference": {"projectId": ARGS.project, "datasetId": dataset, "tableId": table}, "schema": SCHEMA})
    st2, out2 = call("GET", f"/datasets/{dataset}/tables/missing_table")
    print(f"quirk: delete table -> HTTP {st}; get missing table -> HTTP {st2} "
          f"{out2.get('error', {}).get('status') if out2 else ''}")


def client_check(dataset, table):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(
        project=ARGS.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": f"http://{ARGS.host}:{ARGS.rest_port}"},
    )
    errors = client.insert_rows_json(f"{ARGS.project}.{dataset}.{table}",
                                     [{"id": 10, "name": "c", "ts": "2024-05-06T07:08:09Z",
                                       "addr": {"city": "Bergen", "zip": 5003}}])
    assert not errors, errors
    rows = list(client.query_and_wait(
        f"SELECT id, name, ts, addr.city AS city FROM `{ARGS.project}.{dataset}.{table}` ORDER BY id"))
    assert [r.id for r in rows] == [10], rows
    listed = list(client.list_rows(f"{ARGS.project}.{dataset}.{table}"))
    assert len(listed) == 1, listed
    print(f"client: google-cloud-bigquery query_and_wait ok: {[dict(r) for r in rows]}")


def write_check(dataset, table):
    import grpc
    from google.cloud import bigquery_storage_v1
    from google.cloud.bigquery_storage_v1 import types
    from google.cloud.bigquery_storage_v1.services.big_query_write.transports import BigQueryWriteGrpcTransport
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    channel = grpc.insecure_channel(f"{ARGS.host}:{ARGS.grpc_port}")
    client = bigquery_storage_v1.BigQueryWriteClient(transport=BigQueryWriteGrpcTransport(channel=channel))
    parent = f"projects/{ARGS.project}/datasets/{dataset}/tables/{table}"

    # proto2 descriptor, nested types inside the row message (as BigQuery requires)
    F = descriptor_pb2.FieldDescriptorProto
    row = descriptor_pb2.DescriptorProto(name="Row")
    addr = row.nested_type.add(name="Addr")
    addr.field.add(name="city", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    addr.field.add(name="zip", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    item = row.nested_type.add(name="Item")
    item.field.add(name="sku", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    item.field.add(name="qty", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    row.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_REQUIRED)
    row.field.add(name="name", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    row.field.add(name="ts", number=3, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)  # micros
    row.field.add(name="tags", number=4, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    row.field.add(name="addr", number=5, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name="Addr")
    row.field.add(name="items", number=6, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED, type_name="Item")

    fdp = descriptor_pb2.FileDescriptorProto(name="smoke_row.proto", package="smoke")
    fdp.message_type.add().CopyFrom(row)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    Row = message_factory.GetMessageClass(pool.FindMessageTypeByName("smoke.Row"))

    def rows_of(*ids):
        out = []
        for i in ids:
            m = Row(id=i, name=f"w{i}", ts=1704164645000000 + i, tags=["p", "q"])
            m.addr.city = "Trondheim"
            m.addr.zip = 0  # explicit zero must survive (proto2 presence)
            it = m.items.add()
            it.sku, it.qty = "k", i
            out.append(m.SerializeToString())
        return out

    def req(stream, ids, offset=None, with_schema=True):
        r = types.AppendRowsRequest(write_stream=stream)
        pr = types.AppendRowsRequest.ProtoData()
        if with_schema:
            pr.writer_schema = types.ProtoSchema(proto_descriptor=row)
        pr.rows = types.ProtoRows(serialized_rows=rows_of(*ids))
        r.proto_rows = pr
        if offset is not None:
            r.offset = offset
        return r

    # default stream: two requests on one AppendRows call, schema only on the first
    default = f"{parent}/streams/_default"
    responses = list(client.append_rows(iter([req(default, [20, 21]), req("", [22], with_schema=False)])))
    for r in responses:
        assert not r.error.code and not r.row_errors, r
    print(f"write: _default stream AppendRows ok ({len(responses)} responses; "
          f"append_result.offset present={'offset' in responses[0].append_result})")

    # row error on the default stream: REQUIRED id missing
    bad = types.AppendRowsRequest(write_stream=default)
    pr = types.AppendRowsRequest.ProtoData(writer_schema=types.ProtoSchema(proto_descriptor=row),
                                           rows=types.ProtoRows(serialized_rows=[Row(name="noid").SerializePartialToString()]))
    bad.proto_rows = pr
    r = list(client.append_rows(iter([bad])))[0]
    print(f"write: missing REQUIRED field -> error.code={r.error.code} message={r.error.message!r} "
          f"row_errors={[(e.index, e.code.name, e.message) for e in r.row_errors]}")

    # PENDING stream: create, append with offsets, finalize, batch-commit
    ws = client.create_write_stream(parent=parent, write_stream=types.WriteStream(type_=types.WriteStream.Type.PENDING))
    responses = list(client.append_rows(iter([req(ws.name, [30, 31], offset=0), req("", [32], offset=2, with_schema=False)])))
    offs = [r.append_result.offset for r in responses]
    assert all(not r.error.code for r in responses), responses
    dup = list(client.append_rows(iter([req(ws.name, [33], offset=0)])))[0]
    fin = client.finalize_write_stream(name=ws.name)
    com = client.batch_commit_write_streams(
        request=types.BatchCommitWriteStreamsRequest(parent=parent, write_streams=[ws.name]))
    assert not com.stream_errors, com
    print(f"write: PENDING stream {ws.name.rsplit('/', 1)[1]} offsets={offs} "
          f"duplicate-offset error={dup.error.code}:{dup.error.message!r} finalize row_count={fin.row_count} committed")

    # verify through REST
    st, out = call("POST", "/queries", {
        "query": f"SELECT id, name, ts, tags, addr, items FROM `{dataset}.{table}` WHERE id >= 20 ORDER BY id",
        "useLegacySql": False})
    got = [int(r["f"][0]["v"]) for r in out["rows"]]
    assert got == [20, 21, 22, 30, 31, 32], got
    print(f"write: rows visible via jobs.query: ids={got}; row 20 = {json.dumps(out['rows'][0])}")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("rest_port", type=int)
    ap.add_argument("grpc_port", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--project", default="test")
    ap.add_argument("--verbose", action="store_true")
    ARGS = ap.parse_args()
    suffix = uuid.uuid4().hex[:8]
    ok = True
    t0 = time.monotonic()
    for name, fn, args, required in (
        ("rest", rest, (f"ds_{suffix}", "t1"), True),
        ("quirks", quirks, (f"ds_{suffix}", "t1"), False),
        ("client", client_check, (f"ds_{suffix}", "t1"), True),
        ("write", write_check, (f"ds_{suffix}", "t1"), True),
    ):
        try:
            fn(*args)
        except Exception as e:  # report and go on so one run shows everything
            print(f"{name}: FAILED: {type(e).__name__}: {e}")
            ok = ok and not required
    print(f"elapsed {time.monotonic() - t0:.2f}s")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
