"""The web app in a real browser (Debian's chromium, driven by Selenium through chromedriver),
against a real `parley serve` with its embedded database and the real pipeline.

Run by `make test` after the Swift tests: `.venv/bin/python -m pytest Tests/Browser`. The server
binary is $PARLEY_BIN (make test: the AddressSanitizer build), else .build/debug/parley.
Screenshots of every step go to test-output/browser/.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from conftest import PARLEY, PASSWORD, ROOT, ParleyServer, wait_for
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

SHOTS = os.path.join(ROOT, "test-output", "browser")


@pytest.fixture
def server():
    data = tempfile.mkdtemp(prefix="parley-browser-")
    # The generator's espeak-ng voices are told apart by the classic diarizer only (the neural
    # models hear them as one or two voices; Docs/diarization.md), and these tests count speakers.
    srv = ParleyServer("serve", data, log_dir=data, extra=("--diarizer", "classic"), timeout=60)
    yield srv
    srv.stop()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def meeting_audio():
    """A meeting made by the project's own generator (espeak-ng voices, three speakers)."""
    folder = tempfile.mkdtemp(prefix="parley-browser-audio-")
    subprocess.run([PARLEY, "make-meeting", folder], check=True, capture_output=True)
    long = os.path.join(folder, "long")
    subprocess.run([PARLEY, "make-meeting", long, "--repeat", "3"], check=True, capture_output=True)
    # The same meeting as a browser's MediaRecorder records it: WebM with Opus.
    webm = os.path.join(folder, "meeting.webm")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", os.path.join(folder, "meeting.wav"),
                    "-c:a", "libopus", "-b:a", "32k", webm], check=True, capture_output=True)
    yield {"short": os.path.join(folder, "meeting.wav"), "long": os.path.join(long, "meeting.wav"), "webm": webm}
    shutil.rmtree(folder, ignore_errors=True)


class Page:
    """One browser session."""

    def __init__(self, server, name, microphone=None):
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1100",
                         "--autoplay-policy=no-user-gesture-required"):
            options.add_argument(argument)
        if microphone:
            # A fake microphone that plays the file once, at real time; permission granted.
            for argument in ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                             f"--use-file-for-fake-audio-capture={microphone}%noloop"):
                options.add_argument(argument)
        service = webdriver.ChromeService(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
        self.driver = webdriver.Chrome(options=options, service=service)
        self.server = server
        self.name = name
        self.step = 0

    def quit(self):
        self.driver.quit()

    def wait(self, condition, timeout=120, message=""):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1, ignored_exceptions=(
            StaleElementReferenceException,)).until(condition, message)

    def shot(self, what, whole_page=False):
        os.makedirs(SHOTS, exist_ok=True)
        self.step += 1
        path = os.path.join(SHOTS, f"{self.name}-{self.step:02d}-{what}.png")
        if not whole_page:
            self.driver.save_screenshot(path)
            return
        size = self.driver.get_window_size()
        self.driver.execute_script("window.scrollTo(0, 0)")
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(size["width"], height + 120)
        self.driver.save_screenshot(path)
        self.driver.set_window_size(size["width"], size["height"])

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def visible(self, css, timeout=60):
        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, css), timeout, f"{css} never appeared")

    def open(self, hash_path):
        self.driver.get(f"{self.server.base}/#{hash_path}")

    def register(self, username):
        self.open("/register")
        self.visible("#username").send_keys(username)
        self.find("#password").send_keys(PASSWORD)
        self.shot("register")
        self.find("form button[type=submit]").click()
        self.visible("#new-title")

    def login(self, username, then=None):
        self.open(then or "/meetings")
        self.visible("#username").send_keys(username)
        self.find("#password").send_keys(PASSWORD)
        self.shot("login")
        self.find("form button[type=submit]").click()

    def create_meeting(self, title, diarizer=None, speakers=None):
        self.visible("#new-title").send_keys(title)
        if diarizer or speakers:
            self.find(".speakers-options summary").click()
            if diarizer:
                Select(self.visible("#new-diarizer")).select_by_value(diarizer)
            if speakers:
                self.visible("#new-speakers").send_keys(str(speakers))
        self.shot("meetings")
        self.find("#new-meeting button[type=submit]").click()
        self.visible("#transcript-title")
        return self.driver.current_url.split("#/meetings/")[1]

    def upload(self, path):
        self.visible("#audio-file").send_keys(path)
        self.find("#audio-file ~ button[type=submit]").click()

    def status(self):
        return self.find("h1 + .status").text

    def segments(self):
        """(id, speaker name, text) of every transcript row, in order."""
        return self.driver.execute_script("""
            return [...document.querySelectorAll('li.segment')].map(li =>
              [Number(li.dataset.segment), li.querySelector('.speaker').textContent,
               li.querySelector('.text').textContent]);""")

    def rename_first_speaker(self, name):
        """Renames the first speaker through the page; returns its label."""
        first = self.find(".speakers-list li[data-speaker]")
        label = first.get_attribute("data-speaker")
        first.find_element(By.CSS_SELECTOR, "button").click()
        field = self.visible(".speakers-list input")
        field.clear()
        field.send_keys(name)
        self.find(".speakers-list form button[type=submit]").click()
        return label

    def viewers(self):
        return sorted(e.text for e in self.all("[data-viewer]"))

    def connection(self):
        return self.find("#connection").get_attribute("data-state")


def rest_segments(server, meeting, username):
    view = server.request("GET", f"/api/meetings/{meeting}", token=server.token(username))[1]
    names = {s["id"]: s["name"] for s in view["speakers"]}
    return [[s["id"], names.get(s["speaker"], s["speaker"]), s["text"]] for s in view["segments"]], view


