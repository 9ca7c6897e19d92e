#!/usr/bin/env python3
"""Build the Debian corpus: one JSON line per package description of Debian 12
(bookworm) main, joined with the package's metadata.

    python scripts/build_debian_corpus.py [--out PATH] [--sample N] [--lists DIR]

Runs `apt-get update` into a private, temporary state directory (its own
sources list, lists and cache; the system's apt state is neither read nor
changed), then reads two of the files it fetched, decompressed by
`/usr/lib/apt/apt-helper cat-file`:

- `Translation-en`: Package, Description-md5, Description-en (first line = the
  short description, the rest = the long one, " ." lines = paragraph breaks);
- `Packages` (amd64 and all): the stanza with the same Package and
  Description-md5 gives the structured fields.

Writes one record per Translation-en record, in file order:

    {"id": package, "title": short description, "body": long description,
     "section": str, "priority": str, "installed_size": int (KiB),
     "size": int (bytes of the .deb), "version": str, "architecture": str,
     "essential": bool, "maintainer": str}

A field the Packages stanza lacks is omitted (all of them when no stanza
matches; "essential" is false when a matched stanza has no "Essential: yes"). A few package names have more than one description: their later
record repeats the id. Output: gzipped JSON lines, default
benchmarks/data/debian/docs.jsonl.gz; `--sample N` writes the first N records.
`--lists DIR` reads an existing apt lists directory instead of running
apt-get (offline). `--enrich CORPUS` adds the structured fields to a corpus
that has only id, title and body (a copy made without the Packages join), from
the Packages list of `--lists DIR` alone (default: the system's, which on a
Debian 12 machine holds bookworm main), matched by package name; the records
keep their order and text. Standard library only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "data" / "debian" / "docs.jsonl.gz"
APT_HELPER = "/usr/lib/apt/apt-helper"
SOURCES = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def apt_update(state: Path) -> Path:
    """`apt-get update` of bookworm main into `state`; returns its lists directory."""
    lists, cache, parts = state / "lists", state / "cache", state / "srcparts"
    state.chmod(0o755)  # run as root, apt downloads as the _apt user: it must reach lists/partial
    for d in (lists / "partial", cache / "archives" / "partial", parts):
        d.mkdir(parents=True, exist_ok=True)
    (parts / "debian.sources").write_text(SOURCES)
    cmd = [
        "apt-get", "update",
        "-o", f"Dir::State::Lists={lists}",
        "-o", f"Dir::Cache={cache}",
        "-o", "Dir::Etc::SourceList=/dev/null",
        "-o", f"Dir::Etc::SourceParts={parts}",
        "-o", "Acquire::Languages=en",
        "-o", "Debug::NoLocking=1",
    ]
    print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    return lists


def find_list(lists: Path, marker: str) -> Path:
    found = sorted(p for p in lists.iterdir() if marker in p.name and p.is_file())
    if not found:
        raise SystemExit(f"no *{marker}* file in {lists}")
    return found[0]


def cat_file(path: Path) -> Iterator[str]:
    """Lines of an apt list file, whatever its compression."""
    # leaving early (--sample) closes the pipe and waits for apt-helper
    with subprocess.Popen([APT_HELPER, "cat-file", str(path)], stdout=subprocess.PIPE,
                          encoding="utf-8", errors="replace") as proc:
        assert proc.stdout is not None
        yield from proc.stdout
        if proc.wait() != 0:
            raise SystemExit(f"{APT_HELPER} cat-file {path} failed (exit {proc.returncode})")


def stanzas(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """deb822 stanzas: field -> value, continuation lines joined with "\\n"
    (their first space kept, as in the file)."""
    fields: dict[str, str] = {}
    last = None
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                fields[last] += "\n" + line
        else:
            name, _, value = line.partition(":")
            last = name.strip()
            fields[last] = value.strip()
    if fields:
        yield fields


def split_description(text: str) -> tuple[str, str]:
    """(title, body) of a Description-en value: body lines lose their leading
    space, " ." lines become paragraph breaks."""
    first, _, rest = text.partition("\n")
    paragraphs: list[list[str]] = [[]]
    for line in rest.split("\n") if rest else []:
        line = line[1:] if line.startswith(" ") else line
        if line.strip() == ".":  # " ." (also indented, as some descriptions have it)
            paragraphs.append([])
        else:
            paragraphs[-1].append(line)
    body = "\n\n".join("\n".join(p) for p in paragraphs if p).strip()
    return first.strip(), body


def metadata(stanza: dict[str, str]) -> dict:
    out: dict = {}
    for key, name, kind in (("Section", "section", str), ("Priority", "priority", str),
                            ("Installed-Size", "installed_size", int), ("Size", "size", int),
                            ("Version", "version", str), ("Architecture", "architecture", str)):
        if key in stanza:
            try:
                out[name] = kind(stanza[key])
            except ValueError:
                pass
    # Packages lists "Essential: yes" only; a matched stanza without it is not essential
    out["essential"] = stanza.get("Essential", "no").strip().lower() == "yes"
    if "Maintainer" in stanza:
        out["maintainer"] = stanza["Maintainer"]
    return out


def records(lists: Path) -> Iterator[dict]:
    packages: dict[tuple[str, str], dict] = {}
    for st in stanzas(cat_file(find_list(lists, "_Packages"))):
        key = (st.get("Package", ""), st.get("Description-md5", ""))
        packages.setdefault(key, st)  # the first stanza of a (package, description) wins
    for st in stanzas(cat_file(find_list(lists, "_Translation-en"))):
        if "Package" not in st or "Description-en" not in st:
            continue
        title, body = split_description(st["Description-en"])
        doc = {"id": st["Package"], "title": title, "body": body}
        match = packages.get((st["Package"], st.get("Description-md5", "")))
        if match is not None:
            doc.update(metadata(match))
        yield doc


def enriched(corpus: Path, lists: Path) -> Iterator[dict]:
    """The corpus's records with the metadata of the first Packages stanza of their name."""
    packages: dict[str, dict] = {}
    # bookworm itself, not bookworm-security or -updates (whose lists sort first)
    for st in stanzas(cat_file(find_list(lists, "_dists_bookworm_main_binary-amd64_Packages"))):
        packages.setdefault(st.get("Package", ""), st)
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            doc = json.loads(line)
            match = packages.get(doc.get("id", ""))
            if match is not None:  # added after the corpus's own fields, which win
                doc.update((k, v) for k, v in metadata(match).items() if k not in doc)
            yield doc


