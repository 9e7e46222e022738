"""Several Parley processes sharing one PostgreSQL: two `parley serve` nodes and `parley worker`
processes, real processes on loopback, killed with SIGKILL mid-meeting; PostgreSQL itself
restarted mid-meeting. A WebSocket client (websocket-client) watches as a browser would:
on a lost connection it reconnects, to the other node if need be, with `since` and `epoch`.

Run by `make test` after the Swift tests: `.venv/bin/python -m pytest Tests/Cluster`. The
binary is $PARLEY_BIN (make test: the AddressSanitizer build), else .build/debug/parley. Each
test starts its own PostgreSQL with scripts/test-postgres.sh (so it can restart it). Logs of
every process go to test-output/cluster/.
"""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
import wave

import pytest
import websocket
from conftest import PARLEY, PASSWORD, ROOT, ParleyProcess, ParleyServer, wait_for

LOGS = os.path.join(ROOT, "test-output", "cluster")


class Postgres:
    """A throwaway PostgreSQL (scripts/test-postgres.sh) that a test may restart."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="parley-cluster-pg-")
        self.script = os.path.join(ROOT, "scripts", "test-postgres.sh")
        self.url = subprocess.run([self.script, "start", self.dir], check=True, capture_output=True,
                                  text=True).stdout.strip()

    def restart(self):
        subprocess.run([self.script, "restart", self.dir], check=True, capture_output=True)

    def stop(self):
        subprocess.run([self.script, "stop", self.dir], check=False, capture_output=True)


class Node(ParleyServer):
    def __init__(self, name, data, database, processing=True, lease=None):
        extra = ["--database", database] + ([] if processing else ["--no-processing"])
        if lease:
            extra += ["--set", f"server.job_lease={lease}"]
        super().__init__(name, data, LOGS, extra=extra)


class Worker(ParleyProcess):
    def __init__(self, name, data, database, lease):
        super().__init__(
            name, ["worker", "--data-dir", data, "--database", database, "--job-lease", str(lease)], LOGS)
        wait_for(lambda: "processing queued meetings" in self.text(), 120, f"{name} to start")


class Watcher(threading.Thread):
    """A client of one meeting: keeps every message, reconnects (next node in the list) with
    `since` and `epoch` when the connection is lost, stops after `completed` or `failed`."""

    def __init__(self, nodes, meeting, token):
        super().__init__(daemon=True)
        self.nodes, self.meeting, self.token = nodes, meeting, token
        self.events, self.connects, self.closed = [], [], []
        self.node = 0
        self.epoch = None
        self.done = threading.Event()
        self.stopped = False

    @property
    def offset(self):
        return self.events[-1]["offset"] if self.events else 0

    def run(self):
        while not self.done.is_set() and not self.stopped:
            node = self.nodes[self.node % len(self.nodes)]
            query = f"token={self.token}&since={self.offset}" + (f"&epoch={self.epoch}" if self.epoch else "")
            try:
                ws = websocket.create_connection(f"ws://127.0.0.1:{node.port}/ws/meeting/{self.meeting}?{query}",
                                                 timeout=5)
            except (OSError, websocket.WebSocketException):
                self.node += 1
                time.sleep(0.3)
                continue
            try:
                while not self.stopped:
                    try:
                        text = ws.recv()
                    except websocket.WebSocketTimeoutException:
                        continue
                    if not text:
                        break
                    message = json.loads(text)
                    if message["type"] == "connected":
                        self.connects.append({**message, "node": node.name})
                        self.epoch = message["epoch"]
                    elif "offset" in message:
                        self.events.append(message)
                        if message["type"] == "status" and message["data"]["stage"] in ("completed", "failed"):
                            self.done.set()
                            return
            except (OSError, websocket.WebSocketException) as error:
                self.closed.append((node.name, repr(error)))
            finally:
                ws.close()
            self.node += 1  # lost: try the other node
            time.sleep(0.3)


def login(node, username):
    node.request("POST", "/api/auth/register", {"username": username, "password": PASSWORD})
    return node.request("POST", "/api/auth/login", {"username": username, "password": PASSWORD})[1]["access_token"]


def upload(node, meeting, token, path):
    with open(path, "rb") as f:
        status, body = node.request("PUT", f"/api/meetings/{meeting}/audio", token=token, raw=f.read(),
                                content_type="audio/wav")
    assert status == 202, body


def assert_complete_ordered_stream(watcher):
    offsets = [event["offset"] for event in watcher.events]
    assert offsets == list(range(1, len(offsets) + 1)), f"gaps or duplicates: {offsets}"
    assert watcher.events[-1]["data"]["stage"] == "completed", watcher.events[-3:]


def segments_after_last_restart(events):
    restart = max((i for i, e in enumerate(events) if e["type"] == "status" and e["data"]["state"] == "restarted"),
                  default=-1)
    segments = {}
    for event in events[restart + 1:]:
        if event["type"] == "transcript":
            for replaced in event["data"].get("replaces") or []:
                segments.pop(replaced, None)
            if event["data"]["text"]:  # (an empty one only removes)
                segments[event["data"]["id"]] = event["data"]["text"]
    return segments


@pytest.fixture(scope="module")
def long_meeting():
    """Three passes of the project's generated standup (espeak-ng voices): long enough to kill a
    process while it works on it."""
    folder = tempfile.mkdtemp(prefix="parley-cluster-audio-")
    subprocess.run([PARLEY, "make-meeting", folder, "--repeat", "3"], check=True, capture_output=True)
    yield os.path.join(folder, "meeting.wav")
    shutil.rmtree(folder, ignore_errors=True)


class Cluster:
    """A PostgreSQL, a shared data folder, and the processes a test starts on them."""

    def __init__(self):
        self.postgres = Postgres()
        self.data = tempfile.mkdtemp(prefix="parley-cluster-data-")
        self.processes = []

    def node(self, name, processing=False, lease=None):
        node = Node(name, self.data, self.postgres.url, processing=processing, lease=lease)
        self.processes.append(node)
        return node

    def worker(self, name, lease):
        worker = Worker(name, self.data, self.postgres.url, lease)
        self.processes.append(worker)
        return worker

    def stop(self):
        for process in self.processes:
            process.stop()
        self.postgres.stop()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture
def cluster():
    started = Cluster()
    yield started
    started.stop()


def test_a_client_follows_a_meeting_through_a_worker_crash_and_a_node_crash(cluster, long_meeting):
    # Two nodes that only serve (uploads queue for workers), one worker.
    a, b = cluster.node("a"), cluster.node("b")
    first = cluster.worker("worker-1", lease=4)

    token = login(a, "alice")
    meeting = b.request("POST", "/api/meetings", {"title": "Across nodes"}, token=token)[1]["id"]
    watcher = Watcher([a, b], meeting, token)
    watcher.start()
    wait_for(lambda: watcher.connects, 30, "the client to connect to node a")
    assert watcher.connects[0]["node"] == "a"

    # The upload goes to node b; the worker processes it; the client on node a sees it live.
    upload(b, meeting, token, long_meeting)
    wait_for(lambda: any(e["type"] == "transcript" for e in watcher.events), 300, "the first segment")
    assert "job claimed" in first.text()

    # The worker dies mid-job: after its lease runs out another worker takes the meeting over.
    first.kill()
    killed_at = watcher.offset
    second = cluster.worker("worker-2", lease=4)
    wait_for(lambda: any(e["type"] == "status" and e["data"]["state"] == "restarted" for e in watcher.events), 60,
             "the takeover to be announced")
    wait_for(lambda: sum(e["type"] == "transcript" for e in watcher.events[killed_at:]) >= 1, 300,
             "the second worker's first segment")

    # The client's node dies: the client reconnects to node b with since and epoch and recovers.
    a.kill()
    wait_for(lambda: len(watcher.connects) >= 2, 30, "the client to reconnect")
    assert watcher.connects[1]["node"] == "b" and watcher.connects[1]["recovered"] is True

    assert watcher.done.wait(600), f"the meeting did not finish; last events {watcher.events[-3:]}"
    assert_complete_ordered_stream(watcher)
    statuses = [(e["data"]["stage"], e["data"]["state"]) for e in watcher.events if e["type"] == "status"]
    assert ("upload", "restarted") in statuses
    assert any("queued for a worker" in (e["data"].get("detail") or "") for e in watcher.events if e["type"] == "status")
    assert "taking over an interrupted meeting" in second.text()

    # What the client built from the stream is what the server has.
    _, view = b.request("GET", f"/api/meetings/{meeting}", token=token)
    assert view["status"] == "completed"
    assert view["offset"] == watcher.offset
    assert {s["id"]: s["text"] for s in view["segments"]} == segments_after_last_restart(watcher.events)
    assert len(view["segments"]) > 0

    # Node a comes back. Four edits of one action item at once, through both nodes: each changes
    # another field, and none is lost (an edit appends only if the log did not move meanwhile).
    a = cluster.node("a-again")
    item = view["action_items"][0]["id"]
    changes = [(a, {"done": True}), (b, {"owner": "Dana"}), (a, {"due": "Friday"}), (b, {"task": "Ship the notes"})]
    replies = []
    threads = [threading.Thread(target=lambda n=n, c=c: replies.append(
        n.request("PATCH", f"/api/meetings/{meeting}/action-items/{item}", c, token=token)[0])) for n, c in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert replies == [200] * 4
    _, view = a.request("GET", f"/api/meetings/{meeting}", token=token)
    edited = next(i for i in view["action_items"] if i["id"] == item)
    assert (edited["done"], edited["owner"], edited["due"], edited["task"]) == (True, "Dana", "Friday", "Ship the notes")


def next_ack(socket):
    while True:
        message = json.loads(socket.recv())
        assert message["type"] == "ack", message
        return message["bytes"]


def test_a_live_recording_moves_to_another_node_when_its_node_dies(cluster, long_meeting):
    """A recording goes to node a through its ingest socket; node a is killed. The client
    reconnects to node b with its last ack: refused (503, recording_moving) while node a's lease
    runs, then node b takes the job over and continues the recording. The stored WAV is
    exactly the PCM sent, with no gap and no duplicate, and the meeting completes."""
    a, b = cluster.node("a", processing=True, lease=3), cluster.node("b", processing=True, lease=3)
    token = login(a, "alice")
    meeting = a.request("POST", "/api/meetings", {"title": "Recorded across nodes"}, token=token)[1]["id"]
    with wave.open(long_meeting) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (16000, 1, 2)
        pcm = audio.readframes(40 * 16000)
    second = 32000
    watcher = Watcher([b], meeting, token)
    watcher.start()
    wait_for(lambda: watcher.connects, 30, "the watcher to connect to node b")

    socket = websocket.create_connection(f"ws://127.0.0.1:{a.port}/ws/meeting/{meeting}/ingest?token={token}",
                                         timeout=30)
    acked = 0
    for at in range(0, 20 * second, second):
        socket.send_binary(pcm[at:at + second])
        acked = next_ack(socket)
    assert acked == 20 * second
    a.kill()
    socket.close()

    resume, refused = acked - second, 0  # the client resends the last second, whose ack it missed
    deadline = time.time() + 60
    while True:
        try:
            socket = websocket.create_connection(
                f"ws://127.0.0.1:{b.port}/ws/meeting/{meeting}/ingest?token={token}&resume={resume}", timeout=30)
            break
        except websocket.WebSocketBadStatusException as refusal:
            assert refusal.status_code == 503 and b"recording_moving" in (refusal.resp_body or b""), refusal
            assert time.time() < deadline, "node b never took the recording over"
            refused += 1
            time.sleep(0.5)
    assert refused >= 1, "node a's lease was still running: node b should have refused at first"
    for at in range(resume, len(pcm), second):
        socket.send_binary(pcm[at:at + second])
        acked = next_ack(socket)
    assert acked == len(pcm)
    socket.send(json.dumps({"type": "stop"}))
    stopped = json.loads(socket.recv())
    assert stopped["type"] == "stopped" and stopped["bytes"] == len(pcm) and stopped["reason"] == "stop", stopped
    socket.close()

    assert watcher.done.wait(600), f"the meeting did not finish; last events {watcher.events[-3:]}"
    assert_complete_ordered_stream(watcher)
    assert any(e["type"] == "status" and e["data"]["state"] == "restarted" for e in watcher.events)
    _, view = b.request("GET", f"/api/meetings/{meeting}", token=token)
    assert view["status"] == "completed" and len(view["segments"]) >= 3
    request = urllib.request.Request(f"{b.base}/api/meetings/{meeting}/audio",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        stored = response.read()
    assert stored[44:] == pcm, f"the stored recording differs from what was sent ({len(stored) - 44} of {len(pcm)} bytes)"
    assert "live recording continues" in b.text()


def test_postgresql_restarting_mid_meeting_loses_nothing(cluster, long_meeting):
    node = cluster.node("node")
    cluster.worker("worker", lease=30)
    token = login(node, "bob")
    meeting = node.request("POST", "/api/meetings", {"title": "Database restart"}, token=token)[1]["id"]
    watcher = Watcher([node], meeting, token)
    watcher.start()
    upload(node, meeting, token, long_meeting)
    wait_for(lambda: any(e["type"] == "transcript" for e in watcher.events), 300, "the first segment")

    cluster.postgres.restart()

    assert watcher.done.wait(600), f"the meeting did not finish; last events {watcher.events[-3:]}"
    assert_complete_ordered_stream(watcher)
    # The worker kept its job (no takeover) and the node still answers from the database.
    assert not any(e["type"] == "status" and e["data"]["state"] == "restarted" for e in watcher.events)
    _, view = node.request("GET", f"/api/meetings/{meeting}", token=token)
    assert view["status"] == "completed" and view["offset"] == watcher.offset
    status, _ = node.request("POST", "/api/meetings", {"title": "After the restart"}, token=token)
    assert status == 201


def test_a_batch_spreads_a_folder_over_the_workers(cluster, long_meeting, tmp_path):
    node = cluster.node("batch-node")
    login(node, "operator")
    workers = [cluster.worker(f"batch-worker-{n}", lease=30) for n in (1, 2)]
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name in ("monday", "tuesday", "wednesday"):
        shutil.copy(long_meeting, folder / f"{name}.wav")
    out = tmp_path / "out"
    # This process only queues and waits (--jobs 0): the two workers do the work.
    batch = subprocess.run(
        [PARLEY, "batch", str(folder), "--out", str(out), "--database", cluster.postgres.url, "--data-dir", cluster.data,
         "--owner", "operator", "--jobs", "0", "--format", "json,md"],
        capture_output=True, text=True, timeout=900)
    assert batch.returncode == 0, batch.stderr[:3000]
    assert "3 files: 3 ok, 0 skipped, 0 failed" in batch.stdout
    for name in ("monday", "tuesday", "wednesday"):
        result = json.loads((out / f"{name}.json").read_text())
        assert result["status"]["stage"] == "completed" and result["segments"]
        assert (out / f"{name}.md").exists()
    # Both workers took a share, and the meetings are the operator's, as in the web app.
    assert all("job claimed" in worker.text() for worker in workers)
    token = node.request("POST", "/api/auth/login", {"username": "operator", "password": PASSWORD})[1]["access_token"]
    _, listing = node.request("GET", "/api/meetings", token=token)
    assert sorted(m["title"] for m in listing["meetings"]) == ["monday", "tuesday", "wednesday"]
    assert all(m["status"] == "completed" for m in listing["meetings"])
    # A second run finds the results complete and queues nothing.
    again = subprocess.run(
        [PARLEY, "batch", str(folder), "--out", str(out), "--database", cluster.postgres.url, "--data-dir", cluster.data,
         "--owner", "operator", "--jobs", "0"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "0 ok, 3 skipped" in again.stdout, again.stdout + again.stderr[-1000:]


def close_code(socket, seconds):
    """Reads until the server closes the socket; its close code."""
    socket.settimeout(seconds)
    while True:
        opcode, data = socket.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big")


def test_a_removed_member_and_a_logged_out_session_lose_their_sockets_on_the_other_node(cluster):
    a, b = cluster.node("a"), cluster.node("b")
    token = login(a, "alice")
    bob = login(a, "bob")
    meeting = a.request("POST", "/api/meetings", {"title": "Shared across nodes"}, token=token)[1]["id"]
    a.request("POST", f"/api/meetings/{meeting}/members", {"username": "bob"}, token=token)
    # Alice's second session (its own refresh family) and bob watch on node a.
    _, second = a.request("POST", "/api/auth/login", {"username": "alice", "password": PASSWORD})
    sockets = {}
    for who, access in (("bob", bob), ("alice-2", second["access_token"])):
        sockets[who] = websocket.create_connection(f"ws://127.0.0.1:{a.port}/ws/meeting/{meeting}?token={access}")
        assert json.loads(sockets[who].recv())["type"] == "connected"
    try:
        # Bob is removed through node b: node a closes his socket at its next sweep (2 s).
        removed_at = time.monotonic()
        status, members = b.request("DELETE", f"/api/meetings/{meeting}/members/bob", token=token)
        assert status == 200 and members["members"] == []
        assert close_code(sockets["bob"], 15) == 4003
        assert time.monotonic() - removed_at < 10
        # Alice's second session logs out through node b: its socket on node a closes with 4001.
        assert b.request("POST", "/api/auth/logout", {"refresh_token": second["refresh_token"]})[0] == 204
        assert close_code(sockets["alice-2"], 15) == 4001
    finally:
        for socket in sockets.values():
            socket.close()


def test_who_edits_and_where_others_are_cross_nodes(cluster):
    """`editing` and `cursor` from a viewer on node b reach a viewer on node a (PostgreSQL
    NOTIFY), stamped with the sender, and never come back to the sender."""
    a, b = cluster.node("a"), cluster.node("b")
    alice = login(a, "alice")
    bob = login(b, "bob")
    meeting = a.request("POST", "/api/meetings", {"title": "Across nodes"}, token=alice)[1]["id"]
    a.request("POST", f"/api/meetings/{meeting}/members", {"username": "bob", "can_edit": True}, token=alice)
    on_a = websocket.create_connection(f"ws://127.0.0.1:{a.port}/ws/meeting/{meeting}?token={alice}", timeout=15)
    on_b = websocket.create_connection(f"ws://127.0.0.1:{b.port}/ws/meeting/{meeting}?token={bob}", timeout=15)
    try:
        for socket in (on_a, on_b):
            assert json.loads(socket.recv())["type"] == "connected"
        on_b.send(json.dumps({"type": "editing", "data": {"item": "action_item:2"}}))
        on_b.send(json.dumps({"type": "cursor", "data": {"time": 42.5, "segment": 7}}))
        seen = {}
        deadline = time.monotonic() + 15
        while len(seen) < 2 and time.monotonic() < deadline:
            message = json.loads(on_a.recv())
            if message["type"] in ("editing", "cursor"):
                seen[message["type"]] = message["data"]
        assert seen.get("editing", {}).get("user") == "bob" and seen["editing"]["item"] == "action_item:2"
        assert seen.get("cursor", {}).get("time") == 42.5 and seen["cursor"]["segment"] == 7
        # Nothing of bob's own comes back to him (a ping's pong is the next thing he reads).
        on_b.send(json.dumps({"type": "ping"}))
        while True:
            message = json.loads(on_b.recv())
            assert message["type"] not in ("editing", "cursor"), message
            if message["type"] == "pong":
                break
    finally:
        on_a.close()
        on_b.close()
