"""Reference worker for the pagesplit benchmarks: the same job, written the usual way in Python.

It consumes raw page envelopes, splits each page with regular expressions into quote events
(one per ticker line) and one article event, encodes them with fastavro (schemaless datums with
the schemas in schemas/*.avsc, Avro single-object framing), produces them (quotes keyed by
symbol, articles keyed by URL, bad messages to the dead-letter topic) and stores a page's
offset once every event it produced is acknowledged, as part of the contiguous prefix of
finished offsets of its partition; stored offsets are committed in the background, as pagesplit
does.

    python reference_worker.py --clients CLIENTS.json --input pages --quotes quotes \
        --articles articles --dead-letter dlq

CLIENTS.json is {"consumer": {...}, "producer": {...}}: librdkafka settings, written by the
bench harness from pagesplit's own client settings so that both run with the same ones.
SIGTERM or SIGINT stops it: it flushes, commits synchronously and prints a JSON summary line.

The splitting and encoding functions are imported by split_bench.py.
"""

import argparse
import collections
import decimal
import io
import json
import os
import re
import signal
import sys
import time
import uuid
from datetime import datetime

import fastavro
import xxhash
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMAS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schemas")

INDEX_SYMBOLS = frozenset({"BR100", "BR30", "KSE100", "KSE30"})
MAX_SYMBOL_LEN = 20

def event_id(name: str) -> str:
    """pagesplit's model::event_id: UUID v8 of the XXH3-128 hash of `url\nmillis\nkey`."""
    digest = bytearray(xxhash.xxh3_128_digest(name.encode()))
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))


# --- Splitting rules ----------------------------------------------------------------------

_WS = r"[ \t\u00a0]"
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d{1,12})(?:\.\d{1,6})?"
_SIGNED = r"[-+\u2212]?" + _NUMBER
TICKER_LINE = re.compile(
    rf"(?P<symbol>[A-Z0-9]+(?:[-.][A-Z0-9]+)*){_WS}+"
    rf"(?P<price>{_NUMBER}){_WS}+"
    rf"(?:(?P<up>(?i:increased){_WS}+(?i:by))|(?P<down>(?i:decreased){_WS}+(?i:by))"
    rf"|(?P<flat>(?i:no){_WS}+(?i:change)))"
    rf"{_WS}+(?:(?P<arrow>[\u25b2\u25bc\u25b4\u25be]){_WS}*)?"
    rf"(?P<change>{_SIGNED}){_WS}*\({_WS}*(?P<pct>{_SIGNED}){_WS}*%{_WS}*\)"
)
FOOTER = re.compile(r"(?i)(?:comments$|comments are closed|copyright\s|\u00a9|all rights reserved)")
COMMENTS_CLOSED = re.compile(r"(?i)comments are closed")
SENTENCE_END = re.compile(r"[.!?\u2026:;][\"\u201d\u2019')\]\u00bb*_]*$")
DATELINE = re.compile(r"([A-Z][A-Z .'/-]{1,39}?)(?:\s*\([^)]*\))?(?::|\s[\u2013\u2014-]\s)")
BYLINE = re.compile(r"(?P<author>.{1,80}?)\s+Published\s+(?P<date>.+)")
WIDGET = re.compile(r"[|\u25b2\u25bc\u25b4\u25be\u2191\u2193]|[^A-Za-z]*$")
JUNK = frozenset(
    "advertisement advertisements sponsored ad ads share tweet facebook twitter whatsapp linkedin "
    "email print related trending subscribe home menu search login latest".split()
    + ["share this", "share this article", "read more", "related news", "related articles", "also read",
       "most read", "most popular", "latest news", "top stories", "follow us", "sign in", "1000 characters"]
)


def _decimal(text):
    return decimal.Decimal(text.replace(",", "").replace("\u2212", "-"))