@pytest.fixture
def pages():
    opened = []
    yield opened
    for page in opened:
        page.quit()


def test_a_meeting_goes_live_from_upload_to_summary(server, meeting_audio, pages):
    page = Page(server, "live")
    pages.append(page)
    page.register("alice")
    # The form's Speakers section: the classic diarizer (the generator's voices), exactly three.
    meeting = page.create_meeting("Release sync", diarizer="classic", speakers=3)
    page.shot("empty-meeting")
    page.upload(meeting_audio["short"])
    page.visible("li.segment", timeout=180)
    status_at_first_segment = page.status()
    page.shot("first-segment")
    assert status_at_first_segment != "completed", "the first segment should show before processing completes"
    assert page.connection() == "live"
    page.wait(lambda d: page.status() == "completed", 300, "the meeting never completed")
    page.wait(lambda d: page.all(".items li[data-item]"), 30, "no action items")
    page.shot("finished")

    rows, view = rest_segments(server, meeting, "alice")
    assert view["diarization"] == {"diarizer": "classic", "speakers": 3}
    assert page.segments() == rows
    assert len(rows) >= 5
    assert len(page.all("#summary-title ~ div li")) >= 1
    assert len(page.all(".items li[data-item]")) == len(view["action_items"]) >= 1
    assert len(page.all(".speakers-list li[data-speaker]")) == len(view["speakers"]) == 3
    assert page.all("svg.turns rect"), "the speaker timeline is drawn"
    assert page.viewers() == ["alice"]

    # Rename a speaker: the transcript's labels change in place.
    speaker_id = page.rename_first_speaker("Dana Scully")
    page.wait(lambda d: any(name == "Dana Scully" for _, name, _ in page.segments()), 30, "rename not shown")
    spoken = [row for row in page.segments() if row[1] == "Dana Scully"]
    assert spoken and all(server_row[1] == "Dana Scully" for server_row in rest_segments(server, meeting, "alice")[0]
                          if server_row[0] in {row[0] for row in spoken})
    # Tick an action item done.
    box = page.find(".items input[type=checkbox]")
    box.click()
    page.wait(lambda d: page.all(".items li.done"), 30, "the action item was not marked done")
    page.shot("edited", whole_page=True)
    items = server.request("GET", f"/api/meetings/{meeting}", token=server.token("alice"))[1]["action_items"]
    assert items[0]["done"] is True
    assert any(s["id"] == speaker_id and s["name"] == "Dana Scully"
               for s in server.request("GET", f"/api/meetings/{meeting}", token=server.token("alice"))[1]["speakers"])

    # Choosing a segment's time plays the recording from there (fetched with byte ranges).
    third = page.all("li.segment")[2]
    start = rest_segments(server, meeting, "alice")[1]["segments"][2]["start"]
    third.find_element(By.CSS_SELECTOR, "button.time").click()
    page.wait(lambda d: d.execute_script(
        "const a = document.querySelector('audio'); return a.src.includes('/audio?token=') && a.readyState > 0"
        f" && Math.abs(a.currentTime - {start}) < 1.5"), 30, "the recording did not seek to the segment")

    # Readable on a phone: nothing wider than a 375 px screen.
    page.driver.set_window_size(375, 812)
    page.wait(lambda d: d.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth"), 10,
              "the meeting page is wider than a 375 px screen")
    page.shot("phone")
    page.driver.set_window_size(1280, 1100)

    # Back to the list: the meeting is there, completed, with its length.
    page.find("a[href='#/meetings']").click()
    row = page.visible(f"tr[data-meeting='{meeting}']")
    assert "completed" in row.text and "0:5" in row.text
    page.shot("list")

    # Logged out, a wrong password is said in words, and logging in brings back the page asked for.
    page.find("#logout").click()
    page.visible("#username")
    page.open(f"/meetings/{meeting}")
    page.visible("#username").send_keys("alice")
    page.find("#password").send_keys("not the password")
    page.find("form button[type=submit]").click()
    assert page.visible("[role=alert]").text == "Wrong username or password."
    page.shot("wrong-password")
    page.find("#password").clear()
    page.find("#password").send_keys(PASSWORD)
    page.find("form button[type=submit]").click()
    page.wait(lambda d: d.current_url.endswith(f"#/meetings/{meeting}") and page.all("li.segment"), 30,
              "login did not return to the meeting")


def test_the_page_recovers_when_the_server_is_killed_and_restarted_mid_meeting(server, meeting_audio, pages):
    page = Page(server, "restart")
    pages.append(page)
    page.register("alice")
    meeting = page.create_meeting("Long planning")
    page.upload(meeting_audio["long"])
    page.visible("li.segment", timeout=180)
    assert page.status() == "processing"
    page.shot("before-kill")
    server.kill()
    page.wait(lambda d: page.connection() in ("disconnected", "connecting", "failed"), 30, "no disconnection shown")
    page.shot("server-down")
    server.start()
    page.wait(lambda d: page.connection() == "live", 60, "the page did not reconnect")
    page.wait(lambda d: page.status() == "completed", 600, "the meeting never completed after the restart")
    page.wait(lambda d: page.all(".items li[data-item]"), 30)
    page.shot("completed-after-restart")
    seen = page.segments()
    ids = [row[0] for row in seen]
    assert len(ids) == len(set(ids)), "a segment is shown twice"
    rows, view = rest_segments(server, meeting, "alice")
    assert seen == rows, "the page's transcript differs from the server's"
    assert view["status"] == "completed" and len(rows) >= 10


