-- Time entries and expenses: one pair of tables, one code path. They differ only in how they are
-- priced (hours x rate, or amount x FX rate), so the parallel tables of 0001 (never written) go.
drop table time_entry_version;
drop table time_entry;
drop table expense_version;
drop table expense;

-- One row per (kind, source, external id): the entry's identity and its state as last judged.
create table work_entry (
    id uuid primary key,
    kind text not null constraint work_entry_kind_ck check (kind in ('time', 'expense')),
    source text not null,
    external_id text not null,
    contract_id uuid not null references contract (id),
    current_version integer not null,
    -- What the last write did to it (a duplicate changes nothing).
    status text not null constraint work_entry_status_ck check (status in ('accepted', 'held', 'corrected', 'voided')),
    billing text not null constraint work_entry_billing_ck check (billing in ('billable', 'non_billable', 'held')),
    code text,
    -- The value under the rules when last judged (contract currency); null when held without a value.
    value numeric,
    -- Corrected or voided after invoicing: its pending money is an adjustment (new value - invoiced).
    adjusting boolean not null default false,
    -- The current version's date (work date or incurred on), role and category: cap order and pools.
    service_date date not null,
    role text,
    category text,
    rate numeric,
    fx_rate numeric,
    converted_amount numeric,
    cost_amount numeric,
    correlation_id text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint work_entry_identity_uq unique (kind, source, external_id)
);
create index work_entry_contract_ix on work_entry (contract_id);

-- Every version the PSA sent (and each void), kept: corrections never lose history.
create table work_entry_version (
    entry_id uuid not null references work_entry (id),
    version integer not null,
    resource_external_id text,
    resource_name text,
    role text,
    cost_rate numeric,
    category text,
    amount numeric,
    currency text,
    receipt_uri text,
    service_date date not null,
    hours numeric,
    description text,
    approved_at timestamptz,
    voided boolean not null default false,
    content_hash text not null,
    correlation_id text,
    created_at timestamptz not null default now(),
    constraint work_entry_version_pk primary key (entry_id, version)
);

-- Releases of held money and adjustments after invoicing are transactions of their own.
alter table billing_transaction drop constraint billing_transaction_kind_ck;
alter table billing_transaction add constraint billing_transaction_kind_ck
    check (kind in ('time', 'expense', 'milestone', 'release', 'adjustment'));
alter table billing_transaction add column entry_id uuid references work_entry (id);
create index billing_transaction_entry_ix on billing_transaction (entry_id);
-- What re-evaluation reads: a contract's money not yet on any invoice.
create index billing_transaction_pending_ix on billing_transaction (contract_id)
    where invoice_id is null and status in ('unbilled', 'held');

insert into exception_kind (code, queue, sla, description) values
    ('CAP_EXCEEDED', 'finance', '48 hours', 'Billable time is over the contract''s time cap: the excess is held'),
    ('EXPENSE_CAP_EXCEEDED', 'finance', '48 hours', 'Expenses are over a category''s allowance: the excess is held'),
    ('RATE_NOT_FOUND', 'delivery', '24 hours', 'Time was logged for a role the rate card has no rate for'),
    ('OUTSIDE_CONTRACT_TERM', 'delivery', '48 hours', 'Work is dated outside the contract''s term'),
    ('FX_RATE_MISSING', 'finance', '24 hours', 'No FX rate for an expense''s day and currencies');
