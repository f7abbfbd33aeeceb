-- Reconciliation: every posted invoice and credit note against the ERP, and per contract the
-- amounts each system holds (CRM contract value, what the PSA was told, what the ERP posted, what
-- psbridge billed and has unbilled), kept per run so drift can be compared over time.
create table reconciliation (
    id uuid primary key,
    as_of date not null,
    checked integer not null,
    actor text,
    correlation_id text,
    created_at timestamptz not null default now()
);

create table reconciliation_mismatch (
    reconciliation_id uuid not null references reconciliation (id),
    invoice_id uuid not null references invoice (id),
    kind text not null constraint reconciliation_mismatch_kind_ck
        check (kind in ('missing', 'duplicate', 'amount', 'currency')),
    detail text not null,
    primary key (reconciliation_id, invoice_id, kind)
);

create table reconciliation_contract (
    reconciliation_id uuid not null references reconciliation (id),
    contract_id uuid not null references contract (id),
    currency text not null,
    crm_value numeric,          -- the contract's value as the CRM signed it (null: time and materials)
    psa_billed numeric not null, -- net of the invoices the PSA was told are billed
    erp_posted numeric not null, -- net the ERP holds for this contract's invoices (by our ids)
    billed numeric not null,     -- net of psbridge's posted invoices
    unbilled numeric not null,   -- billable money not on a queued, posting or posted invoice
    primary key (reconciliation_id, contract_id)
);
create index reconciliation_contract_contract_ix on reconciliation_contract (contract_id);

insert into exception_kind (code, queue, sla, description) values
    ('RECONCILIATION_MISMATCH', 'finance', '24 hours',
     'A posted invoice and the ERP disagree: missing, keyed twice, another amount or currency');
