-- login-intake: what support staff see of a login (GET /v1/admin/users/{user_id}/logins, like
-- Cognito's AdminListUserAuthEvents): where it came from, as its LoginAttempted says. Null for
-- attempts recorded before these columns (they are pruned within the decision retention).
ALTER TABLE login_attempts
    ADD COLUMN platform    TEXT,
    ADD COLUMN ip          TEXT,
    ADD COLUMN user_agent  TEXT,
    ADD COLUMN device_id   TEXT,
    ADD COLUMN auth_method TEXT;

-- The list walks one user's attempts newest first, a page at a time
-- (`WHERE user_id = $1 AND (created_at, attempt_id) < ($cursor) ORDER BY created_at DESC,
-- attempt_id DESC`): each page is one index range, however long the user's history.
CREATE INDEX login_attempts_by_user ON login_attempts (user_id, created_at DESC, attempt_id DESC)
    WHERE user_id IS NOT NULL;
