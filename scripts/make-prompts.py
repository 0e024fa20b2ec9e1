#!/usr/bin/env python3
"""Makes the recorded prompts a waiting caller hears (position in the queue
and expected wait) in the three languages, with Debian's espeak-ng, as
8 kHz mono G.711 mu-law files in crates/media/prompts/<lang>/<name>.ul,
which the media crate embeds in the binary. Run it again after changing a
text below; the files are committed, so building Seatline never needs
espeak-ng, a network or this script. espeak-ng's output is the same on
every run, so the files only change when a text does.

    apt-get install espeak-ng && python3 scripts/make-prompts.py
"""

import audioop  # Debian 12's Python 3.11 has it (deprecated, removed in 3.13)
import os
import subprocess
import sys
import tempfile
import wave

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "crates", "media", "prompts")

# (folder, espeak-ng voice, words per minute, texts by clip name, 1-20)
LANGS = [
    ("en-US", "en-us", 150, {
        "you_are": "You are caller number",
        "in_queue": "in the queue.",
        "wait_about": "Your expected wait is about",
        "minutes": "minutes.",
        "wait_short": "Your expected wait is less than a minute.",
        "more_than_20": "more than twenty",
    }, ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen", "twenty"]),
    ("es-MX", "es-419", 150, {
        "you_are": "Usted es la llamada número",
        "in_queue": "en la fila.",
        "wait_about": "El tiempo de espera estimado es de unos",
        "minutes": "minutos.",
        "wait_short": "El tiempo de espera estimado es de menos de un minuto.",
        "more_than_20": "más de veinte",
    }, ["uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez",
        "once", "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete",
        "dieciocho", "diecinueve", "veinte"]),
    ("zh-CN", "cmn", 140, {
        "you_are": "您是第",
        "in_queue": "位来电。",
        "wait_about": "预计等待约",
        "minutes": "分钟。",
        "wait_short": "预计等待不到一分钟。",
        "more_than_20": "二十多",
    }, ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十",
        "十一", "十二", "十三", "十四", "十五", "十六", "十七", "十八", "十九", "二十"]),
]

QUIET = 200  # below this (of 32767) a sample counts as silence
KEEP = 0.04  # seconds of silence kept at each end


def speak(voice, wpm, text):
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", f.name, text], check=True)
        with wave.open(f.name) as w:
            assert w.getnchannels() == 1 and w.getsampwidth() == 2, "espeak-ng: mono 16-bit"
            rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    samples = [int.from_bytes(pcm[i:i + 2], "little", signed=True) for i in range(0, len(pcm), 2)]
    loud = [i for i, s in enumerate(samples) if abs(s) > QUIET]
    if not loud:
        sys.exit(f"espeak-ng said nothing for {text!r}")
    keep = int(KEEP * rate)
    a, b = max(0, loud[0] - keep), min(len(samples), loud[-1] + keep)
    pcm = pcm[2 * a:2 * b]
    pcm, _ = audioop.ratecv(pcm, 2, 1, rate, 8000, None)
    return audioop.lin2ulaw(pcm, 2)


def main():
    for folder, voice, wpm, texts, numbers in LANGS:
        clips = dict(texts)
        clips.update({f"n{i + 1}": t for i, t in enumerate(numbers)})
        os.makedirs(os.path.join(OUT, folder), exist_ok=True)
        for name, text in clips.items():
            with open(os.path.join(OUT, folder, f"{name}.ul"), "wb") as f:
                f.write(speak(voice, wpm, text))
    print(f"prompts written to {OUT}")


if __name__ == "__main__":
    main()
