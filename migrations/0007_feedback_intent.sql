-- Telling the PSA and the CRM that an invoice was billed is an intent with a row first, like
-- posting: set when the invoice is posted, cleared when both were told. A lost Redis (or a worker
-- killed between the commit and the enqueue) leaves the row, and the sweeper queues the job again.
alter table invoice add column feedback_due_at timestamptz;
alter table invoice add column feedback_done_at timestamptz;
create index invoice_feedback_due_ix on invoice (feedback_due_at)
    where feedback_due_at is not null and feedback_done_at is null;
