-- What an API key may see beyond its role: a customer key one customer; a project-manager key the
-- contracts it manages (by customer and/or by contract, all when neither); an integration key may
-- speak for one system (checked against field ownership).
alter table api_client add column customers text[] not null default '{}';
alter table api_client add column contracts uuid[] not null default '{}';
alter table api_client add column system text constraint api_client_system_ck check (system in ('crm', 'psa', 'erp'));

update api_client set customers = array[customer_external_id] where customer_external_id is not null;
alter table api_client drop constraint api_client_customer_ck;
alter table api_client drop column customer_external_id;

alter table api_client add constraint api_client_scope_ck check (
    case role
        when 'customer' then cardinality(customers) = 1 and cardinality(contracts) = 0
        when 'project_manager' then true
        else cardinality(customers) = 0 and cardinality(contracts) = 0
    end
);
alter table api_client add constraint api_client_system_role_ck check (system is null or role = 'integration');

-- The contract an exception is about (directly, or through its invoice), so work queues can be
-- scoped like everything else: a project manager sees the exceptions of the contracts it manages.
alter table exception add column contract_id uuid constraint exception_contract_fk references contract (id);
update exception e set contract_id = c.id from contract c where e.subject_type = 'contract' and e.subject_id = c.id::text;
update exception e set contract_id = i.contract_id from invoice i where e.subject_type = 'invoice' and e.subject_id = i.id::text;
create index exception_contract_ix on exception (contract_id);
