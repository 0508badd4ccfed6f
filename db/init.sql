-- First-start setup of the PostgreSQL container (/docker-entrypoint-initdb.d), run in the
-- database named by POSTGRES_DB. create_table.sql makes the schema; this file holds the
-- database-wide settings. Safe to run more than once.

-- Sessions see timestamps in UTC, the zone the app writes them in.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET timezone TO %L', current_database(), 'UTC');
END
$$;
