"""A plain Python splitter of page files into JSON lines: the reference worker's regular
expressions (reference_worker.split_page) over every file of the inputs, one JSON line per event
with the Avro schemas' field names, decimals as strings: what `pagesplit split DIR` prints.

    python split_files.py INPUT... > events.jsonl

Directories are walked (sorted, like pagesplit); prints `pages=N events=M` on stderr.
"""

import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import reference_worker as reference  # noqa: E402


def files(inputs):
    for path in inputs:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    yield os.path.join(root, name)
        else:
            yield path


def timestamp(millis):
    moment = datetime.datetime.fromtimestamp(millis / 1000, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def main():
    out = sys.stdout
    pages = events = 0
    for path in files(sys.argv[1:]):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        url = "file://" + os.path.abspath(path)
        fetched_at = int(os.stat(path).st_mtime * 1000)
        quotes, article = reference.split_page(url, fetched_at, text)
        for quote in quotes:
            line = dict(type="quote", **quote)
            for field in ("price", "change", "change_pct"):
                line[field] = str(line[field])
            line["fetched_at"] = timestamp(fetched_at)
            out.write(json.dumps(line, ensure_ascii=False))
            out.write("\n")
        line = dict(type="article", **article)
        line["fetched_at"] = timestamp(fetched_at)
        out.write(json.dumps(line, ensure_ascii=False))
        out.write("\n")
        pages += 1
        events += len(quotes) + 1
    print(f"pages={pages} events={events}", file=sys.stderr)


if __name__ == "__main__":
    main()
