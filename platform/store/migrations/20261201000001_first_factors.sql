-- login-intake: the first factors a company accepts, and an account's narrower limit (issue
-- 11.1). Before this, `companies.uses_sso` was stored but never enforced: any client key
-- could log a non-privileged user in with an SSO or Google claim and no factor at all.
--
-- A company accepts only passwords until an admin says otherwise; a company that said it
-- uses SSO keeps passwords and SSO (what `company_uses_sso` means from now on).
ALTER TABLE companies ADD COLUMN first_factors TEXT[] NOT NULL DEFAULT '{password}'
    CONSTRAINT companies_first_factors_known
    CHECK (cardinality(first_factors) > 0
           AND first_factors <@ ARRAY['password', 'sso', 'google']::TEXT[]);
UPDATE companies SET first_factors = '{password,sso}' WHERE uses_sso;
-- One source of truth: the flag is now the array.
ALTER TABLE companies DROP COLUMN uses_sso;

-- NULL: whatever the company accepts. Otherwise the account logs in only with a factor in
-- both lists.
ALTER TABLE users ADD COLUMN first_factors TEXT[]
    CONSTRAINT users_first_factors_known
    CHECK (first_factors IS NULL
           OR (cardinality(first_factors) > 0
               AND first_factors <@ ARRAY['password', 'sso', 'google']::TEXT[]));
