"""Creates topics with librdkafka's admin client (confluent-kafka-python)
across a kill of the cluster's controller: the client first talks to every
broker, so that it holds a connection to each, prints "ready" and waits
for a line on its standard input (sent once the controller is killed);
then a topic must be created within 15 seconds, through the new
controller.

Usage: librdkafka_admin_failover.py HOST:PORT[,...] TOPIC
Prints "ok", or exits non-zero with a message on any failure."""

import sys
import time

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

addr, topic = sys.argv[1:3]
# log_level 0: the client's attempts to reach the dead controller would
# fill the test's output.
admin = AdminClient({"bootstrap.servers": addr, "log_level": 0})
for f in admin.create_topics([NewTopic(topic + "-0", 1, 1)], request_timeout=10).values():
    f.result()
brokers = admin.list_topics(timeout=10).brokers
if len(brokers) != 3:
    sys.exit("want 3 brokers, metadata lists %d" % len(brokers))
for b in brokers:  # DescribeConfigs of a broker goes to that broker
    for f in admin.describe_configs([ConfigResource("broker", str(b))]).values():
        f.result(timeout=10)
print("ready", flush=True)
sys.stdin.readline()

start = time.time()
last = None
for i in range(1, 100):
    if time.time() - start > 15:
        break
    f = admin.create_topics([NewTopic("%s-%d" % (topic, i), 1, 1)], request_timeout=3)[topic + "-%d" % i]
    try:
        f.result()
        print("ok")
        sys.exit(0)
    except Exception as e:  # a retriable error while the new controller takes over
        last = e
sys.exit("no topic created within 15 s of the controller's death: %s" % last)