def test_a_second_session_sees_the_same_events_and_who_is_watching(server, meeting_audio, pages):
    alice = Page(server, "alice")
    pages.append(alice)
    alice.register("alice")
    meeting = alice.create_meeting("Shared review")
    server.request("POST", "/api/auth/register", {"username": "bob", "password": PASSWORD})
    alice.visible("#share-user").send_keys("bob")
    alice.find("#share-edit").click()
    alice.find("#share-user ~ button[type=submit], #share-title ~ button[type=submit]").click()
    alice.wait(lambda d: "(may edit)" in "".join(li.text for li in alice.all('.members li[data-member="bob"]')), 30,
               "bob is not listed as an editor")

    bob = Page(server, "bob")
    pages.append(bob)
    bob.login("bob", then=f"/meetings/{meeting}")
    bob.visible("#transcript-title")
    for page in (alice, bob):
        page.wait(lambda d, page=page: page.viewers() == ["alice", "bob"], 30, f"{page.name} does not see both")
    bob.shot("presence")

    # The picker offers audio and video files; a WebM (Opus) recording goes through like a WAV.
    assert "video/*" in alice.find("#audio-file").get_attribute("accept")
    alice.upload(meeting_audio["webm"])
    for page in (alice, bob):
        page.wait(lambda d, page=page: page.status() == "completed", 300, f"{page.name}: never completed")
        page.wait(lambda d, page=page: page.all(".items li[data-item]"), 30)
    assert bob.segments() == alice.segments() and len(bob.segments()) >= 5
    assert len(bob.all(".items li[data-item]")) == len(alice.all(".items li[data-item]"))

    # Bob (may edit) renames a speaker and edits an action item: Alice sees both live.
    bob.rename_first_speaker("Fox Mulder")
    alice.wait(lambda d: any(name == "Fox Mulder" for _, name, _ in alice.segments()), 30, "alice missed the rename")
    bob.find(".items li[data-item] button").click()
    owner = bob.visible(".item-edit input[id^=owner]")
    owner.clear()
    owner.send_keys("Fox Mulder")
    bob.find(".item-edit button[type=submit]").click()
    alice.wait(lambda d: "Owner: Fox Mulder" in alice.find(".items").text, 30, "alice missed the action item edit")
    alice.shot("sees-bobs-edits")
    assert alice.segments() == bob.segments()

    # Bob corrects a line in place: Escape cancels; then another speaker and new words, Enter
    # saves, and Alice sees the correction live, marked as edited.
    first_id, _, first_text = bob.segments()[0]
    row = f'li.segment[data-segment="{first_id}"]'
    bob.find(f"{row} .text.editable").click()
    bob.visible(f"{row} textarea").send_keys(" and more", Keys.ESCAPE)
    bob.wait(lambda d: not bob.all(f"{row} textarea"), 10, "Escape did not cancel the correction")
    assert bob.segments()[0][2] == first_text
    bob.find(f"{row} .text.editable").click()
    field = bob.visible(f"{row} textarea")
    speakers = Select(bob.find(f"{row} select"))
    other = next(option for option in speakers.options if not option.is_selected())
    other_name = other.text
    speakers.select_by_value(other.get_attribute("value"))
    field.clear()
    field.send_keys("Corrected by Bob in the browser.")
    bob.shot("correcting")
    field.send_keys(Keys.ENTER)
    corrected = [first_id, other_name, "Corrected by Bob in the browser."]
    alice.wait(lambda d: corrected in alice.segments(), 30, "alice missed the correction")
    alice.wait(lambda d: "(edited)" in alice.find(row).text, 10, "the correction is not marked")
    bob.wait(lambda d: not bob.all(f"{row} textarea") and corrected in bob.segments(), 10, "bob's editor stayed open")
    alice.shot("sees-bobs-correction")
    assert alice.segments() == bob.segments() == rest_segments(server, meeting, "alice")[0]

    # While Bob has a line open to correct, Alice sees that he is editing it; Escape, and it goes.
    second_id = bob.segments()[1][0]
    second = f'li.segment[data-segment="{second_id}"]'
    bob.find(f"{second} .text.editable").click()
    bob.visible(f"{second} textarea")
    badge = alice.visible(f'{second} .editing-badge[data-editing="segment:{second_id}"]', timeout=10)
    assert badge.text == "bob is editing"
    alice.shot("bob-is-editing")
    bob.find(f"{second} textarea").send_keys(Keys.ESCAPE)
    alice.wait(lambda d: not alice.all(f"{second} .editing-badge"), 10, "the editing badge stayed")
    # Where Bob is: he plays a line; Alice sees his name on it and his place on the strip.
    third_id = bob.segments()[2][0]
    bob.find(f'li.segment[data-segment="{third_id}"] button.time').click()
    alice.visible(f'li.segment[data-segment="{third_id}"] .cursor-tag[data-cursor="bob"]', timeout=10)
    alice.visible('svg.turns .cursor-line[data-cursor="bob"]', timeout=10)
    alice.shot("bobs-cursor")

    # Bob turns a line into a promise and summarizes again: the new action item reaches Alice.
    fourth = f'li.segment[data-segment="{bob.segments()[3][0]}"]'
    bob.find(f"{fourth} .text.editable").click()
    field = bob.visible(f"{fourth} textarea")
    field.clear()
    field.send_keys("I will send the budget report to the board by Friday.", Keys.ENTER)
    bob.wait(lambda d: not bob.all(f"{fourth} textarea"), 10, "the correction was not saved")
    bob.find("#summarize-again").click()
    alice.wait(lambda d: "send the budget report" in alice.find(".items").text, 60, "alice missed the new summary")
    assert "send the budget report" in bob.find(".items").text
    alice.shot("summarized-again")

    # Bob leaves: Alice sees it.
    bob.quit()
    pages.remove(bob)
    alice.wait(lambda d: alice.viewers() == ["alice"], 30, "bob's leaving was not shown")
    assert not alice.all(".cursor-tag, .cursor-line, .editing-badge"), "bob's place stayed after he left"


