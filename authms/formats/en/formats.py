# Staff compare console times with what customers and gateways report: seconds and the zone,
# one unambiguous order in every language.
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
