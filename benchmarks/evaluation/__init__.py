"""The LFW benchmark: protocol files, metrics and the report of `manage.py evaluate lfw`."""