def write(docs: Iterator[dict], out: Path, limit: int | None) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    n = 0
    # mtime=0: the same input gives the same bytes
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0,
                                               filename="") as gz:
        for doc in docs:
            if limit is not None and n >= limit:
                break
            gz.write((json.dumps(doc, ensure_ascii=False) + "\n").encode("utf-8"))
            n += 1
    os.replace(tmp, out)
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"output .jsonl.gz (default {DEFAULT_OUT.relative_to(REPO)})")
    p.add_argument("--sample", type=int, default=None, metavar="N", help="write only the first N records")
    p.add_argument("--lists", default=None, metavar="DIR",
                   help="an apt lists directory that already holds bookworm main Packages and Translation-en")
    p.add_argument("--enrich", default=None, metavar="CORPUS",
                   help="add the Packages fields to this id/title/body corpus (offline; --lists or the system's)")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.enrich:
        source = Path(args.enrich)
        if source.resolve() == out.resolve():  # read it whole before the output replaces it
            copy = Path(tempfile.mkdtemp(prefix="raysearch-corpus-")) / source.name
            copy.write_bytes(source.read_bytes())
            source = copy
        n = write(enriched(source, Path(args.lists or "/var/lib/apt/lists")), out, args.sample)
    elif args.lists:
        n = write(records(Path(args.lists)), out, args.sample)
    else:
        with tempfile.TemporaryDirectory(prefix="raysearch-apt-") as state:
            n = write(records(apt_update(Path(state))), out, args.sample)
    print(f"wrote {n} records to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
