"""What exists in the archive. The database is the source of truth; Milvus holds vectors keyed by Face.id."""

from pathlib import Path

from django.conf import settings
from django.db import models
from django.urls import reverse

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"})


class Asset(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image"
        VIDEO = "video"
        OTHER = "other"

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        RETRYING = "retrying"
        INDEXED = "indexed"
        NO_FACES = "no_faces", "no faces"
        FAILED = "failed"
        UNSUPPORTED = "unsupported"
        DUPLICATE = "duplicate"
        MISSING = "missing"

    # Statuses of an asset whose indexing has not ended.
    UNFINISHED = (Status.QUEUED, Status.PROCESSING, Status.RETRYING)

    path = models.CharField(max_length=1024, unique=True, help_text="Absolute path of the file.")
    sha256 = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    size = models.BigIntegerField(help_text="Bytes.")
    mtime = models.FloatField(help_text="The file's modification time (Unix seconds) when it was registered.")
    taken_at = models.FloatField(
        null=True, blank=True,
        help_text="Photos: when it was taken (EXIF DateTimeOriginal, Unix seconds); blank when the photo does not say.",
    )  # fmt: skip
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True, help_text="Why the file failed or was not indexed.")
    warning = models.TextField(
        blank=True, help_text="What went wrong without failing it, such as a damaged stretch of a video, in seconds."
    )
    worker_deaths = models.PositiveSmallIntegerField(
        default=0, help_text="Times the process indexing it died (killed, out of memory, over its time limit)."
    )
    task_id = models.CharField(
        max_length=64, blank=True, help_text="The one indexing task that may work on it; other deliveries do nothing."
    )
    task_sent = models.BooleanField(
        default=False, help_text="Whether that task reached the queue; the watcher sends it again if not."
    )
    claimed_by = models.CharField(
        max_length=64, blank=True,
        help_text="The task that last began indexing it: if the same task begins again, its worker died.",
    )  # fmt: skip
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates",
        help_text="The asset with the same content, which is indexed in this one's place.",
    )  # fmt: skip
    model_name = models.CharField(max_length=64, blank=True, help_text="Face model that embedded its faces.")
    preview = models.ImageField(
        upload_to="previews/%Y/%m/", blank=True, help_text="A small upright JPEG of the photo, for result pages."
    )
    width = models.PositiveIntegerField(null=True, blank=True, help_text="Pixels, upright (after EXIF or rotation).")
    height = models.PositiveIntegerField(null=True, blank=True, help_text="Pixels, upright (after EXIF or rotation).")
    duration = models.FloatField(null=True, blank=True, help_text="Videos: seconds from the first frame to the last.")
    frames_total = models.PositiveIntegerField(default=0, help_text="Videos: how many frames will be sampled.")
    frames_done = models.PositiveIntegerField(default=0, help_text="Videos: how many sampled frames are indexed.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        """The asset's page (the admin's "view on site" goes there)."""
        return reverse("search:asset", args=[self.pk])

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def date(self) -> float:
        """When it was taken where the photo says, else the file's time (Unix seconds): what people pages sort by."""
        return self.taken_at if self.taken_at is not None else self.mtime

    @property
    def is_video(self) -> bool:
        return self.kind == Asset.Kind.VIDEO

    @property
    def progress(self) -> str:
        """Videos: frames indexed of frames to sample, as the admin shows it."""
        if not self.is_video or not self.frames_total:
            return ""
        return f"{self.frames_done}/{self.frames_total} ({100 * self.frames_done // self.frames_total}%)"

    @property
    def display_path(self) -> str:
        """The path inside the inbox when it is there (names repeat across folders), else the whole path."""
        path = Path(self.path)
        return str(path.relative_to(settings.INBOX_DIR)) if path.is_relative_to(settings.INBOX_DIR) else self.path

    @staticmethod
    def kind_of(path: Path) -> "Asset.Kind":
        suffix = path.suffix.lower()
        if suffix in PHOTO_SUFFIXES:
            return Asset.Kind.IMAGE
        if suffix in VIDEO_SUFFIXES:
            return Asset.Kind.VIDEO
        return Asset.Kind.OTHER


