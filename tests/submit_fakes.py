"""An in-memory provider account and clients that meet :class:`pipeline.enroll.providers.base.VoiceProvider`.

Used by the ledger, submit and voices tests to drive the submit logic through faults without HTTP:

* create faults, consumed one per ``create_voice`` call: ``ok``; ``lost_after`` (the voice is made, then the
  answer is lost: :class:`OutcomeUnknown`); ``lost_before`` (the request never arrived, but the caller
  cannot know: :class:`OutcomeUnknown`, no voice); ``crash`` (the voice is made, then the *process dies*:
  :class:`Killed`, a ``BaseException`` nothing should catch); ``sigkill`` (the same with a real
  ``SIGKILL``, for the subprocess test); ``reject`` (audio refused, no voice); ``quota`` / ``auth`` (no voice);
  ``deploy_reject`` (a CosyVoice-style voice that is made but fails review); ``leak`` (a buggy client whose
  error message carries the API key and a ``Bearer`` header); ``upload_lost`` / ``upload_crash`` (the
  preparatory upload's answer is lost / the process dies during it: before the client's ``on_send``, so
  the create itself was never sent); every other fault calls ``on_send`` first, as a real client does;
* find faults, one per ``find_voice`` call: ``ok`` or ``error`` (the list call itself failed);
* ``list_lag``: a new voice stays invisible to the next N list/find calls (an eventually consistent list).

Every network-like call is logged in ``cloud.calls`` (a review advances one step per ``query``); ``prepare_create`` is logged apart in
``cloud.prepared`` (it sends nothing). The account can be saved to and loaded from JSON, so a child process
can be killed mid-submit and its parent can inspect what the "provider" holds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fake_providers import fake_runtime

from pipeline.batch.manifest import ClipRow, write_rows
from pipeline.enroll.providers.base import (
    OutcomeUnknown,
    ProviderError,
    VoiceRecord,
)
from pipeline.enroll.providers.common import VoiceProvider

SECRET = "sk-TESTSECRET-7f3a9c1e55d04b2a"
"""A fake API key: tests assert it never shows up in any output."""

PROVIDER_OF = {
    "cosyvoice": "dashscope",
    "qwen-tts": "dashscope",
    "minimax": "minimax",
    "elevenlabs": "elevenlabs",
}
BASE_URL = "https://fake.example/api/v1"
PREVIEW_BYTES = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)


class Killed(BaseException):
    """The process died right after the provider created the voice (nothing may catch this)."""


@dataclass
class FakeVoice:
    voice_id: str
    name: str
    family: str
    target_model: str
    status: str
    created_at: str
    polls_left: int = 0
    settle_to: str = "ready"
    hidden_lists: int = 0


class FakeCloud:
    """One account at one provider region: voices of several families, a call log and a clock."""

    def __init__(self, *, persist: Path | None = None) -> None:
        self.voices: dict[str, FakeVoice] = {}
        self.graveyard: list[FakeVoice] = []  # deleted voices: their MiniMax ids are never reusable
        self.calls: list[tuple[str, str, str]] = []  # (method, family, detail)
        self.prepared: list[str] = []
        self.counter = 0
        self.persist = persist

    # -- persistence for the subprocess test
    def save(self) -> None:
        if self.persist is None:
            return
        data = {
            "voices": [asdict(v) for v in self.voices.values()],
            "graveyard": [asdict(v) for v in self.graveyard],
            "calls": self.calls,
            "counter": self.counter,
        }
        tmp = self.persist.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.persist)

    @classmethod
    def load(cls, path: Path) -> FakeCloud:
        cloud = cls(persist=path)
        if path.exists():
            data = json.loads(path.read_text())
            cloud.voices = {v["voice_id"]: FakeVoice(**v) for v in data["voices"]}
            cloud.graveyard = [FakeVoice(**v) for v in data["graveyard"]]
            cloud.calls = [tuple(c) for c in data["calls"]]  # type: ignore[misc]
            cloud.counter = data["counter"]
        return cloud

    def tick(self) -> str:
        self.counter += 1
        return f"2026-12-01T10:{self.counter // 60 % 60:02d}:{self.counter % 60:02d}+00:00"

    def voices_of(self, family: str) -> list[FakeVoice]:
        return [v for v in self.voices.values() if v.family == family]


class FakeProvider(VoiceProvider):
    """A client for one family on a :class:`FakeCloud`, with injectable faults.

    It is a :class:`~pipeline.enroll.providers.common.VoiceProvider` (on fake time), so the package's own
    review polling (``wait_until_settled``), remote records and request display serve it; a query moves a
    voice under review one step towards its verdict, as CosyVoice's does.
    """

    key_env = "FAKE_API_KEY"
    _interpret = staticmethod(lambda response, maybe_acted: None)  # it sends nothing: no answer to read
    _request_id_of = staticmethod(lambda response: None)

    def __init__(
        self,
        cloud: FakeCloud,
        family: str,
        *,
        base_url: str = BASE_URL,
        faults: Iterable[str] = (),
        find_faults: Iterable[str] = (),
        review_polls: int | None = None,
        list_lag: int = 0,
        preview_bytes: bytes = PREVIEW_BYTES,
    ) -> None:
        self.provider = PROVIDER_OF[family]  # type: ignore[misc]
        super().__init__(family=family, base_url=base_url, runtime=fake_runtime({}), require_key=False)
        self.cloud = cloud
        self.faults = list(faults)
        self.find_faults = list(find_faults)
        self.review_polls = (1 if family == "cosyvoice" else 0) if review_polls is None else review_polls
        self.list_lag = list_lag
        self.preview_bytes = preview_bytes

    def _log(self, method: str, detail: str = "") -> None:
        self.cloud.calls.append((method, self.family, detail))
        self.cloud.save()

    def _view(self, v: FakeVoice) -> VoiceRecord:
        return self._remote(
            v.voice_id, v.status, target_model=v.target_model, created_at=v.created_at, name=v.name
        )

    def _make(self, request: VoiceRecord, *, settle_to: str = "ready") -> FakeVoice:
        if self.family == "minimax":  # the client chooses the id; a repeat is answered 2039, no second voice
            existing = self.cloud.voices.get(request.name or "")
            if existing is not None:
                return existing
            if any(g.voice_id == request.name for g in self.cloud.graveyard):
                raise ProviderError(
                    "provider_bad_request", "voice id was used before (2039)", provider_code="2039"
                )
            voice_id = request.name or ""
        else:
            tail = hashlib.sha1(os.urandom(8)).hexdigest()[: 8 if self.family == "cosyvoice" else 6]
            voice_id = f"{request.target_model}-{request.name}-{tail}"
        voice = FakeVoice(
            voice_id=voice_id,
            name=request.name or "",
            family=self.family,
            target_model=request.target_model or "",
            status="deploying" if self.review_polls > 0 else settle_to,
            created_at=self.cloud.tick(),
            polls_left=self.review_polls,
            settle_to=settle_to,
            hidden_lists=self.list_lag,
        )
        self.cloud.voices[voice_id] = voice
        return voice

    # -- the protocol
    def prepare_create(
        self, request: VoiceRecord, *, preview_text: str | None = None, language: str | None = None
    ) -> list[dict[str, Any]]:
        self.cloud.prepared.append(request.name or "")
        size = Path(request.clip_path or "").stat().st_size
        body = {"model": "voice-enrollment", "input": {"prefix": request.name, "url": "<audio elided>"}}
        sizes = {"audio_bytes": size, "encoded_bytes": 4 * math.ceil(size / 3)}
        headers = {"Content-Type": "application/json"}
        return [self.show("POST", "services/audio/tts/customization", body, headers=headers, **sizes)]

    def create_voice(
        self,
        request: VoiceRecord,
        *,
        preview_text: str | None = None,
        language: str | None = None,
        on_send: Callable[[], object] | None = None,
    ) -> VoiceRecord:
        fault = self.faults.pop(0) if self.faults else "ok"
        self._log("create", f"{request.name} {fault}")
        if fault == "upload_lost":  # the preparatory upload's answer was lost: the create never went out
            raise OutcomeUnknown("upload: read timed out", request_id="req-upload")
        if fault == "upload_crash":
            raise Killed("killed during the upload, before the create was sent")
        if on_send is not None:
            on_send()
        if fault == "lost_before":
            raise OutcomeUnknown("read timed out", request_id="req-lost")
        if fault == "reject":
            raise ProviderError("provider_rejected", "Audio.PreprocessError: bad audio", http_status=400)
        if fault == "quota":
            raise ProviderError("provider_quota", "voice quota exhausted", http_status=403)
        if fault == "auth":
            raise ProviderError("provider_auth", "InvalidApiKey", http_status=401)
        if fault == "leak":
            raise ProviderError(
                "provider_bad_request",
                f"bad request: Authorization: Bearer {SECRET} (key {SECRET})",
                http_status=400,
            )
        voice = self._make(request, settle_to="rejected" if fault == "deploy_reject" else "ready")
        self.cloud.save()
        if fault == "crash":
            raise Killed(f"killed after creating {voice.voice_id}")
        if fault == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "lost_after":
            raise OutcomeUnknown("connection dropped after the request was sent", request_id="req-lost2")
        return dataclasses.replace(
            request, voice_id=voice.voice_id, status=voice.status, request_ids=[f"req-{self.cloud.counter}"]
        )

    def _visible(self) -> list[FakeVoice]:
        out = []
        for v in self.cloud.voices_of(self.family):
            if v.hidden_lists > 0:
                v.hidden_lists -= 1
                continue
            out.append(v)
        return out

    def find_voice(self, request: VoiceRecord, *, since: str | None = None) -> VoiceRecord | None:
        fault = self.find_faults.pop(0) if self.find_faults else "ok"
        self._log("find", f"{request.name} {fault}")
        if fault == "error":
            raise ProviderError("provider_unavailable", "list failed: 503", retryable=True, http_status=503)
        for v in self._visible():
            if v.name == request.name and v.target_model == request.target_model:
                return self._view(v)
        return None

    def query_voice(self, voice_id: str) -> VoiceRecord | None:
        self._log("query", voice_id)
        v = self.cloud.voices.get(voice_id)
        if v is None or v.family != self.family:
            return None
        if v.status == "deploying":  # one review step per look
            v.polls_left -= 1
            v.status = v.settle_to if v.polls_left <= 0 else v.status
            self.cloud.save()
        return self._view(v)

    def list_voices(self) -> list[VoiceRecord]:
        self._log("list")
        return [self._view(v) for v in self._visible()]

    def delete_voice(self, voice_id: str) -> None:
        self._log("delete", voice_id)
        v = self.cloud.voices.pop(voice_id, None)
        if v is not None:
            self.cloud.graveyard.append(v)
        self.cloud.save()

    def preview(self, voice_id: str, *, target_model: str, text: str) -> bytes:
        self._log("preview", voice_id)
        if voice_id not in self.cloud.voices:
            raise ProviderError("voice_gone", f"{voice_id} does not exist")
        return self.preview_bytes


def make_providers(cloud: FakeCloud, families: Sequence[str], **kwargs: object) -> dict[str, FakeProvider]:
    """One :class:`FakeProvider` per family on the same account (same kwargs for all)."""
    return {f: FakeProvider(cloud, f, **kwargs) for f in families}  # type: ignore[arg-type]


def make_run(
    out_dir: Path,
    *,
    speakers: Sequence[str] = ("alice", "bob"),
    families: Sequence[str] = ("cosyvoice", "qwen-tts", "minimax"),
    size: int = 3000,
    statuses: dict[tuple[str, str], str] | None = None,
    audio: Callable[[int], bytes] | None = None,
) -> list[ClipRow]:
    """A run folder with small fake clips and a ``clips.jsonl`` whose rows are ``ready`` (or as given).

    ``audio(i)`` gives the bytes of the i-th clip (real WAVs for the HTTP fake); default: ``size`` bytes
    of "RIFF" and noise, different per clip.
    """
    rows = []
    for index, (speaker, family) in enumerate((s, f) for s in speakers for f in families):
        rel = f"clips/{speaker}/{family}.wav"
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if audio is not None:
            data = audio(index)
        else:
            noise = hashlib.sha256(f"{speaker}/{family}".encode()).digest() * (size // 32 + 1)
            data = (b"RIFF" + noise)[:size]
        path.write_bytes(data)
        status = (statuses or {}).get((speaker, family), "ready")
        rows.append(
            ClipRow(
                speaker=speaker,
                family=family,
                status=status,  # type: ignore[arg-type]
                clip=rel if status != "rejected" else None,
                segments=[{"path": f"{speaker}/take1.wav", "start_s": 0.0, "end_s": 12.0}],
                duration_s=12.0,
                sample_rate=24000,
                key=hashlib.sha256(f"key:{speaker}:{family}".encode()).hexdigest(),
                clip_sha256=hashlib.sha256(data).hexdigest(),
            )
        )
    write_rows(out_dir / "clips.jsonl", rows)
    return rows
