"""Reads heartbeat and log topics as OpenMSIStream's own tests do (its test base classes'
get_heartbeat_messages / get_log_messages): an OpenMSIStreamConsumer made from a config
file, subscribed with message_key_regex `<program_id>_heartbeat` or `<program_id>_log`.

usage: read_beats.py CONFIG TOPIC KIND PROGRAM_ID=EXPECTED [PROGRAM_ID=EXPECTED...]

KIND is `heartbeat` or `log`. Reads each program's messages until EXPECTED of them (the
number of its records kcat saw) are in, or 30 s pass without a new one; decodes each value as OpenMSIStream's
tests do (json.loads; a heartbeat's timestamp by datetime.fromisoformat, a log's by float)
and prints one JSON object per program: how many, the value's fields with their JSON types,
the heartbeat counts' sums and every log line.
"""

import datetime
import json
import re
import sys
import time

from openmsistream.kafka_wrapper import OpenMSIStreamConsumer
from openmsitoolbox.logging import OpenMSILogger

WAIT_SECS = 30


def read(logger, config, topic, kind, expected, program_id):
    c_args, c_kwargs = OpenMSIStreamConsumer.get_consumer_args_kwargs(
        config, logger=logger, max_wait_per_decrypt=1
    )
    consumer = OpenMSIStreamConsumer(
        *c_args,
        **c_kwargs,
        message_key_regex=re.compile(f"{program_id}_{kind}"),
        filter_new_message_keys=True,
    )
    consumer.subscribe([topic])
    msgs = []
    last = time.monotonic()
    while len(msgs) < expected and time.monotonic() - last < WAIT_SECS:
        msg = consumer.get_next_message(1)
        if msg is not None:
            msgs.append(msg)
            last = time.monotonic()
    consumer.close()
    return msgs


def summary(kind, program_id, msgs):
    out = {"program_id": program_id, "n": len(msgs), "keys": sorted({m.key() for m in msgs})}
    fields = {}
    sums = {}
    lines = []
    for m in msgs:
        value = json.loads(m.value())
        for k, v in value.items():
            fields.setdefault(k, set()).add(type(v).__name__)
        if kind == "heartbeat":
            ts = datetime.datetime.fromisoformat(value["timestamp"])
            assert ts.utcoffset() == datetime.timedelta(0), value["timestamp"]
            for k in ("n_messages_read", "n_messages_processed", "n_bytes_read", "n_bytes_processed"):
                sums[k] = sums.get(k, 0) + value[k]
        else:
            float(value["timestamp"])
            lines.extend(value["messages"])
    out["fields"] = {k: sorted(v) for k, v in sorted(fields.items())}
    out["sums"] = sums
    out["lines"] = lines
    return out


def main(argv):
    config, topic, kind, *programs = argv
    logger = OpenMSILogger("read_beats")
    for arg in programs:
        program_id, expected = arg.rsplit("=", 1)
        msgs = read(logger, config, topic, kind, int(expected), program_id)
        print(json.dumps(summary(kind, program_id, msgs)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
