-- The actuator's ledger: one row per action, keyed by its deterministic
-- id (VM, action, generation), so a replayed event or a restarted
-- actuator never plans or runs the same action twice.
CREATE TABLE actuator_actions (
	id           TEXT   NOT NULL PRIMARY KEY,
	vm_id        TEXT   NOT NULL,
	provider     TEXT   NOT NULL,
	tenant       TEXT   NOT NULL,
	policy       TEXT   NOT NULL,
	mode         TEXT   NOT NULL,
	kind         TEXT   NOT NULL,
	state        TEXT   NOT NULL,
	generation   BIGINT NOT NULL,
	body         TEXT   NOT NULL,
	created_ms   BIGINT NOT NULL,
	updated_ms   BIGINT NOT NULL,
	started_ms   BIGINT NOT NULL,
	finished_ms  BIGINT NOT NULL
);
CREATE INDEX actuator_actions_vm ON actuator_actions (vm_id, state);
CREATE INDEX actuator_actions_state ON actuator_actions (state);

-- Every plan, approval, step and result, append-only.
CREATE TABLE actuator_audit (
	seq        BIGINT NOT NULL,
	action_id  TEXT   NOT NULL,
	vm_id      TEXT   NOT NULL,
	time_ms    BIGINT NOT NULL,
	actor      TEXT   NOT NULL,
	event      TEXT   NOT NULL,
	from_state TEXT   NOT NULL,
	to_state   TEXT   NOT NULL,
	message    TEXT   NOT NULL,
	PRIMARY KEY (action_id, seq)
);
CREATE INDEX actuator_audit_time ON actuator_audit (time_ms);

-- Input events kept for "what would this policy have done".
CREATE TABLE actuator_events (
	id      TEXT   NOT NULL PRIMARY KEY,
	time_ms BIGINT NOT NULL,
	body    TEXT   NOT NULL
);
CREATE INDEX actuator_events_time ON actuator_events (time_ms);

-- Policies changed through the API, overriding the configured ones.
CREATE TABLE actuator_policies (
	name       TEXT   NOT NULL PRIMARY KEY,
	body       TEXT   NOT NULL,
	updated_ms BIGINT NOT NULL
);

-- Shared switches: the kill switch.
CREATE TABLE actuator_settings (
	name  TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
);

-- The single-executor lease with its fencing token.
CREATE TABLE actuator_lease (
	name       TEXT   NOT NULL PRIMARY KEY,
	holder     TEXT   NOT NULL,
	token      BIGINT NOT NULL,
	expires_ms BIGINT NOT NULL
);
