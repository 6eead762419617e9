"""A small Kafka command-line client for the native stack (run it as scripts/kafka).

Debian 12's kcat links librdkafka 2.0.2, which cannot talk to Tansu 0.6.0 (see
scripts/kafka).  This one uses confluent-kafka, whose wheel bundles librdkafka
2.12.1: the same librdkafka as the services (rdkafka-sys 4.10.0+2.12.1).  Its
options follow kcat's where they overlap:

  scripts/kafka produce -b BROKERS -t TOPIC [-k KEY] [-p PARTITION]
      one message per line of standard input (empty lines are skipped)
  scripts/kafka consume -b BROKERS -t TOPIC [-t TOPIC ...] [-o beginning|end|N|-N]
                        [-e] [-c COUNT] [-K DELIM] [--timeout SECONDS]
      prints each message's value on a line (with -K: key, DELIM, value)
  scripts/kafka create-topic -b BROKERS TOPIC [--partitions N] [--if-not-exists]
  scripts/kafka topics -b BROKERS
      the topics, one per line: name and partition count

-b defaults to $MFA_KAFKA_BROKERS.  Exit status: 0 on success, 1 on any error
(an unknown topic, a message not delivered, a timeout), 2 on bad usage.
"""

import argparse
import os
import signal
import sys
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

def fail(message):
    print(f"kafka: {message}", file=sys.stderr)
    sys.exit(1)


def brokers_arg(parser):
    default = os.environ.get("MFA_KAFKA_BROKERS")
    parser.add_argument(
        "-b",
        "--brokers",
        default=default,
        required=default is None,
        help="bootstrap brokers, host:port[,...] (default: $MFA_KAFKA_BROKERS)",
    )


def base_config(args):
    return {
        "bootstrap.servers": args.brokers,
        "client.id": "adaptive-mfa-kafka-cli",
        "socket.connection.setup.timeout.ms": int(args.timeout * 1000),
    }


def topic_partitions(client, topic, timeout):
    """The partition ids of `topic`; exits with an error if it does not exist."""
    try:
        metadata = client.list_topics(topic, timeout=timeout)
    except KafkaException as e:
        fail(f"cannot read the metadata of {topic}: {e}")
    t = metadata.topics.get(topic)
    if t is None or t.error is not None:
        reason = t.error.str() if t is not None and t.error is not None else "not found"
        fail(f"topic {topic}: {reason} (topics are not created automatically; "
             "scripts/kafka create-topic creates one)")
    if not t.partitions:
        fail(f"topic {topic} has no partitions")
    return sorted(t.partitions)


def cmd_produce(args):
    timeout_ms = int(args.timeout * 1000)
    producer = Producer({
        **base_config(args),
        "message.timeout.ms": timeout_ms,
        "request.timeout.ms": min(timeout_ms, 30000),
    })
    topic_partitions(producer, args.topic, args.timeout)
    failures = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append(err)
            print(f"kafka: message not delivered to {msg.topic()}: {err.str()}",
                  file=sys.stderr)
        elif args.verbose:
            print(f"kafka: delivered to {msg.topic()} [{msg.partition()}] "
                  f"at offset {msg.offset()}", file=sys.stderr)

    key = args.key.encode() if args.key is not None else None
    extra = {"partition": args.partition} if args.partition is not None else {}
    count = 0
    for line in sys.stdin.buffer:
        value = line.rstrip(b"\n")
        if not value:
            continue
        while True:
            try:
                producer.produce(args.topic, value=value, key=key,
                                 on_delivery=on_delivery, **extra)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        count += 1
    remaining = producer.flush(args.timeout)
    if remaining:
        fail(f"{remaining} of {count} message(s) not delivered within {args.timeout:g} s")
    if failures:
        fail(f"{len(failures)} of {count} message(s) not delivered")
    if count == 0:
        print("kafka: nothing to produce (standard input had no non-empty line)",
              file=sys.stderr)


def parse_offset(text):
    """("beginning"|"end", None) or ("at", N) or ("tail", N)."""
    if text in ("beginning", "end"):
        return (text, None)
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"offset must be beginning, end, N or -N, not {text!r}") from None
    return ("at", n) if n >= 0 else ("tail", -n)


