from django.utils.translation import gettext as _

from authms.errors import ValidationError

_TRUE, _FALSE = {"true", "1"}, {"false", "0"}


def parse_bool(params, name: str, default: bool = False) -> bool:
    """true/false/1/0 in any case; anything else is a 400 naming the parameter."""
    raw = params.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    message = _("%(name)s must be true, false, 1 or 0; got %(value)r.") % {"name": name, "value": raw}
    raise ValidationError.for_field(name, message)
