"""REVSEARCH_FACE_PRECISION: bfloat16 only where the processor has it, and embeddings that stay FaceNet's."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from media_index import face_engine, face_precision, face_weights
from tests.conftest import SAMPLES

AVX512_BF16 = frozenset({"fpu", "avx512f", "avx512_bf16"})
AMX = frozenset({"fpu", "avx512f", "amx_tile", "amx_bf16"})
PLAIN_AVX512 = frozenset({"fpu", "avx2", "avx512f", "avx512bw"})
HAS_BFLOAT16 = bool(set(face_precision.BFLOAT16_FLAGS) & face_precision.cpu_flags())


@pytest.mark.parametrize(("flags", "reason"), [(AVX512_BF16, "cpu has avx512_bf16"), (AMX, "cpu has amx_bf16")])
@pytest.mark.parametrize("asked", ["auto", "bfloat16"])
def test_bfloat16_where_the_processor_has_it(flags, reason, asked, caplog) -> None:
    chosen = face_precision.choose(asked, flags)
    assert (chosen.dtype, chosen.name, chosen.reason) == (torch.bfloat16, "bfloat16", reason)
    assert not caplog.records


def test_auto_is_float32_without_bfloat16_instructions(caplog) -> None:
    chosen = face_precision.choose("auto", PLAIN_AVX512)
    assert (chosen.dtype, chosen.name) == (torch.float32, "float32")
    assert chosen.reason == "cpu has neither amx_bf16 nor avx512_bf16"
    assert not caplog.records  # auto asked for nothing that it could not have


def test_forced_float32_wins_over_the_processor() -> None:
    chosen = face_precision.choose("float32", AMX)
    assert (chosen.dtype, chosen.reason) == (torch.float32, "REVSEARCH_FACE_PRECISION=float32")


def test_bfloat16_asked_without_the_instructions_falls_back_with_a_warning(caplog) -> None:
    caplog.set_level(logging.WARNING, "media_index.face_precision")
    chosen = face_precision.choose("bfloat16", PLAIN_AVX512)
    assert chosen.dtype == torch.float32
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "REVSEARCH_FACE_PRECISION=bfloat16" in record.message and "float32" in record.message


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="'float16': choose one of auto, float32, bfloat16"):
        face_precision.choose("float16", AMX)


def test_flags_are_read_from_cpuinfo(tmp_path, monkeypatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\nbugs\t\t: spectre_v1\n\n"
        "processor\t: 1\nflags\t\t: fpu avx512f avx512_bf16\n"
    )
    monkeypatch.setattr(face_precision, "CPUINFO", cpuinfo)
    assert face_precision.cpu_flags() == {"fpu", "avx512f", "avx512_bf16"}


def test_without_cpuinfo_torch_is_asked(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(face_precision, "CPUINFO", tmp_path / "missing")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert face_precision.cpu_flags() == frozenset()
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert face_precision.cpu_flags() == {"avx512_bf16"}


def test_a_network_in_bfloat16_hands_back_float32() -> None:
    class TwoOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.linear(batch), batch

    wrapped = face_precision.InBfloat16(TwoOutputs())
    batch = torch.rand(5, 4)
    computed, passed = wrapped(batch)
    assert computed.dtype == passed.dtype == torch.float32
    assert torch.equal(computed, computed.bfloat16().float())  # computed in bfloat16
    assert torch.allclose(computed, wrapped.net.linear(batch), atol=0.05)
    assert next(wrapped.parameters()).dtype == torch.float32  # what facenet-pytorch casts its input to


@pytest.fixture(scope="module")
def weights() -> None:
    face_weights.install_weights()


def embeddings_at(precision: str, settings) -> np.ndarray:
    """The embeddings of the two people of a real photo, with FaceNet at `precision`: float32 unit vectors."""
    settings.FACE_PRECISION = precision
    with Image.open(SAMPLES / "two_people.jpg") as image:
        faces = face_engine.find_faces(image.convert("RGB"))
    embeddings = np.stack([face.embedding for face in faces])
    assert embeddings.dtype == np.float32 and embeddings.shape == (2, 512)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    return embeddings


@pytest.mark.shared_data
@pytest.mark.skipif(not HAS_BFLOAT16, reason="this processor has neither amx_bf16 nor avx512_bf16")
def test_bfloat16_embeddings_are_float32_unit_vectors_near_the_float32_ones(weights, settings) -> None:
    float32 = embeddings_at("float32", settings)
    bfloat16 = embeddings_at("bfloat16", settings)
    assert face_engine.precision() == "embedder-bfloat16"
    assert not np.array_equal(float32, bfloat16)  # it did run in bfloat16
    # 0.023 at most on 8,484 LFW faces (docs/performance.md); another person is about 1 away.
    assert np.linalg.norm(float32 - bfloat16, axis=1).max() < 0.05
    assert np.linalg.norm(float32[0] - bfloat16[1]) > 0.5


@pytest.mark.shared_data
def test_bfloat16_asked_on_a_processor_without_it_runs_in_float32(weights, settings, monkeypatch) -> None:
    float32 = embeddings_at("float32", settings)
    monkeypatch.setattr(face_engine, "_loaded", {})
    monkeypatch.setattr(face_precision, "cpu_flags", lambda: PLAIN_AVX512)
    fallen_back = embeddings_at("bfloat16", settings)
    assert face_engine.precision() == "float32"
    assert np.array_equal(float32, fallen_back)
