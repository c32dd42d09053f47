"""Independent checker of what ferry wrote to BigQuery (the local-bigquery emulator).

Reads the table with Google's own Python client (google-cloud-bigquery) and decodes the
source data with fastavro, so none of ferry's code is on the checking side. Run it with
the emulator venv's python (tests/bigquery-emulator/install.sh installs both):

    python check.py --rest http://127.0.0.1:P --project test SUBCOMMAND ...

  count --table D.T
      Prints the table's row count (SELECT COUNT(*)).
  ztf --table D.T --alerts DIR [--expect-duplicates-at-most N]
      Every alert in DIR/*.avro (ZTF alert container files) must be in the table,
      keyed by candid: objectId, candid, candidate.jd, candidate.magpsf,
      len(prv_candidates) (null counts as 0) and the byte lengths of the three
      cutouts' stampData. The row count must be exact, or with the option at most N
      rows more than there are alerts (each extra one a correct copy of an alert).
  raw --table D.T --expect FILE [--allow-duplicates]
      FILE has one JSON object per line: {"topic", "partition", "offset",
      "value_sha256" (hex; null for a null value), "key_b64" (null for a null key)} and
      optionally "timestamp_ms" and "headers" ([[key, value_b64 or null], ...]), checked
      only when present. The table (topic, partition, offset, timestamp, key BYTES,
      value BYTES, headers REPEATED RECORD<key STRING, value BYTES>) must hold each
      (topic, partition, offset) once, and nothing else. With --allow-duplicates, extra
      correct copies are counted (and printed as duplicates=N) instead of failing.

Exit status: 0 all matched (prints "OK <n> rows"), 1 mismatches (one line each),
2 the check itself could not run (bad arguments, emulator unreachable, ...).

Emulator quirk handled here: local-bigquery 0.4.0 base64-decodes BYTES only in top-level
columns on insertAll (and on Storage Write, which goes through the same code). BYTES
inside a RECORD, or in a REPEATED column, are stored as the base64 text itself, so they
read back base64-encoded once more. `nested_bytes_wrapped` probes for this once and, only
if the emulator does it, undoes exactly that one extra layer (strict base64) for nested
BYTES. Against a BigQuery that stores them correctly, nothing is unwrapped.
"""

import argparse
import base64
import binascii
import datetime
import glob
import hashlib
import json
import os
import struct
import sys
import uuid
from collections import Counter

import fastavro
from google.api_core.exceptions import GoogleAPIError
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

PROBE_DATASET = "ferry_check_probe"
# Give up on an unreachable or failing emulator within this long (the client's own
# default keeps retrying for 10 minutes).
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
RETRY = bigquery.DEFAULT_RETRY.with_deadline(30.0)


class CheckError(Exception):
    """The check could not run (as opposed to: the data does not match)."""


def client_for(args):
    return bigquery.Client(
        project=args.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": args.rest},
    )


def table_id(args):
    parts = args.table.split(".")
    if len(parts) == 2:
        return f"{args.project}.{args.table}"
    if len(parts) == 3:
        return args.table
    raise CheckError(f"--table must be DATASET.TABLE, got {args.table!r}")


def nested_bytes_wrapped(client, project):
    """Whether BYTES inside a RECORD read back as the base64 text of what was sent."""
    client.create_dataset(f"{project}.{PROBE_DATASET}", exists_ok=True, retry=RETRY)
    probe = f"{project}.{PROBE_DATASET}.probe_{uuid.uuid4().hex}"
    schema = [
        bigquery.SchemaField(
            "r", "RECORD", fields=[bigquery.SchemaField("b", "BYTES")]
        )
    ]
    client.create_table(bigquery.Table(probe, schema=schema), retry=RETRY)
    try:
        sent = b"\x00\xff\x10"
        errors = client.insert_rows_json(
            probe, [{"r": {"b": base64.b64encode(sent).decode()}}], retry=RETRY
        )
        if errors:
            raise CheckError(f"probe insert failed: {errors}")
        got = [row["r"]["b"] for row in client.list_rows(probe, retry=RETRY)]
    finally:
        client.delete_table(probe, not_found_ok=True, retry=RETRY)
    if got == [sent]:
        return False
    if got == [base64.b64encode(sent)]:
        return True
    raise CheckError(f"probe: nested BYTES sent {sent!r}, read back {got!r}")


