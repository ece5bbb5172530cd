"""Thin Celery wrappers for the authms app's housekeeping."""

from celery import shared_task

from authms.tokens import revoked_tokens_purge


@shared_task(ignore_result=True)
def purge_revoked_tokens():
    return revoked_tokens_purge()
