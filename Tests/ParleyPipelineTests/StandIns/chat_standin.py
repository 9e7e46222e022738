"""A STAND-IN for an OpenAI-compatible chat-completions server, for Parley's tests only.

No instruction-following language model ships in a Debian or PyPI package usable here, so
this server implements the chat-completions API without a model: it answers with minutes
built by simple rules from the transcript it is sent (key points: the longest lines; action
items: lines with "I will"). It exists to test the `openai-chat` plugin's protocol handling:
the JSON schema request, validation, the one retry on an invalid answer, and retries on 429.

The model name picks a behaviour: "standin" answers well; "standin-invalid-once" answers
invalid JSON first; "standin-invalid" always answers invalid JSON; "standin-429-once" answers
HTTP 429 to the first request. GET /stats returns how many requests each model received.
Prints its port on stdout, then serves until killed.
"""

import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {}


def minutes(transcript):
    lines = [l for l in transcript.splitlines() if l.strip()]
    parsed = []
    for line in lines:
        m = re.match(r"\[(\d+) s\] ([^:]+): (.*)", line)
        if m:
            parsed.append((float(m.group(1)), m.group(2), m.group(3)))
    points = [text for _, _, text in sorted(parsed, key=lambda p: -len(p[2]))[:3]]
    items = []
    for time, speaker, text in parsed:
        m = re.search(r"\bI will (.*?)(?: by (\w+))?[.?!]?$", text)
        if m:
            items.append({"owner": speaker, "task": m.group(1), "due": m.group(2), "time": time})
    return {"summary": points, "decisions": [], "action_items": items}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "0.2")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.endswith("/models"):
            self.reply(200, {"object": "list", "data": [{"id": "standin", "object": "model"}]})
        elif self.path == "/stats":
            self.reply(200, counts)
        else:
            self.reply(404, {"error": {"message": "not found"}})

    def do_POST(self):
        if not self.path.endswith("/chat/completions"):
            return self.reply(404, {"error": {"message": "not found"}})
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        model = request.get("model", "")
        counts[model] = counts.get(model, 0) + 1
        n = counts[model]
        if "json_schema" not in json.dumps(request.get("response_format", {})):
            return self.reply(400, {"error": {"message": "response_format json_schema expected"}})
        if model == "standin-429-once" and n == 1:
            return self.reply(429, {"error": {"message": "rate limited"}})
        user = [m["content"] for m in request["messages"] if m["role"] == "user"][0]
        if model == "standin-invalid" or (model == "standin-invalid-once" and n == 1):
            content = '{"summary": "not a list"'
        else:
            content = json.dumps(minutes(user))
        self.reply(200, {
            "id": f"chatcmpl-{n}", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        })


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
