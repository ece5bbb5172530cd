from authms.formats.en.formats import DATETIME_FORMAT, SHORT_DATETIME_FORMAT

__all__ = ["DATETIME_FORMAT", "SHORT_DATETIME_FORMAT"]