def unwrap(value, wrapped):
    """Nested BYTES as the bytes that were written (see the module's note)."""
    if value is None or not wrapped:
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        # Not base64 text: cannot be a correctly written value; keep it, so the
        # comparison reports it.
        return value


def list_rows(client, table, columns):
    """All rows, only the given top-level columns (those the table has)."""
    schema = client.get_table(table, retry=RETRY).schema
    names = {f.name for f in schema}
    missing = [c for c in columns if c not in names]
    if missing:
        raise CheckError(
            f"{table} has no column(s) {missing}; it has {sorted(names)}"
        )
    selected = [f for f in schema if f.name in columns]
    return list(client.list_rows(table, selected_fields=selected, retry=RETRY))


def f32(x):
    """A float as Avro `float` holds it (ferry may widen it exactly or via its decimal text)."""
    return None if x is None else struct.unpack("<f", struct.pack("<f", x))[0]


def ok_or_fail(problems, rows, extra_lines=()):
    for line in extra_lines:
        print(line)
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"OK {rows} rows")
    return 0


def cmd_count(client, args):
    table = table_id(args)
    rows = list(
        client.query_and_wait(
            f"SELECT COUNT(*) AS n FROM `{table}`", retry=RETRY, job_retry=None
        )
    )
    print(rows[0]["n"])
    return 0


CUTOUTS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


def stamp_len(cutout):
    """Byte length of a cutout's stampData; None when the cutout (or its data) is absent."""
    if cutout is None or cutout.get("stampData") is None:
        return None
    return len(cutout["stampData"])


def alert_facts(alert):
    cand = alert.get("candidate") or {}
    return {
        "objectId": alert.get("objectId"),
        "candid": alert.get("candid"),
        "candidate.jd": cand.get("jd"),
        "candidate.magpsf": f32(cand.get("magpsf")),
        "len(prv_candidates)": len(alert.get("prv_candidates") or []),
        **{f"{c}.stampData bytes": stamp_len(alert.get(c)) for c in CUTOUTS},
    }


def row_facts(row, wrapped):
    cand = row["candidate"] or {}
    cutouts = {}
    for c in CUTOUTS:
        cut = row[c]
        if cut is not None:
            cut = dict(cut)
            cut["stampData"] = unwrap(cut.get("stampData"), wrapped)
        cutouts[f"{c}.stampData bytes"] = stamp_len(cut)
    return {
        "objectId": row["objectId"],
        "candid": row["candid"],
        "candidate.jd": cand.get("jd"),
        "candidate.magpsf": f32(cand.get("magpsf")),
        "len(prv_candidates)": len(row["prv_candidates"] or []),
        **cutouts,
    }


def read_alerts(directory):
    files = sorted(glob.glob(os.path.join(directory, "*.avro")))
    if not files:
        raise CheckError(f"no *.avro files in {directory}")
    alerts = {}
    for path in files:
        with open(path, "rb") as f:
            for alert in fastavro.reader(f):
                facts = alert_facts(alert)
                if facts["candid"] in alerts:
                    raise CheckError(
                        f"candid {facts['candid']} is in more than one alert ({path})"
                    )
                alerts[facts["candid"]] = facts
    return alerts


def cmd_ztf(client, args):
    table = table_id(args)
    expected = read_alerts(args.alerts)
    wrapped = nested_bytes_wrapped(client, args.project)
    columns = ["objectId", "candid", "candidate", "prv_candidates", *CUTOUTS]
    rows = list_rows(client, table, columns)
    problems = []
    seen = Counter()
    for row in rows:
        got = row_facts(row, wrapped)
        candid = got["candid"]
        seen[candid] += 1
        want = expected.get(candid)
        if want is None:
            problems.append(f"unexpected row: candid {candid} objectId {got['objectId']}")
            continue
        for key, value in want.items():
            if got[key] != value:
                problems.append(
                    f"candid {candid}: {key} is {got[key]!r}, expected {value!r}"
                )
    for candid in expected:
        if seen[candid] == 0:
            problems.append(f"missing: candid {candid} ({expected[candid]['objectId']})")
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    allowed = args.expect_duplicates_at_most
    extra = []
    if allowed is None:
        if len(rows) != len(expected):
            problems.append(f"row count is {len(rows)}, expected {len(expected)}")
        for candid, n in sorted(seen.items()):
            if n > 1:
                problems.append(f"candid {candid} is in {n} rows")
    else:
        extra.append(f"duplicates={duplicates}")
        if duplicates > allowed:
            problems.append(f"{duplicates} duplicate rows, at most {allowed} allowed")
    return ok_or_fail(problems, len(rows), extra)


