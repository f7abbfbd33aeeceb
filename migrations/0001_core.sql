-- psbridge core schema: the data model for the whole of DESIGN.md.
-- Money is numeric (never float); every row that a request or event wrote carries its correlation id.

create table api_client (
    id uuid primary key,
    name text not null,
    role text not null constraint api_client_role_ck
        check (role in ('admin', 'integration', 'finance', 'project_manager', 'customer', 'bi')),
    customer_external_id text,
    key_prefix text not null,
    key_hash text not null constraint api_client_key_hash_uq unique,
    created_at timestamptz not null default now(),
    revoked_at timestamptz,
    constraint api_client_customer_ck check ((role = 'customer') = (customer_external_id is not null))
);

create table idempotency_key (
    client_id uuid not null references api_client (id),
    key text not null,
    method text not null,
    path text not null,
    request_hash text not null,
    state text not null constraint idempotency_key_state_ck check (state in ('in_flight', 'done')),
    response_status integer,
    response_headers jsonb,
    response_body bytea,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    constraint idempotency_key_pk primary key (client_id, key)
);
create index idempotency_key_expires_ix on idempotency_key (expires_at);

create table legal_entity (
    code text primary key,
    name text not null,
    country text not null,
    functional_currency text not null,
    allowed_currencies text[] not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table customer (
    id uuid primary key,
    external_id text not null constraint customer_external_id_uq unique,
    name text not null,
    tax_id text,
    correlation_id text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- canonical id <-> (system, external id), e.g. contract <-> psa project, invoice <-> erp record
create table external_ref (
    canonical_type text not null,
    canonical_id uuid not null,
    system text not null,
    external_id text not null,
    created_at timestamptz not null default now(),
    constraint external_ref_pk primary key (canonical_type, canonical_id, system),
    constraint external_ref_external_uq unique (system, canonical_type, external_id)
);

create table contract (
    id uuid primary key,
    source text not null,
    external_id text not null,
    number text not null,
    customer_id uuid not null references customer (id),
    legal_entity text not null,
    currency text not null,
    billing_model text not null constraint contract_billing_model_ck
        check (billing_model in ('fixed_fee', 'time_and_materials')),
    status text not null constraint contract_status_ck check (status in ('active', 'blocked')),
    current_version integer not null default 1,
    project_id text,
    document jsonb,
    signed_at timestamptz,
    correlation_id text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint contract_source_external_uq unique (source, external_id)
);
create index contract_customer_ix on contract (customer_id);

-- One row per version: the terms in force from effective_date until the next version's.
create table contract_version (
    contract_id uuid not null references contract (id),
    version integer not null,
    effective_date date not null,
    start_date date not null,
    end_date date not null,
    total_value numeric,
    time_cap numeric,
    tax_jurisdiction text not null,
    customer_tax_id text,
    reason text,
    payload jsonb not null,
    payload_hash text not null,
    correlation_id text,
    created_at timestamptz not null default now(),
    constraint contract_version_pk primary key (contract_id, version),
    constraint contract_version_term_ck check (start_date <= end_date)
);

create table rate_card_entry (
    contract_id uuid not null,
    version integer not null,
    role text not null,
    rate numeric not null constraint rate_card_entry_rate_ck check (rate >= 0),
    effective_from date not null,
    constraint rate_card_entry_pk primary key (contract_id, version, role, effective_from),
    constraint rate_card_entry_version_fk foreign key (contract_id, version)
        references contract_version (contract_id, version)
);

create table expense_category (
    contract_id uuid not null,
    version integer not null,
    category text not null,
    cap numeric,
    constraint expense_category_pk primary key (contract_id, version, category),
    constraint expense_category_version_fk foreign key (contract_id, version)
        references contract_version (contract_id, version)
);

-- The milestone plan as of each version (a full snapshot: removed milestones are absent).
create table milestone (
    contract_id uuid not null,
    version integer not null,
    key text not null,
    name text not null,
    amount numeric not null,
    due_date date,
    depends_on text[] not null default '{}',
    constraint milestone_pk primary key (contract_id, version, key),
    constraint milestone_version_fk foreign key (contract_id, version)
        references contract_version (contract_id, version)
);

create table milestone_acceptance (
    contract_id uuid not null references contract (id),
    key text not null,
    accepted_at timestamptz not null,
    accepted_on date not null,
    accepted_by text,
    evidence_uri text,
    version integer not null,
    amount numeric not null,
    transaction_id uuid not null,
    correlation_id text,
    created_at timestamptz not null default now(),
    constraint milestone_acceptance_pk primary key (contract_id, key)
);

-- Propagation of each contract version to a target system (psa project, erp billing schedule).
create table propagation (
    contract_id uuid not null,
    version integer not null,
    target text not null constraint propagation_target_ck check (target in ('psa', 'erp')),
    status text not null default 'pending' constraint propagation_status_ck
        check (status in ('pending', 'confirmed', 'failed')),
    attempts integer not null default 0,
    last_error text,
    confirmed_at timestamptz,
    updated_at timestamptz not null default now(),
    constraint propagation_pk primary key (contract_id, version, target),
    constraint propagation_version_fk foreign key (contract_id, version)
        references contract_version (contract_id, version)
);
create index propagation_pending_ix on propagation (status) where status <> 'confirmed';

create table resource (
    source text not null,
    external_id text not null,
    name text,
    role text,
    cost_rate numeric,
    updated_at timestamptz not null default now(),
    constraint resource_pk primary key (source, external_id)
);

-- Time entries and expenses: the identity row plus immutable versions (corrections keep history).
create table time_entry (
    id uuid primary key,
    source text not null,
    external_id text not null,
    contract_id uuid not null references contract (id),
    current_version integer not null,
    voided boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint time_entry_source_external_uq unique (source, external_id)
);
create index time_entry_contract_ix on time_entry (contract_id);

create table time_entry_version (
    entry_id uuid not null references time_entry (id),
    version integer not null,
    resource_external_id text not null,
    resource_name text,
    role text not null,
    cost_rate numeric,
    work_date date not null,
    hours numeric not null,
    description text,
    approved_at timestamptz,
    voided boolean not null default false,
    content_hash text not null,
    correlation_id text,
    created_at timestamptz not null default now(),
    constraint time_entry_version_pk primary key (entry_id, version)
);

create table expense (
    id uuid primary key,
    source text not null,
    external_id text not null,
    contract_id uuid not null references contract (id),
    current_version integer not null,
    voided boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint expense_source_external_uq unique (source, external_id)
);
create index expense_contract_ix on expense (contract_id);

create table expense_version (
    expense_id uuid not null references expense (id),
    version integer not null,
    resource_external_id text not null,
    resource_name text,
    category text not null,
    amount numeric not null,
    currency text not null,
    fx_rate numeric,
    converted_amount numeric,
    incurred_on date not null,
    approved_at timestamptz,
    receipt_uri text,
    voided boolean not null default false,
    content_hash text not null,
    correlation_id text,
    created_at timestamptz not null default now(),
    constraint expense_version_pk primary key (expense_id, version)
);

create table billing_run (
    id uuid primary key,
    as_of date not null,
    scope jsonb not null,
    created_by uuid,
    correlation_id text,
    created_at timestamptz not null default now()
);

-- 'draft' is the moment between packaging and the tax quote; a sweeper finishes drafts a crash left.
create table invoice (
    id uuid primary key,
    billing_run_id uuid references billing_run (id),
    contract_id uuid not null references contract (id),
    kind text not null constraint invoice_kind_ck check (kind in ('invoice', 'credit_note')),
    currency text not null,
    invoice_date date not null,
    net numeric not null,
    tax numeric,
    total numeric,
    tax_treatment text,
    notes text,
    status text not null constraint invoice_status_ck
        check (status in ('draft', 'queued', 'posting', 'posted', 'blocked', 'failed')),
    codes text[] not null default '{}',
    erp_ref text,
    posted_at timestamptz,
    attempts integer not null default 0,
    last_error text,
    correlation_id text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index invoice_contract_ix on invoice (contract_id);
create index invoice_status_ix on invoice (status);

-- A billing transaction is the unit of money: priced from one entry version, a milestone
-- acceptance, a release of held money, or an adjustment after invoicing.
create table billing_transaction (
    id uuid primary key,
    contract_id uuid not null references contract (id),
    kind text not null constraint billing_transaction_kind_ck
        check (kind in ('time', 'expense', 'milestone')),
    subject_type text not null constraint billing_transaction_subject_ck
        check (subject_type in ('time_entry', 'expense', 'milestone')),
    subject_id text not null,
    subject_version integer,
    service_date date not null,
    role text,
    rate numeric,
    quantity numeric,
    category text,
    milestone_key text,
    amount numeric not null,
    currency text not null,
    cost_amount numeric,
    billing text not null constraint billing_transaction_billing_ck
        check (billing in ('billable', 'non_billable', 'held')),
    status text not null constraint billing_transaction_status_ck
        check (status in ('unbilled', 'held', 'non_billable', 'invoiced', 'superseded')),
    reason text,
    is_adjustment boolean not null default false,
    is_release boolean not null default false,
    invoice_id uuid references invoice (id),
    correlation_id text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index billing_transaction_contract_status_ix on billing_transaction (contract_id, status);
create index billing_transaction_subject_ix on billing_transaction (subject_type, subject_id);
create index billing_transaction_invoice_ix on billing_transaction (invoice_id);

create table invoice_line (
    invoice_id uuid not null references invoice (id),
    line_no integer not null,
    kind text not null,
    key text not null,
    description text not null,
    quantity numeric,
    unit_price numeric,
    net numeric not null,
    tax_rate numeric,
    tax numeric,
    total numeric,
    transaction_ids uuid[] not null,
    constraint invoice_line_pk primary key (invoice_id, line_no)
);

create table exception (
    id uuid primary key,
    code text not null,
    queue text not null constraint exception_queue_ck check (queue in ('integration', 'delivery', 'finance')),
    status text not null default 'open' constraint exception_status_ck
        check (status in ('open', 'acknowledged', 'resolved')),
    subject_type text not null,
    subject_id text not null,
    group_key text not null,
    count integer not null default 1,
    owner text,
    sla_due_at timestamptz not null,
    detail text not null,
    actions text[] not null default '{}',
    note text,
    correlation_id text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    resolved_at timestamptz
);
-- At most one unresolved exception per (code, subject): repeats bump its count.
create unique index exception_open_uq on exception (code, subject_type, subject_id) where status <> 'resolved';
create index exception_group_ix on exception (group_key);
create index exception_subject_ix on exception (subject_id);

-- State changes and their events commit together; the feed and webhooks read from here.
create table outbox_event (
    id bigserial primary key,
    event_type text not null,
    subject_type text not null,
    subject_id text not null,
    payload jsonb not null,
    correlation_id text,
    created_at timestamptz not null default now(),
    dispatched_at timestamptz
);
create index outbox_event_undispatched_ix on outbox_event (id) where dispatched_at is null;

create table audit_record (
    id bigserial primary key,
    actor text,
    action text not null,
    subject_type text not null,
    subject_id text not null,
    detail jsonb not null default '{}',
    correlation_id text,
    at timestamptz not null default now()
);
create index audit_record_subject_ix on audit_record (subject_type, subject_id);

-- Which system owns which canonical field; a write from a non-owner is refused.
create table field_ownership (
    object_type text not null,
    field text not null,
    owner_system text not null,
    constraint field_ownership_pk primary key (object_type, field)
);
insert into field_ownership (object_type, field, owner_system) values
    ('contract', 'terms', 'crm'),
    ('customer', 'name', 'crm'),
    ('customer', 'subsidiary', 'erp'),
    ('time_entry', 'hours', 'psa'),
    ('expense', 'amount', 'psa'),
    ('invoice', 'erp_ref', 'erp');
