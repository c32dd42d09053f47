"""AliECS events for ferry's protocol buffer converter tests, made and checked with
Google's Python `protobuf` package — an encoder and decoder independent of ferry's.

Run with the BigQuery emulator venv's python (it has protobuf and google-cloud-bigquery):

    python events.py encode --descriptor FILE --out DIR
        Writes events.Event messages (plain proto.Marshal bytes, no framing) as
        DIR/<topic>/<n>.bin, for the topics AliECS publishes on: aliecs.environment,
        aliecs.task, aliecs.run, aliecs.call, aliecs.integrated_service.dcs, aliecs.core.
        Every event's timestampNano is unique. Prints "OK <n> events".

    python events.py check --rest URL --project P --table D.T --descriptor FILE --events DIR
        Every event under DIR (a topic's directory, or all of them) must be one row of the table (keyed by timestampNano), each
        column equal to what protobuf decodes from the event's bytes: scalars, enum names,
        nested messages (null when unset), the oneof's one set member (the others null),
        maps as REPEATED RECORD<key, value> sorted by key, and no extra rows.
        Prints "OK <n> rows"; exit 1 on mismatches (one line each), 2 if it cannot run.

    python events.py pubsub --descriptor FILE --events DIR --pulled FILE
        FILE holds the messages pulled from Pub/Sub (a JSON list of {"data": hex,
        "attributes": {…}}), published from the events after Flatten$Value (delimiter `_`),
        without environmentEvent_vars and with messageBodyName=timestampNano. Every event
        must be one message, as Google's connector maps a struct: the data is timestampNano
        as 8 big-endian bytes, every other set field an attribute with its Java text
        (decimal numbers, true/false, enum names; unset message fields and fields without
        a value left out), and no other message. Prints "OK <n> messages"; exit 1 on
        mismatches (one line each).
"""

import argparse
import glob
import os
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor

BASE_NS = 1_733_400_000_000_000_000


def event_class(descriptor_file):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_file, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("events.Event"))


