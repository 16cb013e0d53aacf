#!/usr/bin/env python3
"""Replaces the text between <!-- NAME:begin --> and <!-- NAME:end --> in a
markdown file with stdin. Used by the scripts that regenerate tables in docs/.

Usage: some-command | scripts/doc_table.py DOC.md NAME
Exits 2 (and changes nothing) if the markers are missing.
"""
import sys

if len(sys.argv) != 3:
    sys.exit("usage: doc_table.py DOC.md NAME < table")
doc, name = sys.argv[1], sys.argv[2]
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
text = open(doc).read()
if begin not in text or end not in text or text.index(begin) > text.index(end):
    print(f"doc_table.py: {doc}: no '{begin}' ... '{end}' markers", file=sys.stderr)
    sys.exit(2)
body = sys.stdin.read().rstrip("\n")
text = text[:text.index(begin) + len(begin)] + "\n" + body + "\n" + text[text.index(end):]
open(doc, "w").write(text)
