"""Deleting an asset anywhere (admin, shell, cascade) also deletes its vectors and crop files."""

from django.db.models.signals import pre_delete
from django.dispatch import receiver

from . import services
from .models import Asset


@receiver(pre_delete, sender=Asset)
def _forget_faces(sender, instance: Asset, **_kwargs) -> None:
    services.clear_index(instance)
