-- login-intake: API keys of client backends, each bound to one company and the platforms it
-- may speak for. Only a SHA-256 digest of the key is kept (the raw key is shown once, at
-- creation). The verifier reads this table to authenticate its callers.
CREATE TABLE api_keys (
    key_id      UUID PRIMARY KEY,
    company_id  TEXT NOT NULL REFERENCES companies (company_id),
    name        TEXT NOT NULL,
    digest      BYTEA NOT NULL UNIQUE,
    -- The first characters of the raw key, so an operator can tell keys apart.
    key_prefix  TEXT NOT NULL,
    platforms   TEXT[] NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);

-- code-worker: the company of the challenged account, so the verifier can refuse a key of
-- another company.
ALTER TABLE challenges ADD COLUMN company_id TEXT;

-- login-intake: the company whose key (or Kafka request) started the attempt; another
-- company's key can't read its decision.
ALTER TABLE login_attempts ADD COLUMN company_id TEXT;
