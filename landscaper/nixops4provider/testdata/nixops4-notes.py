#!/usr/bin/python3
"""A resource provider written to NixOps4's protocol v0, for the tests.

JSON lines on stdin and stdout, one response per request, logs on stderr;
it exits when stdin ends. With NIXOPS4_TRANSCRIPT set, it appends every line
it reads and writes to that file, so the tests can check them against
NixOps4's schema.

Types:
  file  (stateless, as NixOps4's local file): inputs name, contents;
        outputs size. NixOps4 never updates a stateless resource: update is
        an error.
  note  (requireState): inputs name, text; outputs revision (1 at create,
        one more at each update, from the recorded outputs).
  crash: exits without answering.
"""
import json
import os
import sys

transcript = os.environ.get("NIXOPS4_TRANSCRIPT")


def record(direction, line):
    if transcript:
        with open(transcript, "a") as f:
            f.write(direction + " " + line + "\n")


def log(msg):
    print("nixops4-notes: " + msg, file=sys.stderr, flush=True)


def write(name, text):
    with open(name, "w") as f:
        f.write(text)


def inputs(props, names):
    unknown = sorted(set(props) - set(names))
    if unknown:
        raise ValueError("unknown input properties: " + ", ".join(unknown))
    missing = [n for n in names if n not in props]
    if missing:
        raise ValueError("missing input properties: " + ", ".join(missing))
    return props


def create(req):
    t, props = req["type"], req["inputProperties"]
    if t == "file":
        p = inputs(props, ["name", "contents"])
        write(p["name"], p["contents"])
        log("wrote " + p["name"])
        return {"size": len(p["contents"])}
    if t == "note":
        if not req["isStateful"]:
            raise ValueError("note resources require state (isStateful must be true)")
        p = inputs(props, ["name", "text"])
        write(p["name"], p["text"])
        log("wrote note " + p["name"])
        return {"revision": 1}
    if t == "crash":
        sys.exit(3)
    raise ValueError("unknown resource type: " + t)


def update(req):
    res, props = req["resource"], req["inputProperties"]
    if res["type"] != "note":
        raise ValueError("update called on stateless " + res["type"] + " resource")
    p = inputs(props, ["name", "text"])
    write(p["name"], p["text"])
    revision = res["outputProperties"]["revision"] + 1
    log("updated note %s to revision %d" % (p["name"], revision))
    return {"revision": revision}


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    record(">", line)
    try:
        msg = json.loads(line)
        if "createResourceRequest" in msg:
            resp = {"createResourceResponse": {"outputProperties": create(msg["createResourceRequest"])}}
        elif "updateResourceRequest" in msg:
            resp = {"updateResourceResponse": {"outputProperties": update(msg["updateResourceRequest"])}}
        else:
            raise ValueError("unsupported request: " + ", ".join(msg))
    except (ValueError, KeyError, OSError) as e:
        resp = {"errorResponse": {"message": str(e)}}
    out = json.dumps(resp)
    record("<", out)
    sys.stdout.write(out + "\n")
    sys.stdout.flush()
