-- A post whose outcome is unknown (a timeout, a reset, a 5xx after the request left) may have
-- created the record: the next attempt looks it up by our id first and writes only if it is absent.
alter table invoice add column erp_ambiguous boolean not null default false;

insert into exception_kind (code, queue, sla, description) values
    ('FEEDBACK_REJECTED', 'integration', '4 hours', 'The PSA or the CRM refused to record that an invoice was billed');
