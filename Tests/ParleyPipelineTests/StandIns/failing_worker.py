"""A worker for Parley's failure tests: speaks the subprocess protocol, then misbehaves as
its first argument says: "hang" (never answers transcribe), "crash" (exits mid-request after
saying why on stderr), "garbage" (answers a line that is not JSON), "no-hello" (exits at once).
It writes its pid to the file named by its second argument, so a test can check it is gone."""

import json
import os
import sys
import time

mode = sys.argv[1]
if len(sys.argv) > 2:
    with open(sys.argv[2], "w") as f:
        f.write(str(os.getpid()))
if mode == "no-hello":
    print("cannot load my model", file=sys.stderr, flush=True)
    sys.exit(3)
for line in sys.stdin:
    request = json.loads(line)
    if request["method"] == "hello":
        print(json.dumps({"id": request["id"], "result": {"name": "failing", "audio": ["path"]}}), flush=True)
    elif request["method"] == "transcribe":
        if mode == "hang":
            time.sleep(3600)
        elif mode == "crash":
            print("out of memory while decoding", file=sys.stderr, flush=True)
            sys.exit(1)
        elif mode == "garbage":
            print("this is not json", flush=True)
    elif request["method"] == "shutdown":
        break
