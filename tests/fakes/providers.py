"""A scriptable provider for tests: records what it was asked to send and answers as told."""

from providers.base import OutgoingMessage, Provider, ProviderError, SendResult


class RecordingProvider(Provider):
    channels = frozenset({"sms", "email"})
    max_batch_size = 50
    received: list[OutgoingMessage] = []
    calls: list[int] = []
    # Either None (everything sent), a ProviderError to raise, or a function message -> SendResult.
    behaviour = None

    def send_many(self, messages):
        behaviour = type(self).behaviour  # read off the class: a function set there is not a method
        type(self).calls.append(len(messages))
        if isinstance(behaviour, ProviderError):
            raise behaviour
        results = []
        for message in messages:
            result = behaviour(message) if callable(behaviour) else SendResult.sent(f"rec-{message.log_id}")
            if result.outcome == "sent":
                type(self).received.append(message)
            results.append(result)
        return results

    @classmethod
    def reset(cls):
        cls.received, cls.calls, cls.behaviour = [], [], None
