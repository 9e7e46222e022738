#!/usr/bin/env python3
"""Voice profiles: are people recognized across meetings, and how often is someone named wrong?

As an owner lives it: meetings come one after another; each meeting's speakers are matched with
the profiles so far (`parley bench voices`, the server's matcher and thresholds), then every
speaker is named, which teaches its person's profile (what a rename does). A diarized speaker is
the reference speaker it mostly overlaps.

- generated: meetings of 2-4 of seven espeak-ng voices, each with its own script;
- similar voices: the same, with two voices of one espeak family and close pitch always present;
- real speech: ../shared/data/real-train (AMI, the same people in several excerpts), leave one
  out: profiles from the other nine excerpts, recognized in the tenth;
- the cost of naming a meeting's four speakers against 1,000 profiles read from SQLite;
- live: `parley serve` (classic diarizer) with the seven voices enrolled, generated meetings
  recorded through the ingest socket at real time: how long after a person has said 2 s a
  watcher sees them named, and how many names were wrong on the way.

Counted over speakers with enough speech to be matched (2 s): right (named as who they are),
wrong (named as anyone else, or named while nobody knew them), and among the speakers whose
person has a profile, recall (the share named right).

    .venv/bin/python benchmarks/voices.py [--meetings 12] [--live 4] [--skip-real] [--skip-build]
"""

import argparse
import json
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PARLEY, ROOT, cpu_name, free_port, http, run, wait_port, write_section  # noqa: E402

VOICES = {
    "ava": ["en-us+f3", 70, 160], "tom": ["en-us+m3", 35, 150], "priya": ["en-gb+f4", 55, 170],
    "anna": ["en-us+f2", 65, 165], "ben": ["en-us+m1", 30, 150], "dora": ["en-us+f4", 80, 155],
    "ed": ["en-us+m7", 45, 160],
}
# en-gb+m4 at pitch 50 and en-gb+f4 at 55 are the closest pair of espeak voices we found.
SIMILAR = {"priya": ["en-gb+f4", 55, 170], "chris": ["en-gb+m4", 50, 170]}

LINES = [
    "Let's start with the numbers from last week.", "The build has been green since Tuesday.",
    "I think we should move the launch by one week.", "Customers keep asking about the export feature.",
    "The database migration took four hours on staging.", "Can someone look at the flaky login test?",
    "Our budget for the quarter is almost spent.", "I talked to the design team this morning.",
    "The new onboarding flow is ready for review.", "We lost two days to the outage on Monday.",
    "Support tickets went down by a third.", "I will write the release notes tonight.",
    "The contract with the vendor ends in March.", "Please send me the slides before Friday.",
    "We need one more person on the mobile app.", "The search results are still too slow.",
    "Marketing wants a demo for the conference.", "I disagree, the old screen was clearer.",
    "Let's decide that at the next planning meeting.", "The security audit found three small issues.",
    "Our largest customer renewed for two years.", "I can pair with you on the payment bug.",
    "The printer on the third floor is broken again.", "We should celebrate when this ships.",
]


def script(seed, voices):
    rnd = random.Random(seed)
    who = rnd.sample(sorted(voices), rnd.choice([2, 3, 4])) if len(voices) > 4 else sorted(voices)
    turns = [[who[i % len(who)] if i < len(who) else rnd.choice(who), " ".join(rnd.sample(LINES, 2))]
             for i in range(12)]
    return {"speakers": {w: {"voice": voices[w][0], "pitch": voices[w][1], "speed": voices[w][2]} for w in who},
            "turns": turns}


def diarized_voices(audio, rttm, backend):
    """Each diarized speaker with a voice: its reference person (by overlap), vector, speech."""
    out = json.loads(run([PARLEY, "diarize", audio, "--json", "--voices", "--diarizer", backend]).stdout)
    ref = []
    for line in open(rttm):
        f = line.split()
        ref.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    overlap, speech = {}, {}
    for t in out["turns"]:
        speech[t["speaker"]] = speech.get(t["speaker"], 0) + t["end"] - t["start"]
        for s, e, who in ref:
            o = min(e, t["end"]) - max(s, t["start"])
            if o > 0:
                overlap.setdefault(t["speaker"], {}).setdefault(who, 0)
                overlap[t["speaker"]][who] += o
    voices = []
    for speaker, vector in (out.get("voices") or {}).items():
        if speaker in overlap:
            person = max(overlap[speaker], key=overlap[speaker].get)
            voices.append({"speaker": speaker, "person": person, "vector": vector, "speech": speech[speaker]})
    return out.get("embedding_kind"), voices


