"""Deleting an asset anywhere (admin, shell, cascade) also deletes its vectors and files, and a copy takes over."""

from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver

from . import intake, removal
from .models import Asset


@receiver(pre_delete, sender=Asset)
def _forget_faces(sender, instance: Asset, **_kwargs) -> None:
    removal.clear_index(instance)


@receiver(post_delete, sender=Asset)
def _copy_takes_over(sender, instance: Asset, **_kwargs) -> None:
    if instance.duplicate_of_id is None:
        intake.adopt_orphan_copies(instance)