def test_after_five_failed_reconnects_the_page_waits_for_a_manual_retry(server, pages):
    page = Page(server, "retry")
    pages.append(page)
    page.register("alice")
    page.create_meeting("Quiet")
    page.wait(lambda d: page.connection() == "live", 30)
    server.kill()
    # Backoff 1, 2, 4, 8, 10 s (each between half and all of it): failed after at most ~25 s.
    page.wait(lambda d: page.connection() == "failed", 60, "the page never gave up")
    assert "Could not reconnect" in page.find("#connection").text
    page.shot("failed")
    time.sleep(3)
    assert page.connection() == "failed", "it kept trying after 5 attempts"
    server.start()
    page.find("#connection button").click()
    page.wait(lambda d: page.connection() == "live", 30, "Retry did not reconnect")
    page.shot("live-again")

    # Deleting a meeting from the list asks first.
    meeting = page.driver.current_url.split("#/meetings/")[1]
    page.find("a[href='#/meetings']").click()
    page.visible(f"tr[data-meeting='{meeting}'] button.danger").click()
    alert = page.wait(lambda d: d.switch_to.alert, 10, "no confirmation asked")
    assert "cannot be undone" in alert.text
    alert.accept()
    page.wait(lambda d: not page.all(f"tr[data-meeting='{meeting}']"), 30, "the meeting is still listed")
    assert "No meetings yet" in page.find("main").text
    with pytest.raises(urllib.error.HTTPError) as gone:
        server.request("GET", f"/api/meetings/{meeting}", token=server.token("alice"))
    assert gone.value.code == 404


def wav_samples(data):
    """The samples of a 16-bit mono WAV's data chunk, as float64 (numpy)."""
    import numpy
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    at = 12
    while at + 8 <= len(data):
        chunk, size = data[at:at + 4], int.from_bytes(data[at + 4:at + 8], "little")
        if chunk == b"data":
            return numpy.frombuffer(data[at + 8:at + 8 + size], dtype="<i2").astype(numpy.float64), size
        at += 8 + size + size % 2
    raise AssertionError("no data chunk")


def lag_against(original, recorded, at, seconds=4.0, rate=16000):
    """Where `recorded[at : at + seconds]` best matches in `original`, minus `at`: the recording's
    delay at that point, in samples (found by FFT cross-correlation)."""
    import numpy
    piece = recorded[at:at + int(seconds * rate)]
    piece = piece - piece.mean()
    n = 1 << int(numpy.ceil(numpy.log2(len(original) + len(piece))))
    correlation = numpy.fft.irfft(numpy.fft.rfft(original, n) * numpy.conj(numpy.fft.rfft(piece, n)), n)
    return int(numpy.argmax(correlation[:len(original)])) - at


