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
            "data": {"id": n, "speaker": "S1", "start": n, "end": n + 1, "text": f"t{time.time_ns()} " + filler,
                     "words": []},
        }
        await manager.broadcast(meeting_id, message)
    return {"first": first, "last": manager.offsets[meeting_id]}
