-- risk-worker: the global counts cover the approved logins of the login's epoch of 90 days
-- and the one before (services/risk-worker/src/model/epochs.rs), so that a value no login
-- has had for 90 to 180 days stops counting and housekeeping deletes it. The counts start
-- afresh (migration 90 emptied them already).
--
-- A value's row holds its logins in the newest epoch it was seen in (`epoch`, the epoch's
-- start) and in the epoch before that (`previous`). The users learned are the values of the
-- level `user` (their ids), so each counts once per window and goes with the account.
DELETE FROM risk_global_values;
ALTER TABLE risk_global_values
    ADD COLUMN epoch TIMESTAMPTZ NOT NULL,
    ADD COLUMN previous BIGINT NOT NULL DEFAULT 0;
CREATE INDEX risk_global_values_by_epoch ON risk_global_values (epoch);

-- Per level and epoch: the values whose newest epoch it is. A window's distinct values are
-- the sum over its two epochs.
DROP TABLE risk_global_levels;
CREATE TABLE risk_global_levels (
    level       TEXT NOT NULL,
    epoch       TIMESTAMPTZ NOT NULL,
    values_seen BIGINT NOT NULL,
    PRIMARY KEY (level, epoch)
);

-- The approved logins learned in each epoch.
DROP TABLE risk_global_totals;
CREATE TABLE risk_global_totals (
    epoch  TIMESTAMPTZ PRIMARY KEY,
    logins BIGINT NOT NULL
);

DROP TABLE risk_learned_users;
