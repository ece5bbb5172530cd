"""Prints messages instead of sending them: the embedded run's SMS (and optionally email) provider."""

import logging

from providers.base import OutgoingMessage, Provider, SendResult

logger = logging.getLogger("providers.console")


class ConsoleProvider(Provider):
    channels = frozenset({"sms", "email", "push"})
    max_batch_size = 1000

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        results = []
        for message in messages:
            logger.info("[%s → %s] %s", message.channel, message.recipient, message.body)
            results.append(SendResult.sent(f"console-{message.log_id}"))
        return results
