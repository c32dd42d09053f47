"""Writes records in Confluent's Avro wire format, independently of ferry: fastavro encodes
each datum, then the frame is a zero byte and the schema's registry id (4 bytes,
big-endian), as Confluent's KafkaAvroSerializer writes it.

    python confluent_frame.py SCHEMA.json ID RECORDS.jsonl OUT_DIR

writes OUT_DIR/000000.bin, 000001.bin, … one file per line of RECORDS.jsonl (a JSON object
per line: plain values, a union's branch chosen by fastavro).
"""

import io
import json
import os
import struct
import sys

import fastavro


def main(argv):
    schema_path, schema_id, records_path, out_dir = argv
    schema = fastavro.parse_schema(json.load(open(schema_path)))
    os.makedirs(out_dir, exist_ok=True)
    with open(records_path) as f:
        for n, line in enumerate(l for l in f if l.strip()):
            body = io.BytesIO()
            fastavro.schemaless_writer(body, schema, json.loads(line))
            frame = b"\x00" + struct.pack(">i", int(schema_id)) + body.getvalue()
            with open(os.path.join(out_dir, f"{n:06d}.bin"), "wb") as out:
                out.write(frame)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
