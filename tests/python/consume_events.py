"""Reads pagesplit events back with the Confluent Python client and its Avro deserializer.

Reads COUNT records of TOPIC from the beginning of every partition, decodes each value through
the schema registry (confluent_kafka.schema_registry.avro.AvroDeserializer: writer schema
fetched by the id in the record) and prints one JSON object per record:

    {"topic": ..., "partition": ..., "offset": ..., "key": "<text>", "schema_id": ...,
     "headers": {"<name>": "<text>", ...}, "value": {...}}

Decimals are printed as strings (str(Decimal)), timestamps as epoch milliseconds. Exits 1 when
fewer than COUNT records arrive before the timeout.

Usage: consume_events.py --bootstrap HOST:PORT --registry URL --topic TOPIC --count N
                         [--timeout SECONDS]
"""

import argparse
import datetime
import decimal
import json
import struct
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain(value):
    """A decoded Avro value as plain JSON: exact decimal strings, epoch-millisecond times."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        delta = value - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if isinstance(value, dict):
        return {name: plain(item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def partitions_of(consumer, topic, timeout):
    metadata = consumer.list_topics(topic, timeout=timeout)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        raise SystemExit(f"topic {topic} not found: {described.error if described else 'no metadata'}")
    return sorted(described.partitions)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--registry", required=True, help="base URL of the Confluent-compatible registry API")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", required=True, type=int)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for COUNT records")
    args = parser.parse_args()

    registry = SchemaRegistryClient({"url": args.registry})
    deserialize = AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"pagesplit-python-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = partitions_of(consumer, args.topic, args.timeout)
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + args.timeout
        printed = 0
        while printed < args.count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                print(f"read {printed} of {args.count} records of {args.topic} before the timeout", file=sys.stderr)
                return 1
            message = consumer.poll(min(remaining, 1.0))
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            raw = message.value()
            context = SerializationContext(message.topic(), MessageField.VALUE, message.headers())
            value = deserialize(raw, context)
            schema_id = struct.unpack(">bI", raw[:5])[1] if raw and raw[0] == 0 and len(raw) >= 5 else None
            key = message.key()
            headers = {}
            for name, header in message.headers() or []:
                if name in headers:
                    raise SystemExit(f"header {name} twice at offset {message.offset()}")
                headers[name] = header.decode("utf-8") if header is not None else None
            record = {
                "topic": message.topic(),
                "partition": message.partition(),
                "offset": message.offset(),
                "key": key.decode("utf-8") if key is not None else None,
                "schema_id": schema_id,
                "headers": headers,
                "value": plain(value),
            }
            print(json.dumps(record, ensure_ascii=False, sort_keys=True), flush=True)
            printed += 1
        return 0
    finally:
        consumer.close()


if __name__ == "__main__":
    sys.exit(main())
