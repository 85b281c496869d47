"""Telling people about automatic rollbacks and drift: a webhook POST.

The decision core's Events say what happened; those named in NOTIFIED_REASONS
are also posted to spec.notifications.webhook, as JSON or as a Slack-compatible
`{"text": ...}` body. Sending blocks (HTTP) and runs in the operator's worker
threads; a failure is reported, never raised into the reconcile loop.
"""

from modelrollout.notifications.message import NOTIFIED_REASONS, notification_body
from modelrollout.notifications.webhook import NotificationError, post_notification

__all__ = ["NOTIFIED_REASONS", "NotificationError", "notification_body", "post_notification"]
