"""Helpers the tests share: a headless Chromium, the static SQL-formatting scan, the Celery worker hostname."""