def replay(kind, meetings, profiles=0):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"kind": kind, "meetings": meetings}, f)
    try:
        return json.loads(run([PARLEY, "bench", "voices", f.name, "--profiles", str(profiles)]).stdout)
    finally:
        os.unlink(f.name)


def score(outcomes):
    eligible = [o for o in outcomes if o["speech"] >= 2.0]
    right = sum(1 for o in eligible if o["named"] == o["person"])
    wrong = sum(1 for o in eligible if o["named"] is not None and o["named"] != o["person"])
    # Recall counts people, not clusters: a person the diarizer split in two can be named once.
    known = {}
    for o in eligible:
        if o["known"]:
            known.setdefault((o["meeting"], o["person"]), []).append(o)
    found = sum(1 for group in known.values() if any(o["named"] == o["person"] for o in group))
    offered = sum(1 for group in known.values()
                  if not any(o["named"] == o["person"] for o in group)
                  and any(o["suggested"] == o["person"] for o in group))
    return {"speakers": len(eligible), "known": len(known), "right": right, "wrong": wrong,
            "recall": found / len(known) if known else 0.0, "wrong_rate": wrong / len(eligible) if eligible else 0.0,
            "precision": right / (right + wrong) if right + wrong else 1.0, "suggested_right": offered}


def scripted_meetings(work, name, voices, count, first_script, first_seed):
    """`count` generated meetings of `voices` (made once per folder); their folders."""
    folders = []
    for i in range(count):
        folder = os.path.join(work, f"{name}-{i}")
        if not os.path.exists(os.path.join(folder, "reference.rttm")):
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, "script.json")
            json.dump(script(first_script + i, voices), open(path, "w"))
            run([PARLEY, "make-meeting", folder, "--script", path, "--seed", str(first_seed + i)])
        folders.append(folder)
    return folders


def generated(work, name, voices, count, backends):
    results = {}
    folders = scripted_meetings(work, name, voices, count, 1000, 1)
    for backend in backends:
        meetings, kind = [], None
        for folder in folders:
            kind, found = diarized_voices(os.path.join(folder, "meeting.wav"),
                                          os.path.join(folder, "reference.rttm"), backend)
            meetings.append({"name": os.path.basename(folder), "voices": found})
        report = replay(kind, meetings, profiles=1000 if name == "generated" else 0)
        results[backend] = score(report["outcomes"])
        if "matching" in report:
            results[backend]["matching"] = report["matching"]
        print(name, backend, results[backend], flush=True)
    return results


def real(backends):
    folder = os.path.join(os.path.dirname(ROOT), "shared", "data", "real-train")
    excerpts = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    results = {}
    for backend in backends:
        found, kind = {}, None
        for name in excerpts:
            audio = [f for f in os.listdir(os.path.join(folder, name)) if f.endswith(".wav")][0]
            kind, found[name] = diarized_voices(os.path.join(folder, name, audio),
                                                os.path.join(folder, name, "reference.rttm"), backend)
        outcomes = []
        for test in excerpts:
            meetings = [{"name": n, "voices": found[n]} for n in excerpts if n != test]
            meetings.append({"name": test, "voices": found[test], "learn": False})
            outcomes += [o for o in replay(kind, meetings)["outcomes"] if o["meeting"] == test]
        results[backend] = score(outcomes)
        print("real", backend, results[backend], flush=True)
    return results


def reference_turns(rttm):
    turns = []
    for line in open(rttm):
        f = line.split()
        turns.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    return sorted(turns)


