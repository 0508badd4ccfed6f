-- The prediction log, exactly as the Alembic migrations make it (revision 0001), stamped so
-- that the app's migrate-on-start is a no-op. Safe to run more than once.
-- tests/integration/test_sql_scripts.py checks it against the migrations.

CREATE TABLE IF NOT EXISTS prediction_logs (
    id SERIAL NOT NULL,
    uid VARCHAR(32) NOT NULL,              -- public id: uuid4 hex
    "timestamp" TIMESTAMP WITH TIME ZONE NOT NULL,
    session_id VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    prediction INTEGER NOT NULL,
    confidence FLOAT NOT NULL,             -- calibrated probability of `prediction`
    probabilities JSON NOT NULL,           -- 10 floats summing to 1
    latency_ms FLOAT NOT NULL,             -- preprocessing plus inference
    image_png BYTEA NOT NULL,              -- the 28x28 model input
    canvas_png BYTEA,                      -- the drawing or upload as given
    actual INTEGER,                        -- the person's label; NULL: no feedback
    feedback_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_prediction_logs PRIMARY KEY (id),
    CONSTRAINT uq_prediction_logs_uid UNIQUE (uid),
    CONSTRAINT ck_prediction_logs_prediction_digit CHECK (prediction >= 0 AND prediction <= 9),
    CONSTRAINT ck_prediction_logs_actual_digit CHECK (actual >= 0 AND actual <= 9)
);

CREATE INDEX IF NOT EXISTS ix_prediction_logs_session_id_timestamp_id
    ON prediction_logs (session_id, "timestamp", id);
CREATE INDEX IF NOT EXISTS ix_prediction_logs_timestamp_id
    ON prediction_logs ("timestamp", id);

CREATE TABLE IF NOT EXISTS alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

INSERT INTO alembic_version (version_num)
SELECT '0001'
WHERE NOT EXISTS (SELECT 1 FROM alembic_version);
