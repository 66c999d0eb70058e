#!/bin/sh
# One-shot (docker-compose.prod.yml, service temporal-schema): create Temporal's two
# PostgreSQL databases and bring their schemas to the version this admin-tools image ships.
# Idempotent: `create` ignores an existing database, `setup-schema -v 0.0` only records a
# version when none is recorded, `update-schema` applies what is missing. Run again with a
# newer admin-tools image before starting a newer server: that is the schema upgrade.
# Connection: SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD (temporal-sql-tool's own).
set -eu

SCHEMA=/etc/temporal/schema/postgresql/v12
for pair in "${TEMPORAL_DB:-temporal}:temporal" "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}:visibility"; do
    db=${pair%%:*}
    dir=${pair##*:}
    echo "temporal-schema: database $db ($dir schema)"
    temporal-sql-tool --db "$db" create-database
    temporal-sql-tool --db "$db" setup-schema -v 0.0
    temporal-sql-tool --db "$db" update-schema -d "$SCHEMA/$dir/versioned"
done
echo "temporal-schema: done"
