"""Dispatch: the controller applies plans; handlers run attempts; Celery or an
embedded loop carries the work between them."""