def split_page(url, fetched_at_ms, text):
    """Splits a text page into quote records (dicts shaped like schemas/quote.avsc) and one
    article record (shaped like schemas/article.avsc)."""
    id_prefix = f"{url}\n{fetched_at_ms}\n"
    quotes = []
    seen = set()
    paragraphs = []
    related = []
    short_lines = []
    title = None
    byline = None
    comments_closed = False
    in_footer = False
    for raw in text.split("\n"):
        line = raw.strip(" \t\r\u00a0")
        if not line:
            continue
        match = TICKER_LINE.fullmatch(line)
        if match is not None:
            symbol = match["symbol"]
            if symbol in seen or len(symbol) > MAX_SYMBOL_LEN:
                continue
            seen.add(symbol)
            quotes.append({
                "event_id": event_id(id_prefix + symbol),
                "symbol": symbol,
                "kind": "INDEX" if match["arrow"] is None or symbol in INDEX_SYMBOLS else "STOCK",
                "price": _decimal(match["price"]),
                "change": _decimal(match["change"]),
                "change_pct": _decimal(match["pct"]),
                "direction": "UP" if match["up"] else "DOWN" if match["down"] else "UNCHANGED",
                "url": url,
                "fetched_at": fetched_at_ms,
            })
            continue
        if in_footer:
            comments_closed = comments_closed or COMMENTS_CLOSED.match(line) is not None
            continue
        if FOOTER.match(line):
            in_footer = True
            comments_closed = COMMENTS_CLOSED.match(line) is not None
            continue
        if WIDGET.match(line) or (len(line) <= 20 and line.lower() in JUNK):
            continue
        words = len(line.split())
        if words >= 16 or (words >= 4 and SENTENCE_END.search(line)):
            if paragraphs:
                related.extend(short_lines)
            short_lines = []
            paragraphs.append(line)
        elif paragraphs:
            short_lines.append(line)
        elif (found := BYLINE.fullmatch(line)) is not None:
            byline = found["author"]
        elif title is None and len(line) <= 300:
            title = line
    dateline = None
    if paragraphs and (found := DATELINE.match(paragraphs[0])) is not None:
        dateline = found[1].strip()
    article = {
        "event_id": event_id(id_prefix + "article"),
        "url": url,
        "fetched_at": fetched_at_ms,
        "title": title,
        "dateline": dateline,
        "paragraphs": paragraphs,
        "related_headlines": related,
        "comments_closed": comments_closed,
        "section": None,
        "byline": byline,
        "published_at": None,
    }
    return quotes, article


# --- Encoding -----------------------------------------------------------------------------


def _load_schema(name):
    with open(os.path.join(SCHEMAS_DIR, name), encoding="utf-8") as file:
        schema = fastavro.parse_schema(json.load(file))
    # Avro single-object encoding: C3 01, then the CRC-64-AVRO fingerprint of the schema's
    # Parsing Canonical Form, little-endian (fastavro's hex digest is already in that order).
    crc = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
    return schema, b"\xc3\x01" + crc


QUOTE_SCHEMA, QUOTE_HEADER = _load_schema("quote.avsc")
ARTICLE_SCHEMA, ARTICLE_HEADER = _load_schema("article.avsc")


def encode(header, schema, record):
    """A single-object-framed record value."""
    buffer = io.BytesIO()
    buffer.write(header)
    fastavro.schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


def _millis(fetched_at):
    # datetime.fromisoformat reads RFC 3339 with a `Z` from Python 3.11 on.
    return int(datetime.fromisoformat(fetched_at.strip()).timestamp() * 1000)


def split_message(value, quotes_topic, articles_topic):
    """A raw message value (JSON envelope) → [(topic, key, value)] to publish."""
    envelope = json.loads(value)
    content_type = envelope.get("content_type", "text/plain").split(";")[0].strip().lower()
    if content_type not in ("text/plain", "text"):
        raise ValueError(f"unsupported content type {content_type!r}")
    url = envelope["url"]
    body = envelope["body"]
    if not body.strip():
        raise ValueError("empty body")
    quotes, article = split_page(url, _millis(envelope["fetched_at"]), body)
    records = [(quotes_topic, q["symbol"].encode(), encode(QUOTE_HEADER, QUOTE_SCHEMA, q)) for q in quotes]
    records.append((articles_topic, url.encode(), encode(ARTICLE_HEADER, ARTICLE_SCHEMA, article)))
    return records


