#!/usr/bin/env python3
"""compare.py: an example's outputs equal the CLI's for the same inputs and seed.

    compare.py report CLI_REPORT LIB_REPORT    reports equal (see below)
    compare.py maps CLI_DIR LIB_DIR            LIB_DIR/*.f32 == the data of CLI_DIR/*.npy
    compare.py bytes A B                       files byte-identical

Reports: the CLI's report.json is the pipeline's report plus CLI-only keys (file, output,
maps, note); the library's report_json is the pipeline's report. Compared after dropping
those keys, the wall-clock timings (timings_ms, total_ms, each stage's ms) and the
generated request_id; everything else (scores, parts, inputs, params, setup, stage
decisions, the copies and syncs inside denoising steps) must be equal. The request's total
copies (transfers.total) are dropped too: they include the maps each front end reads back
(the CLI leaves them on the device unless it writes them; the library returns them).
Standard library only.
"""
import json
import os
import sys

CLI_ONLY = ("file", "output", "maps", "note")
VOLATILE = ("timings_ms", "total_ms", "request_id")


def normalise(rep, cli):
    for k in (CLI_ONLY if cli else ()) + VOLATILE:
        rep.pop(k, None)
    for stage in ("stage1", "stage2"):
        rep.get("refine", {}).get(stage, {}).pop("ms", None)
    rep.get("transfers", {}).pop("total", None)
    return rep


def npy_payload(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise SystemExit("%s: not a .npy file" % path)
    major = data[6]
    hlen = int.from_bytes(data[8:10], "little") if major == 1 else int.from_bytes(data[8:12], "little")
    start = (10 if major == 1 else 12) + hlen
    header = data[start - hlen:start].decode("latin1")
    if "'<f4'" not in header or "False" not in header:
        raise SystemExit("%s: want little-endian float32 in C order: %s" % (path, header.strip()))
    return data[start:]


def main(argv):
    what = argv[1]
    if what == "report":
        with open(argv[2]) as f:
            cli = normalise(json.load(f), True)
        with open(argv[3]) as f:
            lib = normalise(json.load(f), False)
        if cli != lib:
            keys = sorted(set(cli) | set(lib))
            diff = [k for k in keys if cli.get(k) != lib.get(k)]
            raise SystemExit("reports differ in %s:\n cli: %s\n lib: %s" % (
                diff, {k: cli.get(k) for k in diff}, {k: lib.get(k) for k in diff}))
        print("compare: %s == %s (%d keys)" % (argv[2], argv[3], len(cli)))
    elif what == "maps":
        names = [n[:-4] for n in sorted(os.listdir(argv[3])) if n.endswith(".f32")]
        if not names:
            raise SystemExit("%s: no .f32 maps" % argv[3])
        for n in names:
            with open(os.path.join(argv[3], n + ".f32"), "rb") as f:
                lib = f.read()
            cli = npy_payload(os.path.join(argv[2], n + ".npy"))
            if lib != cli:
                raise SystemExit("map %s differs (%d vs %d bytes)" % (n, len(lib), len(cli)))
        print("compare: maps %s equal the CLI's .npy data" % ", ".join(names))
    elif what == "bytes":
        with open(argv[2], "rb") as a, open(argv[3], "rb") as b:
            if a.read() != b.read():
                raise SystemExit("%s and %s differ" % (argv[2], argv[3]))
        print("compare: %s == %s (bytes)" % (argv[2], argv[3]))
    else:
        raise SystemExit("usage: compare.py report|maps|bytes A B")


if __name__ == "__main__":
    main(sys.argv)
