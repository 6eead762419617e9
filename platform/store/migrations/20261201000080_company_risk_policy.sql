-- Issue 17: a risk policy per company (thresholds, challenge levels, trusted networks, how
-- long a login stays known, observe-only mode).

-- login-intake: the policy an admin set (`PUT /v1/admin/companies/{company_id}/risk-policy`),
-- the whole of it, every field optional (absent: the deployment's default). Each change bumps
-- `version` and is announced (`RiskPolicyChanged`, through the outbox) in its transaction.
CREATE TABLE company_risk_policies (
    company_id TEXT PRIMARY KEY REFERENCES companies (company_id),
    version    BIGINT NOT NULL CHECK (version > 0),
    policy     JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- risk-worker: the newest policy of each company it consumed from `RiskPolicyChanged`, which
-- its decisions read (`risk-worker replay` keeps the same in memory, from the same events, so
-- both decide under the same policy). Shared by the worker's replicas: whichever consumed
-- the event, every replica decides the company's logins under it.
CREATE TABLE risk_company_policies (
    company_id TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    policy     JSONB NOT NULL
);
