-- Each entry's pending money (not on any invoice) on its own row, kept by the ledger with every
-- settlement and invoice link. A cap window then ranges over one index of the pool's pending
-- entries in cap order, instead of aggregating every pending transaction of the contract.
alter table work_entry add column pending_billable numeric not null default 0;
alter table work_entry add column pending_held numeric not null default 0;

update work_entry e
   set pending_billable = s.billable, pending_held = s.held
  from (select entry_id,
               coalesce(sum(amount) filter (where billing = 'billable'), 0) as billable,
               coalesce(sum(amount) filter (where billing = 'held'), 0) as held
          from billing_transaction
         where entry_id is not null and invoice_id is null and status in ('unbilled', 'held')
         group by entry_id) s
 where s.entry_id = e.id;

-- Cap order is (work date, external id by code point, source by code point): see ledger/rules.py.
create index work_entry_pool_ix on work_entry
    (contract_id, kind, service_date, external_id collate "C", source collate "C")
    include (category, pending_billable, pending_held)
    where pending_billable <> 0 or pending_held <> 0;
