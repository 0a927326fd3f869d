from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('media_index', '0009_stretch'),
    ]

    operations = [
        migrations.AddField(
            model_name='calibration',
            name='identification_curve',
            field=models.JSONField(blank=True, help_text='The identification threshold by the number of known faces: a list of [gallery faces, distance].', null=True),
        ),
    ]
