"""Drives a chronik broker with kafka-python 2.0 (an old client that picks
its API versions from ApiVersions): metadata, produce with acks=all, a
group consumer that commits, and the committed offset read back.

Usage: kafka_python.py HOST:PORT TOPIC GROUP
Exits non-zero with a message on any failure."""

import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

addr, topic, group = sys.argv[1:4]

admin = KafkaAdminClient(bootstrap_servers=addr, client_id="kafka-python-admin")
admin.create_topics([NewTopic(name=topic, num_partitions=2, replication_factor=1)])
if topic not in admin.list_topics():
    sys.exit("created topic %s is not listed" % topic)

producer = KafkaProducer(bootstrap_servers=addr, acks="all", compression_type="gzip")
for i in range(20):
    producer.send(topic, key=b"k%d" % i, value=b"python-%d" % i, partition=i % 2).get(timeout=10)
producer.close()

consumer = KafkaConsumer(topic, bootstrap_servers=addr, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False, consumer_timeout_ms=5000)
seen = set()
for msg in consumer:
    seen.add(msg.value)
    if len(seen) == 20:
        break
if len(seen) != 20:
    sys.exit("consumed %d of 20 records" % len(seen))
consumer.commit()
for p in (0, 1):
    committed = consumer.committed(TopicPartition(topic, p))
    if committed != 10:
        sys.exit("partition %d: committed offset %s, want 10" % (p, committed))
consumer.close()

groups = [g[0] for g in admin.list_consumer_groups()]
if group not in groups:
    sys.exit("group %s not in %s" % (group, groups))
offsets = admin.list_consumer_group_offsets(group)
if sorted(o.offset for o in offsets.values()) != [10, 10]:
    sys.exit("group offsets %s" % offsets)
admin.close()
print("ok")
