"""Single-thread cost of splitting and encoding one page in Python, without Kafka.

Measures the reference worker's functions over one page, the same loops as pagesplit's
examples/split_bench.rs:

- split_encode: page text → quote and article records → single-object-framed Avro values;
- message: the raw message value (JSON envelope) → the records to publish (adds JSON decoding
  and the fetch time).

    python split_bench.py [--page FILE] [--seconds S]

Prints one JSON line: pages per second of each loop and the number of events per page.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import reference_worker as reference  # noqa: E402

DEFAULT_PAGE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "pages",
    "brecorder-putin-assad.masked.txt",
)
URL = "https://www.brecorder.com/news/40336151/putin-assad"
FETCHED_AT = "2024-12-08T10:15:00.000Z"
FETCHED_AT_MS = 1733652900000


def rate(function, seconds):
    """Calls `function` repeatedly for about `seconds` (after a short warm-up); calls per second."""
    deadline = time.perf_counter() + min(0.5, seconds / 4)
    while time.perf_counter() < deadline:
        function()
    calls = 0
    started = time.perf_counter()
    while True:
        for _ in range(100):
            function()
        calls += 100
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--page", default=DEFAULT_PAGE)
    parser.add_argument("--seconds", type=float, default=3.0, help="per loop")
    args = parser.parse_args()
    with open(args.page, encoding="utf-8") as file:
        text = file.read()
    envelope = json.dumps({"url": URL, "fetched_at": FETCHED_AT, "content_type": "text/plain", "body": text}).encode()

    def split_encode():
        quotes, article = reference.split_page(URL, FETCHED_AT_MS, text)
        size = 0
        for quote in quotes:
            size += len(reference.encode(reference.QUOTE_HEADER, reference.QUOTE_SCHEMA, quote))
        return size + len(reference.encode(reference.ARTICLE_HEADER, reference.ARTICLE_SCHEMA, article))

    def message():
        return reference.split_message(envelope, "market.quotes.v1", "news.articles.v1")

    events = len(message())
    print(json.dumps({
        "split_encode_pages_per_s": round(rate(split_encode, args.seconds), 1),
        "message_pages_per_s": round(rate(message, args.seconds), 1),
        "events_per_page": events,
    }), flush=True)


if __name__ == "__main__":
    main()
