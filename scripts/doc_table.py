#!/usr/bin/env python3
"""Replaces the text between <!-- NAME:begin --> and <!-- NAME:end --> in a
markdown file with stdin. Used by the scripts that regenerate tables in docs/.

Usage: some-command | scripts/doc_table.py DOC.md NAME
Exits 2 (and changes nothing) if DOC cannot be read or the markers are
missing; exits 1 (and changes nothing) if stdin holds no markdown table with
at least one data row (a header line, a separator line and a row), e.g.
because the command that makes the table failed.
"""
import re
import sys

SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def has_table_rows(body):
    """True when body holds a header line, a separator line and at least one row."""
    lines = body.splitlines()
    for i in range(1, len(lines) - 1):
        if (SEPARATOR.match(lines[i]) and "|" in lines[i] and lines[i - 1].lstrip().startswith("|")
                and lines[i + 1].lstrip().startswith("|")):
            return True
    return False


if len(sys.argv) != 3:
    sys.exit("usage: doc_table.py DOC.md NAME < table")
doc, name = sys.argv[1], sys.argv[2]
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
# All of stdin first: a refusal below must not break the pipe of a `... | tee OUT/table.md |` before it.
body = sys.stdin.read().rstrip("\n")
try:
    with open(doc, encoding="utf-8") as f:
        text = f.read()
except (OSError, UnicodeDecodeError) as e:
    print(f"doc_table.py: {doc}: cannot be read ({getattr(e, 'strerror', None) or e}); table {name} not written",
          file=sys.stderr)
    sys.exit(2)
if begin not in text or end not in text or text.index(begin) > text.index(end):
    print(f"doc_table.py: {doc}: no '{begin}' ... '{end}' markers", file=sys.stderr)
    sys.exit(2)
if not has_table_rows(body):
    what = "nothing" if not body.strip() else "no table with a data row"
    print(f"doc_table.py: {doc}: table {name}: the input holds {what} (did the command that makes it fail?); "
          f"{doc} is left unchanged", file=sys.stderr)
    sys.exit(1)
text = text[:text.index(begin) + len(begin)] + "\n" + body + "\n" + text[text.index(end):]
with open(doc, "w", encoding="utf-8") as f:
    f.write(text)
