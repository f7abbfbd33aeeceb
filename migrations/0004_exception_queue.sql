-- Exceptions as a work queue: the history keeps to the actions psbridge records, and the SLA views
-- (the past-SLA gauge, the group list) find what is due without reading resolved rows.

-- 0003 lists the actions in a comment; a constraint makes a misspelt action fail at the insert.
alter table exception_transition add constraint exception_transition_action_ck
    check (action in ('opened', 'repeated', 'acknowledged', 'resolved', 'retried', 'assigned'));
alter table exception_transition add constraint exception_transition_status_ck
    check (to_status in ('open', 'acknowledged', 'resolved')
           and (from_status is null or from_status in ('open', 'acknowledged', 'resolved')));

-- Exceptions raised before the history existed get the steps their row still shows, so every history
-- starts with 'opened'. Who did it was never recorded (actor null); an acknowledgement is dated by the
-- row's last update, the best that is known; a resolution is taken to come from 'open'.
with legacy as (
    select * from exception e
    where not exists (select 1 from exception_transition t where t.exception_id = e.id)
)
insert into exception_transition (exception_id, action, from_status, to_status, actor, owner, note, correlation_id, at)
select id, 'opened', null, 'open', null, null, null, correlation_id, created_at from legacy
union all
select id, 'acknowledged', 'open', 'acknowledged', null, owner, note, correlation_id, updated_at
from legacy where status = 'acknowledged'
union all
select id, 'resolved', 'open', 'resolved', null, owner, note, correlation_id, coalesce(resolved_at, updated_at)
from legacy where status = 'resolved';

-- What is still to do, by queue and due time: psbridge_exceptions_past_sla and the group list read this.
create index exception_unresolved_sla_ix on exception (queue, sla_due_at) where status <> 'resolved';