def test_a_meeting_recorded_from_the_microphone_survives_a_dropped_socket_and_a_server_restart(meeting_audio, pages):
    """Chromium's fake microphone plays the generated meeting at real time into the Record
    button: transcript segments appear before Stop, provisional ones while speech goes on; the server drops the ingest socket mid-way
    and the page resends what was not acknowledged; the server is then killed and started again,
    and the page reconnects and the recording goes on; after Stop the meeting completes with summary
    and action items, and the stored recording is exactly what the page captured, with no gap and
    no duplicate (its delay against the original is the same before and after the cut, give or
    take the fake microphone's own slips)."""
    data = tempfile.mkdtemp(prefix="parley-browser-record-")
    srv = ParleyServer("serve", data, log_dir=data, extra=("--diarizer", "classic", "--development",
                                                             "--set", "pipeline.live_partial=1"), timeout=60)
    try:
        page = Page(srv, "record", microphone=meeting_audio["short"])
        pages.append(page)
        page.register("alice")
        meeting = page.create_meeting("Recorded standup", diarizer="classic", speakers=3)
        card = page.visible("#record-card")

        def captured():
            return int(card.get_attribute("data-captured") or 0)

        def acked():
            return int(card.get_attribute("data-acked") or 0)

        page.find("#record").click()
        page.wait(lambda d: card.get_attribute("data-state") == "recording", 30, "recording did not start")
        page.wait(lambda d: page.find("#record-time").text not in ("", "0:00"), 10, "the clock does not run")
        page.shot("recording")
        page.wait(lambda d: page.all("li.segment"), 120, "no transcript segment while recording")
        assert card.get_attribute("data-state") == "recording", "the first segment came before Stop"
        page.shot("first-segment-while-recording")
        # While someone speaks, what was said so far shows (provisional, in italics).
        page.wait(lambda d: page.all("li.segment.provisional"), 60, "no provisional transcript while speech goes on")

        # The server cuts the ingest socket (no close frame); the page reconnects and resends.
        page.wait(lambda d: captured() >= 20 * 32000, 60, "20 s were not captured")
        status, _ = srv.request("POST", f"/api/dev/meetings/{meeting}/ingest/drop", token=srv.token("alice"))
        assert status == 204
        cut = captured()
        page.wait(lambda d: acked() >= cut + 5 * 32000, 60, "the page did not resume after the dropped socket")

        # The server is killed mid-recording and started again: the page keeps capturing,
        # reconnects, and the restarted server continues the same recording.
        srv.kill()
        killed = captured()
        page.wait(lambda d: "reconnecting" in page.find("#record-card").text, 30, "the page did not show the lost connection")
        assert card.get_attribute("data-state") == "recording", "a lost server must not stop the recording"
        srv.start()
        page.wait(lambda d: acked() >= killed + 5 * 32000, 90, "the page did not resume after the server restarted")
        page.shot("recording-after-server-restart")

        with open(meeting_audio["short"], "rb") as handle:
            original, original_bytes = wav_samples(handle.read())
        page.wait(lambda d: captured() >= original_bytes + 32000, 120, "the meeting did not play to its end")
        page.find("#record-stop").click()
        page.wait(lambda d: card.get_attribute("data-state") == "stopped", 60, "stop was not acknowledged")
        page.wait(lambda d: page.status() == "completed", 300, "the recorded meeting never completed")
        page.wait(lambda d: page.all(".items li[data-item]"), 30, "no action items")
        page.shot("recorded-meeting-completed", whole_page=True)
        assert not page.all("li.segment.provisional"), "a provisional segment was left on the page"
        _, view = srv.request("GET", f"/api/meetings/{meeting}", token=srv.token("alice"))
        assert len(view["segments"]) >= 5
        assert len(view["action_items"]) >= 1
        assert view["summary"]

        request = urllib.request.Request(f"{srv.base}/api/meetings/{meeting}/audio",
                                         headers={"Authorization": f"Bearer {srv.token('alice')}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.headers["Content-Type"] == "audio/wav"
            stored, stored_bytes = wav_samples(response.read())
        assert stored_bytes == captured(), "the server stored exactly what the page captured"
        before = lag_against(original, stored, at=5 * 16000)
        after = lag_against(original, stored, at=(cut // 2) + 15 * 16000)
        restarted = lag_against(original, stored, at=(killed // 2) + 10 * 16000)
        # Chromium's fake microphone slips by one of its 10 ms capture buffers (160 samples) now and
        # then on a busy machine; what the page sends goes in 100 ms frames, so a gap or a
        # duplicate in sending would shift the recording by 1600 samples or more.
        assert abs(before - after) < 800, f"the recording shifted across the cut: {before} then {after} samples"
        assert abs(before - restarted) < 800, \
            f"the recording shifted across the server restart: {before} then {restarted} samples"
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)


def tom_alone(folder):
    """One voice alone (the standup's Tom), as a person would record it for enrollment."""
    script = folder / "script.json"
    script.write_text(json.dumps({
        "speakers": {"tom": {"voice": "en-us+m3", "pitch": 35, "speed": 150}},
        "turns": [["tom", "Good morning everyone, this is my voice for the meeting notes."],
                  ["tom", "The installer works on all three platforms now, and the release is on track."],
                  ["tom", "I will send the migration numbers to the team before Friday afternoon."]]}))
    subprocess.run([PARLEY, "make-meeting", str(folder / "tom"), "--script", str(script)], check=True,
                   capture_output=True)
    return str(folder / "tom" / "meeting.wav")


def test_the_voices_page_enrolls_renames_and_deletes_a_voice(server, pages, tmp_path):
    tom = tom_alone(tmp_path)
    page = Page(server, "voices")
    pages.append(page)
    page.register("vera")
    page.find("#voices-link").click()
    page.visible("#enroll-name").send_keys("Tom")
    page.find("#enroll-file").send_keys(tom)
    page.find("#enroll-add").click()
    row = page.visible("tr[data-voice]", timeout=60)
    assert row.find_element(By.CSS_SELECTOR, ".voice-name").text == "Tom"
    assert "0 meetings" in row.text
    page.shot("voices")
    profiles = server.request("GET", "/api/voices", token=server.token("vera"))[1]["profiles"]
    assert [p["name"] for p in profiles] == ["Tom"]

    # Rename (a prompt), then delete (a confirmation): gone from the page and the API.
    row.find_element(By.CSS_SELECTOR, "button.link").click()
    prompt = page.wait(lambda d: d.switch_to.alert, 10, "no prompt")
    prompt.send_keys("Tom Baker")
    prompt.accept()
    page.wait(lambda d: page.find("tr[data-voice] .voice-name").text == "Tom Baker", 30, "rename not shown")
    page.find("tr[data-voice] button.danger").click()
    page.wait(lambda d: d.switch_to.alert, 10, "no confirmation").accept()
    page.wait(lambda d: not page.all("tr[data-voice]"), 30, "the voice was not deleted")
    assert server.request("GET", "/api/voices", token=server.token("vera"))[1]["profiles"] == []


def test_a_voice_is_enrolled_from_the_microphone(server, pages, tmp_path):
    """Chromium's fake microphone plays Tom alone; the Voices page records him until Stop and
    enrolls what it heard."""
    page = Page(server, "voices-microphone", microphone=tom_alone(tmp_path))
    pages.append(page)
    page.register("wendy")
    page.find("#voices-link").click()
    page.visible("#enroll-name").send_keys("Tom")
    page.find("#enroll-record").click()
    page.wait(lambda d: page.find("#enroll-record").text == "Stop", 30, "recording never started")
    # Most of what the microphone plays (about 12 s of speech).
    def seconds():
        words = page.find("#enroll-recorded").text.split()
        return int(words[1]) if len(words) > 1 and words[0] == "Recording…" and words[1].isdigit() else 0
    page.wait(lambda d: seconds() >= 8, 60, "no sound recorded")
    page.shot("recording")
    page.find("#enroll-record").click()
    page.wait(lambda d: page.find("#enroll-recorded").text.startswith("Recorded"), 30, "recording never stopped")
    page.find("#enroll-add").click()
    row = page.visible("tr[data-voice]", timeout=60)
    assert row.find_element(By.CSS_SELECTOR, ".voice-name").text == "Tom"
    page.shot("enrolled")
    profiles = server.request("GET", "/api/voices", token=server.token("wendy"))[1]["profiles"]
    assert [p["name"] for p in profiles] == ["Tom"]
    assert profiles[0]["prints"].get("classic-pitch-mfcc-20") == 1, profiles


@pytest.fixture
def suggesting_server():
    """A server that names nobody by voice without a person: every match is a suggestion."""
    data = tempfile.mkdtemp(prefix="parley-browser-")
    srv = ParleyServer("serve", data, log_dir=data, timeout=60,
                       extra=("--diarizer", "classic", "--set", "server.voice_recognition=suggest"))
    yield srv
    srv.stop()
    shutil.rmtree(data, ignore_errors=True)


def process_by_api(server, token, title, path):
    """A meeting made, uploaded and processed through the API; returns (id, view)."""
    meeting = server.request("POST", "/api/meetings", {"title": title}, token=token)[1]["id"]
    with open(path, "rb") as audio:
        server.request("PUT", f"/api/meetings/{meeting}/audio", raw=audio.read(), token=token,
                       content_type="audio/wav")
    wait_for(lambda: server.request("GET", f"/api/meetings/{meeting}", token=token)[1]["status"]
             in ("completed", "failed"), 300, f"{title} to be processed")
    return meeting, server.request("GET", f"/api/meetings/{meeting}", token=token)[1]


def test_suggested_names_are_confirmed_or_rejected_with_one_click(suggesting_server, meeting_audio, pages):
    server = suggesting_server
    token = server.register("sam")
    # The voices of one meeting named (which teaches them), then heard again in another.
    first, view = process_by_api(server, token, "Standup", meeting_audio["short"])
    for speaker, name in zip(sorted(s["id"] for s in view["speakers"]), ["Ana", "Ben", "Cleo"]):
        server.request("PUT", f"/api/meetings/{first}/speakers/{speaker}", {"name": name}, token=token)
    second, view = process_by_api(server, token, "Standup again", meeting_audio["short"])
    assert view["status"] == "completed"
    assert all("profile" not in s for s in view["speakers"]), view["speakers"]
    suggested = [s for s in view["speakers"] if s.get("suggestion")]
    assert len(suggested) >= 2, view["speakers"]

    page = Page(server, "suggestions")
    pages.append(page)
    page.login("sam", then=f"/meetings/{second}")
    yes, no = suggested[0], suggested[1]
    page.visible(f'li[data-speaker="{yes["id"]}"] .suggestion')
    page.shot("suggested")
    page.find(f'li[data-speaker="{yes["id"]}"] .suggestion button:nth-of-type(1)').click()
    page.wait(lambda d: not page.all(f'li[data-speaker="{yes["id"]}"] .suggestion')
              and page.find(f'li[data-speaker="{yes["id"]}"] .speaker-name').text == yes["suggestion"]["name"],
              30, "the accepted name is not shown")
    page.find(f'li[data-speaker="{no["id"]}"] .suggestion button:nth-of-type(2)').click()
    page.wait(lambda d: not page.all(f'li[data-speaker="{no["id"]}"] .suggestion'), 30, "the rejected suggestion stays")
    page.shot("answered")

    # As the server has it: the accepted name with its profile (now heard in two meetings), the
    # rejected one gone, and the page showing what the API says.
    speakers = {s["id"]: s for s in server.request("GET", f"/api/meetings/{second}", token=token)[1]["speakers"]}
    assert speakers[yes["id"]]["name"] == yes["suggestion"]["name"]
    assert speakers[yes["id"]].get("profile") == yes["suggestion"]["profile"]
    assert "suggestion" not in speakers[no["id"]] and "profile" not in speakers[no["id"]]
    assert page.find(f'li[data-speaker="{no["id"]}"] .speaker-name').text == speakers[no["id"]]["name"]
    profiles = {p["id"]: p for p in server.request("GET", "/api/voices", token=token)[1]["profiles"]}
    assert profiles[yes["suggestion"]["profile"]]["meetings"] == 2


def test_a_failing_meeting_shows_the_stage_and_the_reason_live(server, pages, tmp_path):
    """Not audio at all: processing fails, and the page says where and why as it happens (the
    numbered `error` event), without a reload; the page also shows the meeting's ID."""
    bogus = tmp_path / "notes.wav"
    bogus.write_bytes(b"these are my meeting notes, not a recording\n" * 200)
    page = Page(server, "failing")
    pages.append(page)
    page.register("fay")
    meeting = page.create_meeting("Not a recording")
    assert page.find("#meeting-id").text == meeting
    page.wait(lambda d: page.connection() == "live", 30, "never live")
    assert page.find("#connection").text.startswith("Live (WebSocket)")
    page.upload(str(bogus))
    alert = page.visible("[role=alert]", timeout=120)
    page.wait(lambda d: page.status() == "failed", 60, "the meeting never showed failed")
    page.shot("failed")
    alert_text = alert.text
    assert alert.text.startswith("Processing failed at "), alert.text
    assert page.all("ol.timeline li.failed[data-stage]")[0].get_attribute("data-stage") != "completed"
    # As a reload shows it too.
    page.driver.refresh()
    page.wait(lambda d: page.status() == "failed", 60, "not failed after a reload")
    assert page.visible("[role=alert]").text == alert_text
    error = server.request("GET", f"/api/meetings/{meeting}", token=server.token("fay"))[1]["error"]
    assert error["message"] in alert_text


def test_a_second_voice_over_another_is_drawn_fainter_on_the_timeline(server, pages):
    """A real AMI excerpt (Tests/Fixtures/ami, CC BY 4.0) through the neural diarizer: the turns
    it marks as a second voice over another speaker's are drawn fainter and say so."""
    excerpt = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "Fixtures", "ami", "ami_trn09", "meeting.wav")
    page = Page(server, "overlap")
    pages.append(page)
    page.register("otto")
    meeting = page.create_meeting("Real voices", diarizer="neural")
    page.upload(excerpt)
    page.wait(lambda d: page.status() == "completed", 300, "the meeting never completed")
    turns = server.request("GET", f"/api/meetings/{meeting}", token=server.token("otto"))[1]["turns"]
    marked = [t for t in turns if t.get("overlap")]
    assert marked and len(marked) < len(turns), turns
    page.wait(lambda d: len(page.all("svg.turns rect")) == len(turns), 30, "the timeline lacks turns")
    faint = page.all("svg.turns rect.over")
    assert len(faint) == len(marked)
    assert all(r.get_attribute("fill-opacity") == "0.45" for r in faint)
    titles = page.driver.execute_script(
        "return [...document.querySelectorAll('svg.turns rect.over title')].map(t => t.textContent)")
    assert all(t.endswith("(over another)") for t in titles), titles
    page.shot("overlap-timeline")


def test_the_owner_removes_a_member_and_their_open_page_loses_the_meeting(server, pages):
    owner = Page(server, "share-owner")
    member = Page(server, "share-member")
    pages.extend([owner, member])
    member.register("bea")
    owner.register("olga")
    meeting = owner.create_meeting("Shared then not")
    owner.visible("#share-user").send_keys("bea")
    owner.find("#share-user ~ button[type=submit]").click()
    owner.wait(lambda d: owner.all('.members li[data-member="bea"]'), 30, "the member is not listed")
    member.open(f"/meetings/{meeting}")
    member.wait(lambda d: member.connection() == "live", 30, "the member never watched live")
    owner.wait(lambda d: "bea" in [v.text for v in owner.all(".viewers li")], 30, "the member is not seen watching")
    owner.shot("shared")
    owner.find('.members li[data-member="bea"] button').click()
    owner.wait(lambda d: not owner.all('.members li[data-member="bea"]'), 30, "the member is still listed")
    member.wait(lambda d: member.connection() == "failed", 30, "the removed member's page kept the meeting")
    assert "no longer have access" in member.find("#connection").text
    member.shot("removed")
    assert server.request("GET", f"/api/meetings/{meeting}", token=server.token("olga"))[1]["members"] == []


def test_logging_out_closes_the_other_tabs_socket(server, pages):
    """Two tabs of one browser share the login; logging out in one ends the session on the server,
    which closes the other tab's socket (4001), and that tab goes to the login page."""
    page = Page(server, "logout-tabs")
    pages.append(page)
    page.register("lou")
    meeting = page.create_meeting("Two tabs")
    page.wait(lambda d: page.connection() == "live", 30, "the first tab never went live")
    first = page.driver.current_window_handle
    page.driver.switch_to.new_window("tab")
    page.open(f"/meetings/{meeting}")
    page.wait(lambda d: page.connection() == "live", 30, "the second tab never went live")
    second = page.driver.current_window_handle
    assert watching_sockets(server) == 2
    page.driver.switch_to.window(first)
    page.find("#logout").click()
    page.visible("#username")
    page.driver.switch_to.window(second)
    page.wait(lambda d: d.current_url.endswith("#/login") and page.all("#username"), 15,
              "the second tab kept its session after the logout")
    page.shot("second-tab-logged-out")
    # (The tab does not watch the storage: only its socket closing told it.) No socket is left.
    wait_for(lambda: watching_sockets(server) == 0, 10, "the sockets to close")


def watching_sockets(server):
    """The server's open meeting sockets, from /metrics."""
    text = urllib.request.urlopen(server.base + "/metrics", timeout=10).read().decode()
    return sum(int(float(line.split()[-1])) for line in text.splitlines() if line.startswith("parley_ws_connections "))


def test_search_and_my_action_items(server, meeting_audio, pages):
    token = server.register("sol")
    meeting, view = process_by_api(server, token, "Standup", meeting_audio["short"])
    assert view["status"] == "completed"
    # The longest word of a later line, as someone would remember it.
    segment = view["segments"][len(view["segments"]) // 2]
    word = max(("".join(c for c in w if c.isalpha()) for w in segment["text"].split()), key=len)
    page = Page(server, "search")
    pages.append(page)
    page.login("sol")
    page.visible("#search-q").send_keys(word + Keys.ENTER)
    page.wait(lambda d: page.all("li.search-hit"), 30, "no search results")
    page.shot("results")
    hits = page.all("li.search-hit")
    assert all(hit.get_attribute("data-meeting") == meeting for hit in hits)
    marks = [m.text.lower() for m in page.all("li.search-hit mark")]
    assert word.lower() in marks, marks
    said = [hit for hit in hits if hit.get_attribute("data-kind") == "segment"]
    assert said, [hit.text for hit in hits]
    said[0].find_element(By.CSS_SELECTOR, "a.hit-open").click()
    found = page.visible("li.segment.found")
    assert word.lower() in found.text.lower(), found.text
    # Playing from that moment (the hit's start), not from the beginning.
    start = next(s["start"] for s in view["segments"] if word.lower() in s["text"].lower())
    page.wait(lambda d: d.execute_script(
        "const a = document.querySelector('audio'); return a && !a.paused && a.currentTime >= arguments[0];",
        start), 30, "the recording never played from the hit")
    page.shot("opened-at-hit")
    # Nothing for words nobody said; the list page's search box leads back here.
    page.open("/search?q=xylophone%20zebra")
    page.wait(lambda d: "Nothing found" in page.find("#search-summary").text, 30, "no 'nothing found'")
    page.shot("nothing-found")

    # My action items: an item assigned to sol in the meeting's editor is on sol's list; ticking
    # it there is the meeting's edit, and takes it off the open list.
    assert not [i for i in view["action_items"] if (i.get("owner") or "").lower() == "sol"]
    page.open("/action-items")
    page.visible("#no-action-items")
    item = view["action_items"][0]
    page.open(f"/meetings/{meeting}")
    page.visible(f"li[data-item='{item['id']}'] button").click()
    Select(page.visible(f"#assignee-{item['id']}")).select_by_value("sol")
    page.find(".item-edit button[type=submit]").click()
    page.wait(lambda d: "assigned to sol" in page.find(f"li[data-item='{item['id']}'] .note").text, 30,
              "the assignment never showed")
    page.find("#action-items-link").click()
    row = page.visible(f"tr[data-meeting='{meeting}'][data-item='{item['id']}']", timeout=30)
    assert item["task"] in row.text, row.text
    page.shot("my-action-items")
    row.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
    page.wait(lambda d: "done" in (page.find(f"tr[data-item='{item['id']}']").get_attribute("class") or ""), 30,
              "the tick never took")
    stored = server.request("GET", f"/api/meetings/{meeting}", token=token)[1]["action_items"]
    assert next(i for i in stored if i["id"] == item["id"])["done"] is True
    page.open("/meetings")
    page.open("/action-items")
    page.wait(lambda d: page.all("#no-action-items"), 30, "the done item stayed on the open list")
    page.find("#show-done").click()
    page.visible(f"tr.done[data-item='{item['id']}']", timeout=30)
    # The meeting page's connection indicator went with it.
    assert not page.find("#connection").is_displayed()
    page.shot("done-items")


def test_the_meetings_list_follows_status_shares_and_assignments_live(server, meeting_audio, pages):
    """With the meetings list open and never reloaded, the user's socket (/ws/user) brings in a
    meeting made elsewhere, its status and duration as it is processed, a new title, a meeting
    another user shares (with a notice), an item that user assigns (a notice), and a removal;
    then the meeting's page shows a rename made by someone else."""
    page = Page(server, "live-list")
    pages.append(page)
    page.register("lia")
    lia = server.token("lia")
    otto = server.register("otto")
    page.visible("section[aria-label='Your meetings']")
    page.driver.execute_script("window.parleyNotReloaded = true")
    wait_for(lambda: user_sockets(server) == 1, 30, "the list's user socket")

    # Made and processed through the API (another tab, a script): the row appears and follows.
    meeting = server.request("POST", "/api/meetings", {"title": "Made elsewhere"}, token=lia)[1]["id"]
    row = f"tr[data-meeting='{meeting}']"
    page.visible(row, timeout=30)
    assert page.find(row).get_attribute("data-status") == "created"
    with open(meeting_audio["short"], "rb") as audio:
        server.request("PUT", f"/api/meetings/{meeting}/audio", raw=audio.read(), token=lia,
                       content_type="audio/wav")
    page.wait(lambda d: page.find(row).get_attribute("data-status") == "processing", 60, "never processing")
    page.shot("processing")
    page.wait(lambda d: page.find(row).get_attribute("data-status") == "completed", 300, "never completed")
    assert "–" not in page.find(f"{row} td:nth-child(3)").text, "no duration"
    server.request("PATCH", f"/api/meetings/{meeting}", {"title": "Renamed elsewhere"}, token=lia)
    page.wait(lambda d: "Renamed elsewhere" in page.find(row).text, 30, "the new title never showed")
    page.shot("completed-renamed")

    # Another user shares a meeting: it is listed, with a notice that leads to it.
    theirs = server.request("POST", "/api/meetings", {"title": "Otto's planning"}, token=otto)[1]["id"]
    server.request("POST", f"/api/meetings/{theirs}/members", {"username": "lia"}, token=otto)
    page.visible(f"tr[data-meeting='{theirs}']", timeout=30)
    shared = page.visible(".notice a", timeout=30)
    assert "otto shared “Otto's planning” with you" in shared.text, shared.text
    page.shot("shared-notice")
    # An item of lia's meeting assigned to her by otto (an editor now): a notice too.
    server.request("POST", f"/api/meetings/{meeting}/members", {"username": "otto", "can_edit": True}, token=lia)
    item = server.request("GET", f"/api/meetings/{meeting}", token=lia)[1]["action_items"][0]
    server.request("PATCH", f"/api/meetings/{meeting}/action-items/{item['id']}", {"assignee": "lia"}, token=otto)
    page.wait(lambda d: any("otto assigned you" in n.text for n in page.all(".notice a")), 30, "no assignment notice")
    page.shot("assigned-notice")
    # Otto takes his meeting back: it leaves the list.
    server.request("DELETE", f"/api/meetings/{theirs}/members/lia", token=otto)
    page.wait(lambda d: not page.all(f"tr[data-meeting='{theirs}']"), 30, "the unshared meeting stayed")
    assert page.driver.execute_script("return window.parleyNotReloaded") is True
    # On the meeting's page, a rename by the other editor shows in its heading.
    page.find(f"{row} a").click()
    page.visible("#rename-meeting")
    server.request("PATCH", f"/api/meetings/{meeting}", {"title": "Renamed by otto"}, token=otto)
    page.wait(lambda d: page.find("#meeting-title").text == "Renamed by otto", 30, "the heading kept the old title")
    page.shot("renamed-on-its-page")


def user_sockets(server):
    """The server's open user sockets (/ws/user), from /metrics."""
    text = urllib.request.urlopen(server.base + "/metrics", timeout=10).read().decode()
    return sum(int(float(line.split()[-1])) for line in text.splitlines()
               if line.startswith("parley_ws_user_connections "))
