-- An ERP that refuses an invoice because its accounting period is closed is finance's to reopen:
-- not retried on its own, retried from the work item once the period is open again.
insert into exception_kind (code, queue, sla, description) values
    ('PERIOD_CLOSED', 'finance', '24 hours', 'The ERP''s accounting period for the invoice date is closed');
