"""The seed design's hub, as the peer of the hub benchmark (benchmarks/hub.py).

FastAPI + uvicorn: a connection manager keeps a list of sockets per meeting and, for each
event, awaits each send in turn, JSON-encoding the message per recipient. It exposes the same
two endpoints the load generator uses against Parley: the meeting WebSocket and a route that
publishes a burst of transcript events whose text starts with `t<publish time in ns>`.
Events are numbered but, unlike Parley's, not persisted.
"""

import asyncio
import time

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

app = FastAPI()


class ConnectionManager:
    def __init__(self) -> None:
        self.active: dict[str, list[WebSocket]] = {}
        self.offsets: dict[str, int] = {}

    async def connect(self, meeting_id: str, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active.setdefault(meeting_id, []).append(websocket)

    def disconnect(self, meeting_id: str, websocket: WebSocket) -> None:
        sockets = self.active.get(meeting_id, [])
        if websocket in sockets:
            sockets.remove(websocket)

    async def broadcast(self, meeting_id: str, message: dict) -> None:
        for websocket in list(self.active.get(meeting_id, [])):
            try:
                await websocket.send_json(message)
            except Exception:
                self.disconnect(meeting_id, websocket)


manager = ConnectionManager()


@app.websocket("/ws/meeting/{meeting_id}")
async def meeting_socket(websocket: WebSocket, meeting_id: str) -> None:
    await manager.connect(meeting_id, websocket)
    await websocket.send_json(
        {"type": "connected", "meeting_id": meeting_id, "offset": manager.offsets.get(meeting_id, 0)}
    )
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        manager.disconnect(meeting_id, websocket)


class Burst(BaseModel):
    count: int
    size: int = 120
    interval_us: int = 0
    words: bool = False


# What `words` events say, in turn (as Parley's development route, DevelopmentRoutes.swift).
TALK = [
    "Okay, let's get started with the release review for this week.",
    "The installer works on all three platforms now, but the migration is still slow.",
    "I profiled the migration yesterday and most of the time goes into rebuilding the search index.",
    "Can you make the index rebuild incremental before the end of the sprint?",
    "Yes, I will take that, and I'll write up the numbers for the team by Friday.",
    "We also have to decide whether to drop support for the old storage format.",
    "Only two customers still use it, and both have a plan to convert their data.",
    "Then I think we should drop it in this release and say so in the notes.",
    "Agreed. Priya, could you send the upgrade notes to the administrators before Monday?",
    "Sure. Is there anything else on the dashboard that looks wrong to anyone?",
    "The error rate on the upload service went up a little after Tuesday's deploy.",
    "Let's look at that together after this call and decide if we roll back.",
]


def spoken(n: int) -> dict:
    """Event n of a `words` burst: a sentence of meeting talk, each word timed and scored."""
    sentence = TALK[n % len(TALK)]
    words = [{"word": w, "start": n + 0.32 * i, "end": n + 0.32 * i + 0.3,
              "confidence": 0.7 + ((n * 7 + i * 13) % 30) / 100} for i, w in enumerate(sentence.split(" "))]
    return {"id": n, "speaker": f"S{n % 3 + 1}", "start": n, "end": n + 0.32 * len(words),
            "text": f"t{time.time_ns()} " + sentence, "words": words}


@app.post("/api/dev/meetings/{meeting_id}/events")
async def publish(meeting_id: str, burst: Burst) -> dict:
    filler = "word " * (burst.size // 5)
    first = manager.offsets.get(meeting_id, 0) + 1
    start = time.monotonic()
    for n in range(burst.count):
        if burst.interval_us:
            delay = start + n * burst.interval_us / 1e6 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        offset = manager.offsets.get(meeting_id, 0) + 1
        manager.offsets[meeting_id] = offset
        message = {
            "type": "transcript",
            "meeting_id": meeting_id,
            "offset": offset,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "data": spoken(n) if burst.words else {"id": n, "speaker": "S1", "start": n, "end": n + 1,
                                                   "text": f"t{time.time_ns()} " + filler, "words": []},
        }
        await manager.broadcast(meeting_id, message)
    return {"first": first, "last": manager.offsets[meeting_id]}
