"""Speech to text: ``POST /audio/transcriptions`` (GLM-ASR).

A multipart form: ``model``, the audio as ``file`` (or ``file_base64``; ``file`` wins when both come), and the
optional ``prompt``, ``hotwords``, ``stream``, ``request_id``, ``user_id``. The platform takes WAV and MP3 of at
most 25 MB and 30 seconds; the emulator reads the duration from the file (a WAV's header, an MP3's frames) and
refuses past either, as it refuses any other format.

What the emulator "hears" is deterministic: the runs of printable ASCII (four characters or more) in the audio's
sample data, in order (a test embeds its words that way); audio without any is silence, an empty transcript.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass

from .errors import ApiError, bad_request
from .forms import Form

ASR_MODELS = ("glm-asr-2512", "glm-asr")
MAX_BYTES = 25 * 1024 * 1024
MAX_SECONDS = 30.0
_SPOKEN = re.compile(rb"[ -~]{4,}")


@dataclass(frozen=True)
class Transcription:
    model: str
    text: str
    stream: bool
    seconds: float


def transcription(form: Form | None, body: object = None) -> Transcription:
    """Check a transcription form (or a JSON body, which can carry only ``file_base64``) and "hear" its audio."""
    if form is None:
        if not isinstance(body, dict):
            raise bad_request("The request must be a multipart/form-data form with model and file.")
        form = Form({k: _field(v) for k, v in body.items() if isinstance(v, str | bool | int | float)})
    model = form.fields.get("model", "").strip()
    if not model:
        raise ApiError(400, "1213", "The model parameter was not received.")
    if model not in ASR_MODELS:
        raise ApiError(400, "1211", f"Model not found: {model}")
    upload = form.files.get("file")
    if upload is not None:
        data = upload.data
    elif "file_base64" in form.fields:
        try:
            data = base64.b64decode(form.fields["file_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("file_base64 is not valid base64.") from None
    else:
        raise ApiError(400, "1213", "The file parameter was not received.")
    user_id = form.fields.get("user_id")
    if user_id is not None and not 6 <= len(user_id) <= 128:
        raise bad_request("user_id must be 6 to 128 characters long.")
    stream = form.fields.get("stream", "false").strip().lower()
    if stream not in ("true", "false"):
        raise bad_request(f"stream must be true or false; got {stream!r}.")
    if len(data) > MAX_BYTES:
        raise bad_request(f"The audio file is {len(data):,} bytes; at most 25 MB is accepted.")
    seconds, samples = _wav(data) if data[:4] == b"RIFF" and data[8:12] == b"WAVE" else _mp3(data)
    if seconds > MAX_SECONDS:
        raise bad_request(f"The audio is {seconds:.1f} seconds long; at most 30 seconds is accepted.")
    heard = " ".join(run.decode("ascii").strip() for run in _SPOKEN.findall(samples))
    return Transcription(model, " ".join(heard.split()), stream == "true", seconds)


def _field(value: str | bool | float) -> str:
    """A JSON value as the form field it stands for."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _unsupported() -> ApiError:
    return bad_request("Unsupported audio format: only wav and mp3 files are accepted.")


def _wav(data: bytes) -> tuple[float, bytes]:
    """Duration (from the format's byte rate and the data's size) and the sample data of a WAV file."""
    position, byte_rate, samples = 12, 0, None
    while position + 8 <= len(data):
        chunk, size = data[position : position + 4], struct.unpack_from("<I", data, position + 4)[0]
        body = data[position + 8 : position + 8 + size]
        if chunk == b"fmt " and len(body) >= 16:
            byte_rate = struct.unpack_from("<I", body, 8)[0]
        elif chunk == b"data":
            samples = body
            break
        position += 8 + size + (size & 1)
    if not byte_rate or samples is None:
        raise bad_request("The WAV file is damaged: it has no fmt or data chunk.")
    return len(samples) / byte_rate, samples


_BITRATES = {
    (3, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 1): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
"""kbit/s by (MPEG-1 = 3 / MPEG-2 and 2.5 = 2, layer I = 3 / II = 2 / III = 1) and the header's index."""
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3(data: bytes) -> tuple[float, bytes]:
    """Duration (the frames counted) and the frames' bodies of an MPEG audio file; not MPEG audio: refused."""
    position = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | data[9] & 0x7F
        position = 10 + size + (10 if data[5] & 0x10 else 0)
    seconds, bodies, frames = 0.0, bytearray(), 0
    while position + 4 <= len(data):
        frame = _frame(data[position : position + 4])
        if frame is None:
            if frames == 0:
                raise _unsupported()
            break  # trailing tags or garbage end the audio
        length, samples, rate = frame
        bodies += data[position + 4 : position + length]
        seconds += samples / rate
        frames += 1
        position += length
    if frames == 0:
        raise _unsupported()
    return seconds, bytes(bodies)


def _frame(header: bytes) -> tuple[int, int, int] | None:
    """(frame bytes, samples, sample rate) of an MPEG audio frame header, or None when it is not one."""
    if header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = header[1] >> 3 & 3, header[1] >> 1 & 3
    bitrate_index, rate_index, padding = header[2] >> 4, header[2] >> 2 & 3, header[2] >> 1 & 1
    if version == 1 or layer == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    family = 3 if version == 3 else 2
    bitrate = _BITRATES[(family, layer)][bitrate_index] * 1000
    rate = _RATES[version][rate_index]
    if layer == 3:
        return (12 * bitrate // rate + padding) * 4, 384, rate
    per_frame = 1152 if layer == 2 or version == 3 else 576
    return per_frame // 8 * bitrate // rate + padding, per_frame, rate