class Frame(models.Model):
    """A frame sampled from a video; only frames that hold a face keep a thumbnail."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="frames")
    index = models.PositiveIntegerField(help_text="Counts sampled frames from 0.")
    timestamp = models.FloatField(help_text="Seconds from the video's first frame (its presentation time).")
    thumbnail = models.ImageField(upload_to="frames/%Y/%m/", blank=True)

    class Meta:
        ordering = ["asset_id", "index"]
        constraints = [models.UniqueConstraint(fields=["asset", "index"], name="one_frame_per_index")]

    def __str__(self) -> str:
        return f"{self.asset.name} at {self.timestamp:.2f} s"


class Face(models.Model):
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="faces")
    frame = models.ForeignKey(
        Frame, null=True, blank=True, on_delete=models.CASCADE, related_name="faces", help_text="Videos only."
    )
    left = models.FloatField(help_text="Box edges in pixels of the upright photo or frame.")
    top = models.FloatField()
    right = models.FloatField()
    bottom = models.FloatField()
    probability = models.FloatField(help_text="MTCNN's detection probability, 0-1.")
    crop = models.ImageField(upload_to="crops/%Y/%m/", blank=True)
    model_name = models.CharField(max_length=64)
    person = models.ForeignKey(
        "people.Person", null=True, blank=True, on_delete=models.SET_NULL, related_name="faces",
        help_text="Who this is, by clustering or by a user.",
    )  # fmt: skip
    person_pinned = models.BooleanField(
        default=False, help_text="A user put it with this person (or took it out): clustering never moves it."
    )
    person_distance = models.FloatField(
        null=True, blank=True, help_text="Distance to the person's nearest other face when it was assigned."
    )
    track = models.PositiveIntegerField(
        null=True, blank=True, db_index=True,
        help_text="Videos: the first face of the track this one continues (one person on screen without a break).",
    )  # fmt: skip
    added_by_hand = models.BooleanField(default=False, help_text="A user drew its box: the detector had missed it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["asset_id", "id"]

    def __str__(self) -> str:
        return f"face {self.pk} in {self.asset.name}"

    @property
    def box(self) -> list[float]:
        return [self.left, self.top, self.right, self.bottom]


class Track(models.Model):
    """One person continuously on screen in a video, as faces linked across sampled frames: the moment it makes.

    Its edges lie between sampled frames: at a shot cut where the track begins or ends at one, else refined by
    decoding the stretch between the two sampled frames (media_index/spans.py); provisional until then.
    """

    face = models.OneToOneField(
        Face, primary_key=True, on_delete=models.CASCADE, related_name="+",
        help_text="Its first face: the track's faces hold this face's id in Face.track.",
    )  # fmt: skip
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="tracks")
    start = models.FloatField(help_text="Seconds from the video's first frame: the first frame with the person.")
    end = models.FloatField(help_text="Seconds from the video's first frame: the end of the last frame with them.")
    start_settled = models.BooleanField(default=False, help_text="Whether start is final (refined, or a shot cut).")
    end_settled = models.BooleanField(default=False, help_text="Whether end is final (the track has ended).")

    class Meta:
        ordering = ["asset_id", "start"]

    def __str__(self) -> str:
        return f"track {self.pk} in {self.asset.name}, {self.start:.2f}-{self.end:.2f} s"


class Stretch(models.Model):
    """A part of a long video's timeline that one task indexes while others index the rest (media_index/stretches.py).

    Its frames are stored with indexes from `first_index`, a range no other stretch uses; once every stretch is
    done, the asset's task renumbers them in order, joins tracks across the boundaries and settles their edges.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        RETRYING = "retrying"
        DONE = "done"

    # Frame indexes each stretch may use: stretch n numbers its frames from n x FRAME_RANGE. No stretch samples this
    # many frames, and stretches.MAX_STRETCHES of them keep indexes under the 2^31 of the database's column.
    FRAME_RANGE = 1_000_000

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="stretches")
    number = models.PositiveIntegerField(help_text="Counts the video's stretches from 0, in time order.")
    start = models.FloatField(help_text="Seconds from the first frame: its first sampling interval starts here.")
    end = models.FloatField(null=True, blank=True, help_text="Where the next stretch starts; blank for the last.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    task_id = models.CharField(max_length=64, blank=True, help_text="The one task that may index it.")
    task_sent = models.BooleanField(default=False, help_text="Whether that task reached the queue.")
    claimed_by = models.CharField(max_length=64, blank=True, help_text="The task that last began indexing it.")
    worker_deaths = models.PositiveSmallIntegerField(default=0)
    frames_done = models.PositiveIntegerField(default=0, help_text="Its sampled frames stored so far.")

    class Meta:
        ordering = ["asset_id", "number"]
        constraints = [models.UniqueConstraint(fields=["asset", "number"], name="one_stretch_per_number")]

    def __str__(self) -> str:
        return f"{self.asset.name}, {self.describe()}"

    @property
    def first_index(self) -> int:
        return self.number * self.FRAME_RANGE

    def describe(self) -> str:
        return f"stretch {self.number} ({self.start:.1f} s to {'the end' if self.end is None else f'{self.end:.1f} s'})"


class Calibration(models.Model):
    """How distances of one face model map to "same person" and to the 0-100 score, measured by `evaluate`."""

    model_name = models.CharField(max_length=64, db_index=True)
    threshold = models.FloatField(help_text="L2 distance below which two faces are called the same person.")
    midpoint = models.FloatField(help_text="Distance at which the fitted probability of the same person is 0.5.")
    slope = models.FloatField(help_text="Steepness of the fitted logistic curve, per unit of distance.")
    accuracy = models.FloatField(help_text="Verification accuracy measured with this threshold (mean over folds).")
    identification_threshold = models.FloatField(
        null=True, blank=True,
        help_text="Distance below which a face is given a known person's name (strangers: at most 5% of the time).",
    )  # fmt: skip
    identification_curve = models.JSONField(
        null=True, blank=True,
        help_text="The identification threshold by the number of known faces: a list of [gallery faces, distance].",
    )  # fmt: skip
    pairs = models.PositiveIntegerField(help_text="How many labelled pairs it was fitted on.")
    source = models.CharField(max_length=200, help_text="The data it was measured on.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"

    def __str__(self) -> str:
        return f"{self.model_name}: threshold {self.threshold:.3f} ({self.source})"
