-- Current alerts (pending and firing) of every source: rule groups,
-- events and thresholds. One row per alert, keyed by the fingerprint of
-- its labels.
CREATE TABLE alerting_alerts (
	fingerprint   TEXT    NOT NULL,
	scope         TEXT    NOT NULL,
	source        TEXT    NOT NULL,
	alertname     TEXT    NOT NULL,
	labels        TEXT    NOT NULL,
	annotations   TEXT    NOT NULL,
	state         TEXT    NOT NULL,
	value         TEXT    NOT NULL,
	active_at     BIGINT  NOT NULL,
	fired_at      BIGINT  NOT NULL,
	updated_at    BIGINT  NOT NULL,
	generator_url TEXT    NOT NULL,
	PRIMARY KEY (scope, fingerprint)
);
CREATE INDEX alerting_alerts_scope ON alerting_alerts (scope);

-- Every state change of every alert.
CREATE TABLE alerting_history (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	fingerprint TEXT   NOT NULL,
	source      TEXT   NOT NULL,
	alertname   TEXT   NOT NULL,
	labels      TEXT   NOT NULL,
	annotations TEXT   NOT NULL,
	from_state  TEXT   NOT NULL,
	to_state    TEXT   NOT NULL,
	value       TEXT   NOT NULL,
	at          BIGINT NOT NULL
);
CREATE INDEX alerting_history_at ON alerting_history (at);
CREATE INDEX alerting_history_fp ON alerting_history (fingerprint, at);
CREATE INDEX alerting_history_name ON alerting_history (alertname, at);

-- The ALERTS_FOR_STATE series of the rule manager, so the 'for' state of
-- alerts survives restarts whatever the time-series store.
CREATE TABLE alerting_for_state (
	series    TEXT   NOT NULL PRIMARY KEY,
	labels    TEXT   NOT NULL,
	active_at BIGINT NOT NULL,
	ts        BIGINT NOT NULL
);

-- Thresholds defined through the API, compiled into alerting rules.
CREATE TABLE alerting_thresholds (
	id         TEXT   NOT NULL PRIMARY KEY,
	spec       TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- Snapshots of the silences and the notification log.
CREATE TABLE alerting_blobs (
	name       TEXT   NOT NULL PRIMARY KEY,
	data       BLOB  NOT NULL,
	updated_at BIGINT NOT NULL
);