def sha256_hex(value):
    return None if value is None else hashlib.sha256(value).hexdigest()


def b64(value):
    return None if value is None else base64.b64encode(value).decode()


def micros(ts):
    """A TIMESTAMP (the client gives an aware datetime) as integer microseconds."""
    if ts is None:
        return None
    return (ts - EPOCH) // datetime.timedelta(microseconds=1)


def read_expectations(path):
    expected = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                key = (e["topic"], int(e["partition"]), int(e["offset"]))
                for required in ("value_sha256", "key_b64"):  # null allowed, absent not
                    if required not in e:
                        raise KeyError(required)
            except (ValueError, KeyError, TypeError) as err:
                raise CheckError(f"{path}:{n}: bad expectation line: {err}") from err
            if key in expected:
                raise CheckError(f"{path}:{n}: {key} is expected twice")
            expected[key] = e
    return expected


def cmd_raw(client, args):
    table = table_id(args)
    expected = read_expectations(args.expect)
    columns = ["topic", "partition", "offset", "timestamp", "key", "value", "headers"]
    rows = list_rows(client, table, columns)
    wrapped = None
    problems = []
    seen = Counter()
    for row in rows:
        key = (row["topic"], row["partition"], row["offset"])
        where = f"{key[0]}/{key[1]}@{key[2]}"
        seen[key] += 1
        want = expected.get(key)
        if want is None:
            problems.append(f"unexpected row: {where}")
            continue
        if sha256_hex(row["value"]) != want["value_sha256"]:
            problems.append(
                f"{where}: value sha256 {sha256_hex(row['value'])}, expected {want['value_sha256']}"
            )
        if b64(row["key"]) != want["key_b64"]:
            problems.append(f"{where}: key (base64) {b64(row['key'])!r}, expected {want['key_b64']!r}")
        if "timestamp_ms" in want:
            got_us = micros(row["timestamp"])
            want_us = None if want["timestamp_ms"] is None else want["timestamp_ms"] * 1000
            if got_us != want_us:
                problems.append(
                    f"{where}: timestamp {got_us} us, expected {want_us} us"
                )
        if "headers" in want:
            if wrapped is None:
                wrapped = nested_bytes_wrapped(client, args.project)
            got_headers = [
                [h["key"], b64(unwrap(h["value"], wrapped))] for h in row["headers"] or []
            ]
            if got_headers != want["headers"]:
                problems.append(f"{where}: headers {got_headers}, expected {want['headers']}")
    for key in expected:
        if seen[key] == 0:
            problems.append(f"missing: {key[0]}/{key[1]}@{key[2]}")
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    extra = []
    if args.allow_duplicates:
        extra.append(f"duplicates={duplicates}")
    else:
        for key, n in sorted(seen.items()):
            if n > 1:
                problems.append(f"{key[0]}/{key[1]}@{key[2]} is in {n} rows")
    return ok_or_fail(problems, len(rows), extra)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rest", required=True, help="emulator REST base, http://127.0.0.1:P")
    p.add_argument("--project", required=True)
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("count", help="print the table's row count")
    c.add_argument("--table", required=True, help="DATASET.TABLE")

    z = sub.add_parser("ztf", help="compare the table with ZTF alert files")
    z.add_argument("--table", required=True, help="DATASET.TABLE")
    z.add_argument("--alerts", required=True, help="directory of *.avro alerts")
    z.add_argument("--expect-duplicates-at-most", type=int, metavar="N")

    r = sub.add_parser("raw", help="compare a raw (record-as-bytes) table with expectations")
    r.add_argument("--table", required=True, help="DATASET.TABLE")
    r.add_argument("--expect", required=True, help="JSON lines file")
    r.add_argument("--allow-duplicates", action="store_true")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)

    commands = {"count": cmd_count, "ztf": cmd_ztf, "raw": cmd_raw}
    try:
        return commands[args.command](client_for(args), args)
    except CheckError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    except GoogleAPIError as e:
        print(f"ERROR: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - any failure to check is exit 2, not "mismatch"
        import traceback

        traceback.print_exc()
        print(f"ERROR: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
