from django import forms
from django.conf import settings

from media_index.models import PHOTO_SUFFIXES


class SearchForm(forms.Form):
    photo = forms.ImageField(
        help_text="A photo of the person: JPEG, PNG, WebP, BMP or TIFF.",
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(sorted(PHOTO_SUFFIXES))}),
    )

    def clean_photo(self):
        photo = self.cleaned_data["photo"]
        if photo.size > settings.MAX_UPLOAD_BYTES:
            limit = settings.MAX_UPLOAD_BYTES // (1024 * 1024)
            raise forms.ValidationError(f"The photo is larger than {limit} MB (REVSEARCH_MAX_UPLOAD_MB).")
        suffix = "." + photo.name.rsplit(".", 1)[-1].lower() if "." in photo.name else ""
        if suffix not in PHOTO_SUFFIXES:
            raise forms.ValidationError(f"{photo.name}: upload a JPEG, PNG, WebP, BMP or TIFF photo.")
        return photo
