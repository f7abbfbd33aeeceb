-- Contract lifecycle: inbound CRM events kept for replay, exception kinds with their queue and SLA
-- as data, the history of every work-item transition, and which version confirmed a propagation.

-- Every event a CRM sent through a system API, raw, as received: a payload that cannot be mapped
-- is never lost, and its exception's retry maps it again after the mapping or the data is fixed.
create table inbound_event (
    id uuid primary key,
    system text not null constraint inbound_event_system_ck check (system in ('crm', 'psa', 'erp')),
    vendor text not null,
    subject text,                    -- the vendor's record id, when it could be read (Contract.Id)
    body bytea not null,             -- exactly the bytes received: vendor amounts keep their decimal text
    status text not null constraint inbound_event_status_ck check (status in ('mapped', 'rejected', 'failed')),
    -- mapped: taken as a contract or amendment; rejected: mapped, then refused by its rules (409/422);
    -- failed: could not be mapped (a MAPPING_FAILED exception holds it for replay)
    errors jsonb not null default '[]',
    contract_id uuid constraint inbound_event_contract_fk references contract (id),
    version integer,
    received_by text,
    correlation_id text,
    received_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index inbound_event_subject_ix on inbound_event (system, vendor, subject);

-- What each kind of exception is: which team's queue it lands in and how long that team has.
-- Operators change a row (PUT /process/v1/exception-kinds/{code}); new exceptions follow it.
create table exception_kind (
    code text primary key,
    queue text not null constraint exception_kind_queue_ck check (queue in ('integration', 'delivery', 'finance')),
    sla interval not null constraint exception_kind_sla_ck check (sla > interval '0'),
    description text not null,
    updated_at timestamptz not null default now()
);
insert into exception_kind (code, queue, sla, description) values
    ('CUSTOMER_NOT_IN_ERP', 'integration', '4 hours', 'The ERP customer master has no customer for the contract'),
    ('LEGAL_ENTITY_MISMATCH', 'integration', '4 hours', 'The ERP books the customer under another subsidiary'),
    ('UNKNOWN_LEGAL_ENTITY', 'integration', '4 hours', 'The contract names a legal entity psbridge does not know'),
    ('CURRENCY_NOT_ALLOWED', 'finance', '24 hours', 'The legal entity may not invoice in the contract currency'),
    ('UNKNOWN_TAX_JURISDICTION', 'finance', '24 hours', 'The tax API does not know the jurisdiction'),
    ('MILESTONES_DO_NOT_SUM', 'finance', '24 hours', 'A fixed-fee plan does not add up to the total value'),
    ('TAX_VALIDATION_FAILED', 'finance', '24 hours', 'The tax API refused the invoice as described'),
    ('ERP_POSTING_FAILED', 'integration', '4 hours', 'The ERP did not take an invoice after every try'),
    ('PROPAGATION_FAILED', 'integration', '4 hours', 'A contract version did not reach the PSA or the ERP'),
    ('MAPPING_FAILED', 'integration', '4 hours', 'A CRM event could not be mapped to a canonical contract'),
    ('CONTRACT_BLOCKED', 'delivery', '48 hours', 'Work arrived for a blocked contract');

-- Who moved a work item, when, from what to what, and why.
create table exception_transition (
    id bigserial primary key,
    exception_id uuid not null constraint exception_transition_exception_fk references exception (id),
    action text not null,            -- opened | repeated | acknowledged | resolved | retried | assigned
    from_status text,
    to_status text not null,
    actor text,
    owner text,
    note text,
    correlation_id text,
    at timestamptz not null default now()
);
create index exception_transition_exception_ix on exception_transition (exception_id, id);

-- A target holds the newest plan, so pushing version 3 also confirms a pending version 2.
alter table propagation add column confirmed_version integer;
update propagation set confirmed_version = version where status = 'confirmed';

-- An amendment's rate applies from max(its effective_from, the amendment's effective date); the date
-- the CRM asked for is kept beside it, so a CRM that resends its whole rate card is not read as a change.
alter table rate_card_entry add column requested_from date;
update rate_card_entry set requested_from = effective_from;
alter table rate_card_entry alter column requested_from set not null;
