"""`field__any=[…]`: membership in a long list of values, sent to PostgreSQL as one array.

A bulk asks "which of these 10,000 recipients …" several times (suppressions, frequency caps,
users). As `IN (%s, %s, …)` each question carries 10,000 bound parameters, and building and
binding them cost ~100 ms per query; `= ANY(%s)` binds one array and uses the same indexes.
Other databases get the plain IN.
"""

from django.core.exceptions import EmptyResultSet
from django.db.models import CharField, Field
from django.db.models.lookups import In


@CharField.register_lookup
class AnyOf(In):
    lookup_name = "any"

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [Field.get_db_prep_value(self.lhs.output_field, value, connection) for value in self.rhs]
        values = list(dict.fromkeys(value for value in values if value is not None))
        if not values:
            raise EmptyResultSet
        return f"{lhs} = ANY(%s)", (*lhs_params, values)
