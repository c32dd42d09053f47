"""OpenMSIStream's own uploader, driven by tests/openmsistream.rs.

usage:
  upload.py CONFIG TOPIC ROOT CHUNK_SIZE FILE [FILE...]       every chunk of each file
  upload.py --chunks A-B CONFIG TOPIC ROOT CHUNK_SIZE FILE     chunks A..B (1-based) only
  upload.py --bad CONFIG TOPIC                                 a corrupted chunk and a path escape

Files are uploaded with UploadDataFile(rootdir=ROOT), as DataFileUploadDirectory does, so a
file's subdirectory under ROOT travels with its chunks.
"""

import pathlib
import sys
from hashlib import sha512
from queue import Queue

from confluent_kafka import Producer
from openmsistream import UploadDataFile
from openmsistream.data_file_io.entity.data_file_chunk import DataFileChunk
from openmsistream.kafka_wrapper import ConsumerAndProducerGroup
from openmsistream.kafka_wrapper.serialization import DataFileChunkSerializer


def upload(config, topic, root, chunk_size, path, chunks=None):
    udf = UploadDataFile(pathlib.Path(path).resolve(), rootdir=pathlib.Path(root).resolve())
    if chunks is None:
        udf.upload_whole_file(config, topic, n_threads=2, chunk_size=chunk_size)
        return
    udf.add_chunks_to_upload(chunks_to_add=chunks, chunk_size=chunk_size)
    queue = Queue()
    udf.enqueue_chunks_for_upload(queue, chunk_size=chunk_size)
    queue.put(None)
    group = ConsumerAndProducerGroup(config, logger=udf.logger)
    producer = group.get_new_producer()
    producer.produce_from_queue_looped(queue, topic)
    producer.flush(timeout=-1)
    producer.close()
    group.close()


def bad(config, topic):
    """Two records OpenMSIStream's serializer writes but a downloader must refuse."""
    import configparser, os

    cp = configparser.ConfigParser()
    cp.read(config)
    servers = os.path.expandvars(cp["broker"]["bootstrap.servers"])
    producer = Producer({"bootstrap.servers": servers})
    ser = DataFileChunkSerializer()
    data = b"chunk data that will not match its hash"
    digest = sha512(data).digest()
    # 1. A corrupted chunk: the data's bytes changed after hashing.
    c = DataFileChunk(pathlib.Path("corrupt.bin"), "corrupt.bin", digest, digest,
                      None, 0, len(data), 1, 1, data=data)
    value = bytearray(ser(c))
    at = bytes(value).find(data)
    value[at] ^= 0xFF
    producer.produce(topic, key=c.msg_key, value=bytes(value))
    # 2. A path that climbs out of the download directory.
    e = DataFileChunk(pathlib.Path("../../escaped.txt"), "escaped.txt", digest, digest,
                      None, 0, len(data), 1, 1, data=data)
    producer.produce(topic, key=e.msg_key, value=ser(e))
    producer.flush(30)


def main(argv):
    if argv[0] == "--bad":
        bad(argv[1], argv[2])
        return
    chunks = None
    if argv[0] == "--chunks":
        a, b = argv[1].split("-")
        chunks = list(range(int(a), int(b) + 1))
        argv = argv[2:]
    config, topic, root, chunk_size, *files = argv
    for f in files:
        upload(config, topic, root, int(chunk_size), f, chunks)


if __name__ == "__main__":
    main(sys.argv[1:])