def events():
    """(topic, event as protobuf JSON) pairs: every payload kind AliECS sends."""
    out = []
    n = 0

    def ev(topic, payload):
        nonlocal n
        n += 1
        ns = BASE_NS + n * 1_000_003
        out.append((topic, dict({"timestamp": str(ns // 1_000_000), "timestampNano": str(ns)}, **payload)))

    for i in range(4):
        ev("aliecs.environment", {"environmentEvent": {
            "environmentId": f"2oDvieFrVTi{i}",
            "state": ["STANDBY", "CONFIGURED", "RUNNING", "ERROR"][i],
            "runNumber": 550000 + i if i == 2 else 0,
            "transition": "CONFIGURE",
            "transitionStep": "tasks.deploy",
            "transitionStatus": ["STARTED", "ONGOING", "DONE_OK", "DONE_ERROR"][i],
            "error": "task failed: readout" if i == 3 else "",
            "vars": {"detectors": "[\"ITS\",\"TPC\"]", "run_type": "PHYSICS", "n": str(i)},
            **({"lastRequestUser": {"externalId": 812345, "name": "anonymous"}} if i % 2 == 0 else {}),
            **({"workflowTemplateInfo": {"name": "readout-dataflow", "path": "/o2/control-workflows",
                                          "public": i == 0}} if i < 2 else {}),
        }})
    for i in range(5):
        ev("aliecs.task", {"taskEvent": {
            "name": f"readout#{i}",
            "taskid": f"2oDvkGMM{i}",
            "state": "RUNNING",
            "status": "ACTIVE",
            "hostname": f"flp{100 + i}.cern.ch",
            "className": "o2-control-workflows/readout",
            **({"traits": {"trigger": "CONFIGURE", "timeout": "10s", "critical": True}} if i != 1 else {}),
            "environmentId": "2oDvieFrVTi2",
            "path": "readout-dataflow.readout",
        }})
    for i in range(3):
        ev("aliecs.run", {"runEvent": {
            "environmentId": "2oDvieFrVTi2",
            "runNumber": 550000 + i,
            "state": "RUNNING",
            "transition": "START_ACTIVITY",
            "transitionStatus": "DONE_OK",
            **({"lastRequestUser": {"id": 7, "name": "shifter"}} if i == 0 else {}),
        }})
    for i in range(3):
        ev("aliecs.call", {"callEvent": {
            "func": "odc.Configure()",
            "callStatus": ["STARTED", "DONE_OK", "DONE_TIMEOUT"][i],
            "return": "" if i == 0 else "ok",
            "traits": {"trigger": "before_CONFIGURE", "await": "after_CONFIGURE", "critical": i == 2},
            "environmentId": "2oDvieFrVTi1",
            "path": "readout-dataflow.odc",
        }})
    for i in range(2):
        ev("aliecs.integrated_service.dcs", {"integratedServiceEvent": {
            "name": "readout-dataflow.dcs.sor",
            "operationName": "dcs.StartOfRun()",
            "operationStatus": "ONGOING",
            "operationStep": "perform DCS call: StartOfRun",
            "operationStepStatus": ["STARTED", "DONE_OK"][i],
            "environmentId": "2oDvieFrVTi2",
            "payload": "{\"detectors\":[\"ITS\"],\"state\":\"SOR_PROGRESSING\"}",
        }})
    ev("aliecs.core", {"coreStartEvent": {"frameworkId": "a1b2c3-0001"}})
    ev("aliecs.core", {"frameworkEvent": {"frameworkId": "a1b2c3-0001", "message": "re-registered"}})
    ev("aliecs.core", {"mesosHeartbeatEvent": {}})
    ev("aliecs.core", {"beamModeEvent": {"timestamp": "1733400123456", "beamInfo": {
        "stableBeamsStart": "1733400000000", "fillNumber": 9876,
        "fillingSchemeName": "25ns_2460b_2448_2089_2227_144bpi_20inj",
        "beamType": "PROTON-PROTON", "beamMode": "STABLE_BEAMS"}}})
    return out


def encode(args):
    cls = event_class(args.descriptor)
    count = 0
    for topic, spec in events():
        msg = json_format.ParseDict(spec, cls())
        d = os.path.join(args.out, topic)
        os.makedirs(d, exist_ok=True)
        n = len(os.listdir(d))
        with open(os.path.join(d, f"{n:03d}.bin"), "wb") as f:
            f.write(msg.SerializeToString())
        count += 1
    print(f"OK {count} events")
    return 0


def expected(msg):
    """The message as ferry's mapping promises it, computed from protobuf's own reading."""
    out = {}
    for f in msg.DESCRIPTOR.fields:
        value = getattr(msg, f.name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            vf = f.message_type.fields_by_name["value"]
            out[f.name] = [{"key": k, "value": scalar(vf, value[k])} for k in sorted(value)]
        elif repeated(f):
            out[f.name] = [scalar(f, v) for v in value]
        elif f.message_type is not None:
            if not f.message_type.fields:
                continue  # an empty message holds no value, and has no column
            out[f.name] = expected(value) if msg.HasField(f.name) else None
        elif f.has_presence and not msg.HasField(f.name):
            out[f.name] = None
        else:
            out[f.name] = scalar(f, value)
    return out


def repeated(f):
    # `is_repeated` in newer protobuf releases, `label` in older ones.
    if hasattr(f, "is_repeated"):
        return f.is_repeated
    return f.label == FieldDescriptor.LABEL_REPEATED


def scalar(f, v):
    if f.type == FieldDescriptor.TYPE_ENUM:
        known = f.enum_type.values_by_number.get(v)
        return known.name if known else str(v)
    if f.message_type is not None:
        return expected(v)
    return v


def check(args):
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    cls = event_class(args.descriptor)
    want = {}
    for path in sorted(glob.glob(os.path.join(args.events, "**", "*.bin"), recursive=True)):
        with open(path, "rb") as f:
            msg = cls.FromString(f.read())
        want[msg.timestampNano] = (path, expected(msg))
    client = bigquery.Client(project=args.project, credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": args.rest})
    table = f"{args.project}.{args.table}"
    try:
        rows = [dict(r.items()) for r in client.list_rows(table)]
    except GoogleAPIError as e:
        print(f"cannot read {table}: {e}", file=sys.stderr)
        return 2
    problems = []
    seen = set()
    for row in rows:
        key = int(row.get("timestampNano"))
        if key in seen:
            problems.append(f"timestampNano {key}: more than one row")
            continue
        seen.add(key)
        if key not in want:
            problems.append(f"timestampNano {key}: a row for no event")
            continue
        path, exp = want[key]
        got = normalise(row)
        if got != exp:
            problems.append(f"{path}: row {got!r} != protobuf's {exp!r}")
    for key, (path, _) in want.items():
        if key not in seen:
            problems.append(f"{path}: no row (timestampNano {key})")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"OK {len(rows)} rows")
    return 0


def attributes(msg, prefix=""):
    """A message's flattened fields as Google's connector makes attributes of them."""
    out = {}
    for f in msg.DESCRIPTOR.fields:
        name = f"{prefix}{f.name}"
        value = getattr(msg, f.name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            continue  # environmentEvent_vars, dropped by ReplaceField before the sink
        if f.message_type is not None:
            if msg.HasField(f.name):
                out.update(attributes(value, f"{name}_"))
        elif f.has_presence and not msg.HasField(f.name):
            continue
        elif f.type == FieldDescriptor.TYPE_BOOL:
            out[name] = "true" if value else "false"
        else:
            out[name] = str(scalar(f, value))
    return out


def pubsub(args):
    import json
    import struct

    cls = event_class(args.descriptor)
    want = {}
    for path in sorted(glob.glob(os.path.join(args.events, "**", "*.bin"), recursive=True)):
        with open(path, "rb") as f:
            msg = cls.FromString(f.read())
        attrs = attributes(msg)
        del attrs["timestampNano"]
        want[struct.pack(">q", msg.timestampNano)] = (path, attrs)
    with open(args.pulled) as f:
        pulled = json.load(f)
    problems = []
    seen = set()
    for m in pulled:
        data = bytes.fromhex(m["data"])
        if data in seen:
            problems.append(f"data {data.hex()}: more than one message")
            continue
        seen.add(data)
        if data not in want:
            problems.append(f"data {data.hex()}: a message for no event")
            continue
        path, exp = want[data]
        if m["attributes"] != exp:
            problems.append(f"{path}: attributes {m['attributes']!r} != protobuf's {exp!r}")
    for data, (path, _) in want.items():
        if data not in seen:
            problems.append(f"{path}: no message")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"OK {len(pulled)} messages")
    return 0


def normalise(value):
    """A BigQuery row as plain Python: records as dicts, REPEATED as lists, INT64 as int."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode")
    e.add_argument("--descriptor", required=True)
    e.add_argument("--out", required=True)
    c = sub.add_parser("check")
    for a in ("--rest", "--project", "--table", "--descriptor", "--events"):
        c.add_argument(a, required=True)
    ps = sub.add_parser("pubsub")
    for a in ("--descriptor", "--events", "--pulled"):
        ps.add_argument(a, required=True)
    args = p.parse_args()
    return {"encode": encode, "check": check, "pubsub": pubsub}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
