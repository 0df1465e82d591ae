-- The generation of the stored policies: bumped in the transaction of
-- every policy change, and polled by every replica, which reloads the
-- policies when it moved (policy_reload_interval).
CREATE TABLE actuator_policy_generation (
	name       TEXT   NOT NULL PRIMARY KEY,
	generation BIGINT NOT NULL
);
INSERT INTO actuator_policy_generation (name, generation) VALUES ('policies', 0);