def cmd_consume(args):
    consumer = Consumer({
        **base_config(args),
        # A plain consumer of assigned partitions: the group id is required by
        # the client but no group is joined and no offset is committed.
        "group.id": "adaptive-mfa-kafka-cli",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": args.exit_at_end,
    })
    # Every partition is read from its beginning and what comes before the
    # asked-for offset is skipped here.  Tansu 0.6.0 gets offsets inside a
    # batch of several records wrong: ListOffsets(latest) answers the last
    # batch's base offset + 1, and a fetch from inside a batch returns nothing
    # (or later batches twice), so "end", -N and N can't be left to the client
    # library.  The high watermark in fetch responses is right: the first one
    # of each partition fixes where "end" and -N are.
    kind, n = args.offset
    assignment = []
    for topic in args.topic:
        for p in topic_partitions(consumer, topic, args.timeout):
            assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
    consumer.assign(assignment)
    first_wanted = {}

    def wanted(msg):
        tp = (msg.topic(), msg.partition())
        if tp not in first_wanted:
            if kind == "beginning":
                first_wanted[tp] = 0
            elif kind == "at":
                first_wanted[tp] = n
            else:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(*tp), cached=True)
                first_wanted[tp] = high if kind == "end" else max(high - n, 0)
        return msg.offset() >= first_wanted[tp]

    out = sys.stdout.buffer
    delim = args.key_delimiter.encode() if args.key_delimiter is not None else None
    at_end = set()
    seen = 0
    deadline = time.monotonic() + args.timeout if args.timeout_given else None
    stopping = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        while not stopping:
            if args.count is not None and seen >= args.count:
                return
            if args.exit_at_end and len(at_end) == len(assignment):
                return
            if deadline is not None and time.monotonic() > deadline:
                fail(f"timed out after {args.timeout:g} s ({seen} message(s) read)")
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    at_end.add((msg.topic(), msg.partition()))
                    continue
                if err.fatal() or not err.retriable():
                    fail(f"{msg.topic() or ''} [{msg.partition()}]: {err.str()}")
                print(f"kafka: {err.str()} (retrying)", file=sys.stderr)
                continue
            at_end.discard((msg.topic(), msg.partition()))
            if not wanted(msg):
                continue
            if delim is not None:
                out.write((msg.key() or b"") + delim)
            out.write((msg.value() or b"") + b"\n")
            out.flush()
            seen += 1
    except BrokenPipeError:
        pass
    finally:
        consumer.close()


def cmd_create_topic(args):
    admin = AdminClient(base_config(args))
    futures = admin.create_topics(
        [NewTopic(args.name, num_partitions=args.partitions, replication_factor=1)],
        request_timeout=args.timeout,
    )
    try:
        futures[args.name].result(timeout=args.timeout)
    except KafkaException as e:
        err = e.args[0]
        if args.if_not_exists and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        fail(f"cannot create topic {args.name}: {err.str()}")


def cmd_topics(args):
    admin = AdminClient(base_config(args))
    try:
        metadata = admin.list_topics(timeout=args.timeout)
    except KafkaException as e:
        fail(f"cannot read the metadata: {e}")
    for name in sorted(metadata.topics):
        print(f"{name}\t{len(metadata.topics[name].partitions)}")


def main():
    parser = argparse.ArgumentParser(
        prog="scripts/kafka",
        description="Kafka client for the native stack (confluent-kafka, librdkafka 2.12).")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, help_text, default_timeout):
        p = sub.add_parser(name, help=help_text, description=help_text)
        brokers_arg(p)
        p.add_argument("--timeout", type=float, default=None,
                       help=f"seconds to wait for the broker (default {default_timeout})")
        p.set_defaults(default_timeout=default_timeout)
        return p

    p = add("produce", "produce each non-empty line of standard input as a message", 30)
    p.add_argument("-t", "--topic", required=True)
    p.add_argument("-k", "--key", help="the key of every message")
    p.add_argument("-p", "--partition", type=int, help="partition (default: by key)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="tell where each message went (on standard error)")
    p.set_defaults(func=cmd_produce)

    p = add("consume", "print the messages of one or more topics, one per line", 30)
    p.add_argument("-t", "--topic", action="append", required=True,
                   help="topic to read (repeatable)")
    p.add_argument("-o", "--offset", type=parse_offset, default=("beginning", None),
                   help="beginning (the default, as kcat's), end, N (absolute) "
                        "or -N (N before the end)")
    p.add_argument("-e", "--exit-at-end", action="store_true",
                   help="exit once every partition has been read to its end")
    p.add_argument("-c", "--count", type=int, help="exit after COUNT messages")
    p.add_argument("-K", "--key-delimiter", metavar="DELIM",
                   help="print each message's key and DELIM before its value")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="accepted for kcat compatibility (this client is always quiet)")
    p.set_defaults(func=cmd_consume)

    p = add("create-topic", "create a topic (replication factor 1)", 20)
    p.add_argument("name")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--if-not-exists", action="store_true",
                   help="succeed if the topic already exists")
    p.set_defaults(func=cmd_create_topic)

    p = add("topics", "list the topics and their partition counts", 20)
    p.set_defaults(func=cmd_topics)

    args = parser.parse_args()
    # For consume, --timeout also bounds the whole run (until -c or -e is satisfied);
    # without it a consumer runs until interrupted, like kcat.
    args.timeout_given = args.timeout is not None
    if args.timeout is None:
        args.timeout = float(args.default_timeout)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    args.func(args)


if __name__ == "__main__":
    main()
