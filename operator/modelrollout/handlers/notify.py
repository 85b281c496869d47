"""Glue for notifications: after a plan's status is written, post its notified
Events (rollback, drift) to the webhook. Runs in a worker thread, bounded by the
webhook's timeout; a failure is logged and returned as a Warning Event, so the
reconcile goes on and `kubectl describe` shows it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from modelrollout.api.reasons import Reason
from modelrollout.kube.secrets import SecretUnavailableError, secret_text
from modelrollout.notifications import (
    NOTIFIED_REASONS,
    NotificationError,
    notification_body,
    post_notification,
)
from modelrollout.rollout import Event

if TYPE_CHECKING:
    from datetime import datetime

    from kubernetes import client

    from modelrollout.api import ModelDeploymentSpec
    from modelrollout.api.ownership import Owner
    from modelrollout.rollout import Plan

logger = logging.getLogger(__name__)


def notify(
    api: client.ApiClient,
    owner: Owner,
    spec: ModelDeploymentSpec,
    plan: Plan,
    now: datetime,
) -> tuple[Event, ...]:
    """Warning Events for notifications that failed; () when all went out."""
    webhook = spec.notifications.webhook
    events = [event for event in plan.events if event.reason in NOTIFIED_REASONS]
    if webhook is None or not events:
        return ()
    where = f"{owner.namespace}/{owner.name}"
    try:
        url = secret_text(api, owner.namespace, webhook.url_secret_ref)
    except SecretUnavailableError as error:
        logger.warning("%s: notification not sent: %s", where, error)
        return (Event(Reason.NOTIFICATION_FAILED, f"notification not sent: {error}", "Warning"),)
    failures = []
    for event in events:
        body = notification_body(
            webhook.format,
            namespace=owner.namespace,
            name=owner.name,
            event=event,
            status=plan.new_status,
            at=now,
        )
        try:
            post_notification(url, body, webhook.timeout_seconds)
        except NotificationError as error:
            secret = f"Secret {webhook.url_secret_ref.name} key {webhook.url_secret_ref.key}"
            message = f"{event.reason} notification to the webhook in {secret} failed: {error}"
            logger.warning("%s: %s", where, message)
            failures.append(Event(Reason.NOTIFICATION_FAILED, message, "Warning"))
        else:
            logger.info("%s: %s notification sent", where, event.reason)
    return tuple(failures)
