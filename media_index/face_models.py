"""The face models faces can be embedded with, one entry per REVSEARCH_FACE_MODEL key.

Settings take the keys from here, the engine builds the entry's embedder, and the vector store sizes its
collection by the entry's dimension. Importing it loads no model library, so settings can read it.
"""

from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class FaceModel:
    key: str
    # Stored with every face, so that embeddings of different models are never compared.
    stored_name: str
    dimension: int
    # How the embedder is built: "facenet" runs InceptionResnetV1 on MTCNN's crops with these weights
    # ("casia-webface" is built by install_face_weights; "vggface2" is facenet-pytorch's own download);
    # "dlib" runs dlib's ResNet encoder on MTCNN's boxes (an evaluation baseline, from requirements/eval.txt).
    family: str
    weights: str = ""


DEFAULT = "casia-webface"
FACE_MODELS = {
    model.key: model
    for model in (
        FaceModel("casia-webface", "facenet-20180408-casia-webface", 512, "facenet", "casia-webface"),
        FaceModel("vggface2", "facenet-20180402-vggface2", 512, "facenet", "vggface2"),
        FaceModel("dlib-resnet", "dlib-resnet-v1", 128, "dlib"),
    )
}


def get(key: str, source: str = "model") -> FaceModel:
    """The entry for key, or ImproperlyConfigured naming the setting (source) and the choices."""
    try:
        return FACE_MODELS[key]
    except KeyError:
        raise ImproperlyConfigured(f"{source}={key!r}: choose one of {', '.join(FACE_MODELS)}") from None