def live(work, count):
    """Live recognition through `parley serve`: enrolled voices, meetings recorded at real time."""
    import websockets

    enrollments = {}
    for person, (voice, pitch, speed) in VOICES.items():
        folder = os.path.join(work, f"alone-{person}")
        if not os.path.exists(os.path.join(folder, "meeting.wav")):
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, "script.json")
            lines = random.Random(person).sample(LINES, 6)
            json.dump({"speakers": {person: {"voice": voice, "pitch": pitch, "speed": speed}},
                       "turns": [[person, " ".join(lines[i:i + 2])] for i in range(0, 6, 2)]}, open(path, "w"))
            run([PARLEY, "make-meeting", folder, "--script", path])
        enrollments[person] = os.path.join(folder, "meeting.wav")
    meetings = scripted_meetings(work, "live", VOICES, count, 3000, 21)

    data = tempfile.mkdtemp(prefix="parley-voices-live-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(work, "live-server.log"), "w")
    proc = subprocess.Popen([PARLEY, "serve", "--port", str(port), "--data-dir", data, "--diarizer", "classic",
                             "--set", "server.bcrypt_cost=4"], stdout=log, stderr=subprocess.STDOUT)
    results = []
    try:
        wait_port(port, proc, 60)
        http("POST", base + "/api/auth/register", {"username": "bench", "password": "bench password"})

        def login():
            return http("POST", base + "/api/auth/login", {"username": "bench", "password": "bench password"})[
                "access_token"]

        for person, path in enrollments.items():
            request = urllib.request.Request(f"{base}/api/voices?name={person}", data=open(path, "rb").read(),
                                             method="POST", headers={"Content-Type": "audio/wav",
                                                                     "Authorization": "Bearer " + login()})
            urllib.request.urlopen(request, timeout=120).read()

        for folder in meetings:
            with wave.open(os.path.join(folder, "meeting.wav")) as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
                pcm = w.readframes(w.getnframes())
            token = login()
            meeting = http("POST", base + "/api/meetings", {"title": os.path.basename(folder)}, token=token)["id"]
            reference = reference_turns(os.path.join(folder, "reference.rttm"))
            # Each name given while recording: (seconds of audio sent, speaker, name, who the
            # speaker was by the speakers' turns as they stood then).
            named = []
            clock = {}
            current = {"turns": []}

            def person_now(speaker, until):
                overlap = {}
                for t in current["turns"]:
                    if t["speaker"] != speaker:
                        continue
                    for start, end, who in reference:
                        o = min(end, t["end"], until) - max(start, t["start"])
                        if o > 0:
                            overlap[who] = overlap.get(who, 0) + o
                return max(overlap, key=overlap.get) if overlap else None

            async def record():
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws/meeting/{meeting}?token={token}",
                                              max_size=1 << 24, ping_interval=None) as watcher:
                    async def watch():
                        async for text in watcher:
                            event = json.loads(text)
                            data = event.get("data") or {}
                            if event.get("type") == "speakers" and data.get("turns") is not None:
                                current["turns"] = data["turns"]
                            if event.get("type") == "speakers" and data.get("reason") == "recognized" \
                                    and "t0" in clock and "stop" not in clock:
                                sent = min(len(pcm) / 32000, time.monotonic() - clock["t0"])
                                for speaker in data["speakers"]:
                                    if speaker.get("profile"):
                                        named.append((sent, speaker["id"], speaker["name"],
                                                      person_now(speaker["id"], sent)))
                            if event.get("type") == "status" and data.get("stage") in ("completed", "failed"):
                                return data["stage"]

                    watching = asyncio.ensure_future(watch())
                    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/meeting/{meeting}/ingest?token={token}",
                                                  max_size=1 << 20, ping_interval=None) as ingest:
                        clock["t0"] = time.monotonic()
                        for i, at in enumerate(range(0, len(pcm), 3200)):
                            delay = clock["t0"] + i * 0.1 - time.monotonic()
                            if delay > 0:
                                await asyncio.sleep(delay)
                            await ingest.send(pcm[at:at + 3200])
                        clock["stop"] = time.monotonic()
                        await ingest.send(json.dumps({"type": "stop"}))
                        async for text in ingest:
                            if json.loads(text).get("type") == "stopped":
                                break
                    return await watching

            outcome = asyncio.run(record())
            view = http("GET", f"{base}/api/meetings/{meeting}", token=login())
            overlap = {}
            for t in view["turns"]:
                for start, end, who in reference:
                    o = min(end, t["end"]) - max(start, t["start"])
                    if o > 0:
                        overlap.setdefault(t["speaker"], {}).setdefault(who, 0)
                        overlap[t["speaker"]][who] += o
            person_of = {s: max(o, key=o.get) for s, o in overlap.items()}
            # When each person had said 2 s (the reference's own turns).
            said, ready = {}, {}
            for start, end, who in reference:
                if who not in ready and said.get(who, 0) + (end - start) >= 2.0:
                    ready[who] = start + 2.0 - said.get(who, 0)
                said[who] = said.get(who, 0) + end - start
            first = {}
            wrong_live = 0
            for sent, speaker, name, then in named:
                if then == name:
                    first.setdefault(name, sent)
                else:
                    wrong_live += 1
            final = [s for s in view["speakers"] if s.get("profile")]
            results.append({
                "meeting": os.path.basename(folder), "outcome": outcome, "people": sorted(ready),
                "latency": {p: first[p] - ready[p] for p in ready if p in first},
                "wrong_live": wrong_live, "names_live": len(named),
                "final_right": sum(1 for s in final if person_of.get(s["id"]) == s["name"]),
                "final_wrong": sum(1 for s in final if person_of.get(s["id"]) != s["name"]),
            })
            print("live", results[-1], flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        shutil.rmtree(data, ignore_errors=True)  # the server's database and recordings
    return results


def pct(x):
    return f"{100 * x:.1f}%"


def row(label, backend, r):
    return (f"| {label} | {backend} | {r['speakers']} | {r['known']} | {r['right']} | {r['wrong']} | "
            f"{pct(r['recall'])} | {pct(r['precision'])} | {pct(r['wrong_rate'])} | {r['suggested_right']} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meetings", type=int, default=12)
    parser.add_argument("--live", type=int, default=4, help="meetings recorded live at real time (0: none)")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "parley-bench-voices"))
    args = parser.parse_args()
    if not args.skip_build:
        run(["swift", "build", "-c", "release", "--product", "parley"], cwd=ROOT)
    os.makedirs(args.work, exist_ok=True)
    backends = ["classic", "neural"]
    gen = generated(args.work, "generated", VOICES, args.meetings, backends)
    similar_pool = dict(SIMILAR, tom=VOICES["tom"])
    sim = generated(args.work, "similar", similar_pool, max(4, args.meetings // 2), backends)
    rl = None if args.skip_real else real(backends)
    lv = live(args.work, args.live) if args.live > 0 else None
    lines = [
        "<!-- voices:begin -->",
        "## Voice profiles: people recognized across meetings",
        "",
        f"`.venv/bin/python benchmarks/voices.py` ({cpu_name()}): meetings one after another, each "
        "one's speakers matched with the owner's profiles so far (the server's matcher and "
        "thresholds), then all named (a rename teaches the profile). Speakers with at least 2 s of "
        "speech. *speakers*: diarized speakers; *known*: people in a meeting who have a profile by "
        "then; *right*/*wrong*: speakers named as who they are / as anyone else (or while nobody "
        "knew them); recall: known people named right (a person the diarizer split in two counts "
        "once); precision = right / (right + wrong); *suggested right*: known people not named "
        "but offered as a suggestion.",
        "",
        "| meetings | diarizer | speakers | known people | right | wrong | recall | precision | wrong of all speakers | suggested right |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend in backends:
        lines.append(row(f"generated ({args.meetings}, 2-4 of 7 espeak voices)", backend, gen[backend]))
    for backend in backends:
        lines.append(row(f"similar voices ({max(4, args.meetings // 2)}: en-gb f4/m4, pitch 55/50, + one)",
                         backend, sim[backend]))
    if rl:
        for backend in backends:
            lines.append(row("real speech (AMI real-train, leave one out)", backend, rl[backend]))
    m = gen["classic"].get("matching")
    if m:
        lines += ["", f"Naming a meeting's {m['speakers']} speakers against {m['profiles']} profiles (reading the "
                  f"owner's prints from SQLite and matching): median {m['median_ms']:.1f} ms, worst "
                  f"{m['max_ms']:.1f} ms of 50 (classic embeddings, 20 numbers); neural (192 numbers): "
                  f"median {gen['neural']['matching']['median_ms']:.1f} ms, worst "
                  f"{gen['neural']['matching']['max_ms']:.1f} ms."]
    if lv:
        people = sum(len(r["people"]) for r in lv)
        latencies = sorted(v for r in lv for v in r["latency"].values())
        median = latencies[len(latencies) // 2] if latencies else float("nan")
        lines += ["", f"**Live** (`parley serve`, classic diarizer, the seven voices enrolled from a recording of "
                  f"each alone; {len(lv)} generated meetings recorded through the ingest socket at real time): "
                  f"{len(latencies)} of {people} people named while the meeting was being recorded; a watcher saw "
                  f"the name a median {median:.1f} s (worst {max(latencies, default=float('nan')):.1f} s) after "
                  f"the person had said 2 s; {sum(r['wrong_live'] for r in lv)} wrong of "
                  f"{sum(r['names_live'] for r in lv)} names given while recording; at the end "
                  f"{sum(r['final_right'] for r in lv)} named right, {sum(r['final_wrong'] for r in lv)} wrong. "
                  "(Speakers are re-estimated, and so matched, when the audio has doubled and at least every "
                  "`pipeline.live_recluster` seconds, 10.)"]
    lines += ["", "Reading the rows: the neural diarizer hears espeak-ng's voices as one or two people "
              "(Docs/diarization.md), so its clusters mix people and what is learnt from them names "
              "the wrong person; for generated meetings the classic rows are the ones that say how "
              "matching does. On real speech it is the other way round: the classic voice (pitch and "
              "MFCC means) puts two real people as close as one person twice, so its thresholds name "
              "nobody there, while the neural CAM++ voice is what recognizes real people. The real "
              "sample is small (30-second excerpts; few people recur with 2 s of speech)."]
    lines.append("<!-- voices:end -->")
    write_section("<!-- voices:begin -->", "<!-- voices:end -->", "\n".join(lines))


if __name__ == "__main__":
    main()