# --- Kafka --------------------------------------------------------------------------------


class Offsets:
    """Per partition, the contiguous prefix of finished offsets (what may be committed)."""

    def __init__(self):
        self.pending = collections.defaultdict(collections.deque)
        self.done = collections.defaultdict(set)

    def track(self, partition, offset):
        self.pending[partition].append(offset)

    def complete(self, partition, offset):
        """Marks an offset finished; the next offset to commit when the prefix grew, else None."""
        pending, done = self.pending[partition], self.done[partition]
        done.add(offset)
        store = None
        while pending and pending[0] in done:
            done.discard(pending[0])
            store = pending.popleft() + 1
        return store


class Page:
    """One consumed page whose records await acknowledgement."""

    __slots__ = ("worker", "partition", "offset", "remaining")

    def __init__(self, worker, partition, offset, remaining):
        self.worker, self.partition, self.offset, self.remaining = worker, partition, offset, remaining

    def delivered(self, error, _message):
        if error is not None:
            self.worker.failed += 1
        self.remaining -= 1
        if self.remaining == 0:
            self.worker.page_done(self)


class Worker:
    def __init__(self, clients, topics):
        self.consumer = Consumer(clients["consumer"])
        self.producer = Producer(clients["producer"])
        self.input, self.quotes, self.articles, self.dead_letter = topics
        self.offsets = Offsets()
        self.pages = self.events = self.dead_lettered = self.failed = 0
        self.running = True

    def page_done(self, page):
        store = self.offsets.complete(page.partition, page.offset)
        if store is not None:
            self.consumer.store_offsets(offsets=[TopicPartition(self.input, page.partition, store)])

    def produce(self, topic, key, value, page, headers=None):
        while True:
            try:
                self.producer.produce(topic, value, key, headers=headers, on_delivery=page.delivered)
                return
            except BufferError:
                self.producer.poll(0.01)

    def run(self):
        self.consumer.subscribe([self.input])
        while self.running:
            for message in self.consumer.consume(num_messages=500, timeout=0.1):
                if message.error() is not None:
                    continue
                partition, offset = message.partition(), message.offset()
                self.offsets.track(partition, offset)
                try:
                    records = split_message(message.value(), self.quotes, self.articles)
                except (ValueError, KeyError, TypeError, decimal.InvalidOperation) as error:
                    headers = list(message.headers() or []) + [("pagesplit.error.message", str(error).encode())]
                    page = Page(self, partition, offset, 1)
                    self.produce(self.dead_letter, message.key(), message.value(), page, headers)
                    self.dead_lettered += 1
                    continue
                page = Page(self, partition, offset, len(records))
                for topic, key, value in records:
                    self.produce(topic, key, value, page)
                self.pages += 1
                self.events += len(records)
                self.producer.poll(0)
            self.producer.poll(0)
        self.producer.flush(10)
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as error:
            if error.args[0].code() != KafkaError._NO_OFFSET:  # nothing stored since the last commit
                print(f"final commit failed: {error}", file=sys.stderr)
        self.consumer.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", required=True, help="JSON file with consumer and producer settings")
    parser.add_argument("--input", required=True)
    parser.add_argument("--quotes", required=True)
    parser.add_argument("--articles", required=True)
    parser.add_argument("--dead-letter", required=True)
    args = parser.parse_args()
    with open(args.clients, encoding="utf-8") as file:
        clients = json.load(file)
    worker = Worker(clients, (args.input, args.quotes, args.articles, args.dead_letter))

    def stop(_signal, _frame):
        worker.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    worker.run()
    print(json.dumps({
        "pages": worker.pages,
        "events": worker.events,
        "dead_lettered": worker.dead_lettered,
        "failed_deliveries": worker.failed,
        "seconds": round(time.monotonic() - started, 3),
    }), flush=True)


if __name__ == "__main__":
    main()
