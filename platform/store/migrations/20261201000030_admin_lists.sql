-- The admin API's lists walk a company's users and API keys in key order, a page at a time
-- (`WHERE company_id = $1 AND user_id > $cursor ORDER BY user_id`): each page is an index
-- range, however far into the list it is.
CREATE INDEX users_by_company ON users (company_id, user_id);
CREATE INDEX api_keys_by_company ON api_keys (company_id, key_id);
