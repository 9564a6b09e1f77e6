"""Drives a chronik broker's transactions with librdkafka's transactional
producer (confluent-kafka-python, Debian's python3-confluent-kafka):
consume-transform-produce from one topic to another with the group's
offsets sent in each transaction, one round aborted and read again; a
read_committed consumer (librdkafka's default) must read each input once
in the output, and the group's committed offsets must be at the end.

Usage: librdkafka_txn.py HOST:PORT TOPIC GROUP
Prints "ok", or exits non-zero with a message on any failure."""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

addr, topic, group = sys.argv[1:4]
src, dst = topic + "-in", topic + "-out"

admin = AdminClient({"bootstrap.servers": addr})
for f in admin.create_topics([NewTopic(src, 2, 1), NewTopic(dst, 2, 1)]).values():
    f.result(timeout=10)

plain = Producer({"bootstrap.servers": addr, "enable.idempotence": True})
for i in range(30):
    plain.produce(src, value=b"r%02d" % i, partition=i % 2)
if plain.flush(10) != 0:
    sys.exit("the input records were not all delivered")

consumer = Consumer({"bootstrap.servers": addr, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "isolation.level": "read_committed"})
consumer.subscribe([src])
producer = Producer({"bootstrap.servers": addr, "transactional.id": "librdkafka-" + topic})
producer.init_transactions(10)

done, rounds, deadline = 0, 0, time.time() + 30
while done < 30:
    if time.time() > deadline:
        sys.exit("transformed %d of 30 records in 30 s" % done)
    msgs = consumer.consume(num_messages=10, timeout=1)
    msgs = [m for m in msgs if m.error() is None]
    if not msgs:
        continue
    producer.begin_transaction()
    abort = rounds == 0
    for m in msgs:
        producer.produce(dst, value=(b"aborted-" if abort else b"") + m.value().upper(), partition=m.partition())
    positions = consumer.position(consumer.assignment())
    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 10)
    if abort:
        # Delivered first: an abort would drop records still queued.
        if producer.flush(10) != 0:
            sys.exit("the aborted round's records were not delivered")
        producer.abort_transaction(10)
        # Read the round again from the committed offsets.
        committed = consumer.committed(consumer.assignment(), timeout=10)
        for tp in committed:
            consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))
    else:
        producer.commit_transaction(10)
        done += len(msgs)
    rounds += 1

committed = consumer.committed([TopicPartition(src, 0), TopicPartition(src, 1)], timeout=10)
if sorted(tp.offset for tp in committed) != [15, 15]:
    sys.exit("committed offsets %s, want 15 and 15" % committed)
consumer.close()

reader = Consumer({"bootstrap.servers": addr, "group.id": group + "-reader", "auto.offset.reset": "earliest"})
reader.subscribe([dst])
got, deadline = [], time.time() + 10
while time.time() < deadline and len(got) < 30:
    for m in reader.consume(num_messages=100, timeout=0.5):
        if m.error() is None:
            got.append(m.value())
for m in reader.consume(num_messages=100, timeout=0.5):  # nothing more may come
    if m.error() is None:
        got.append(m.value())
reader.close()
want = sorted(b"R%02d" % i for i in range(30))
if sorted(got) != want:
    sys.exit("read_committed read %s, want %s" % (sorted(got), want))
print("ok")
