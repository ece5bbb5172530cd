"""The application's one error family.

Services raise these; the API exception handler turns each into the response
envelope with its `status_code`, so no view has to translate errors itself.
"""

from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    status_code = 400
    default_message = _("The request could not be processed.")

    def __init__(self, message=None, *, errors: dict[str, list[str]] | None = None, data: dict | None = None):
        self.message = str(message or self.default_message)
        self.errors = errors
        self.data = data  # facts for the client beside the message (a 429's remaining allowance)
        super().__init__(self.message)


class ValidationError(ApplicationError):
    status_code = 400
    default_message = _("Invalid input.")

    @classmethod
    def for_field(cls, field: str, message: str) -> "ValidationError":
        """The common case: one message about one field, in `message` and in `errors`."""
        return cls(message, errors={field: [message]})


class PermissionDeniedError(ApplicationError):
    status_code = 403
    default_message = _("You do not have permission to perform this action.")


class NotFoundError(ApplicationError):
    status_code = 404
    default_message = _("Not found.")


class LimitExceededError(ApplicationError):
    status_code = 429
    default_message = _("A sending limit would be exceeded.")


class GoneError(ApplicationError):
    status_code = 410
    default_message = _("This is no longer available.")


class ConflictError(ApplicationError):
    status_code = 409
    default_message = _("The request conflicts with the current state.")


def unknown_value_message(name: str, value, allowed) -> str:
    """`Unknown channel 'x'; allowed values: sms, email, push.` in the request's language."""
    from django.utils.translation import gettext

    return gettext("Unknown %(name)s %(value)r; allowed values: %(allowed)s.") % {
        "name": name,
        "value": value,
        "allowed": ", ".join(allowed),
    }
