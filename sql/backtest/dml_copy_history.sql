-- The inputs of a backtest of sequence $sequence (pipelines/tick/backtest.py), copied from
-- the real database, attached READ_ONLY as `history`, into the scratch database (which
-- db.connect created with schema.sql). Everything else starts empty: no enrolment, action,
-- ledger row or tick state of the sequence, as if it had been switched on at --from.

-- the records, custom columns included (contacts keep no history: current values)
create or replace table contacts as select * from history.contacts;
create or replace table accounts as select * from history.accounts;

-- every activity but the sequence's own recorded sends: the backtest's assumed sends
-- (dml_assume_sent.sql) stand in for them; engagement, replies and other sends stay
create or replace table activities as
select *
from history.activities
where type <> 'email_sent'
   or sequence is distinct from $sequence;

-- compiled conditions: a cache (saves compiling again what the real database compiled)
insert into compiled_conditions by name
select * from history.compiled_conditions;

-- the sequence's pauses: intervals, read point in time by the tick
insert into pauses by name
select * from history.pauses
where sequence = $sequence;

-- the sequence's manual enrolment requests, all pending again: the tick resolves each at
-- the first occurrence at or after requested_at, as the real tick did
insert into manual_requests (sequence, contact_id, requested_at, status)
select sequence, contact_id, requested_at, 'pending'
from history.manual_requests
where sequence = $sequence;

-- the instants of the sequence's `unenroll`s: a manual exit, or a request cancelled
-- (dml_replay_unenrolments.sql replays them before the first occurrence after them)
create or replace table backtest_unenrolments as
select contact_id, exited_at as unenrolled_at, exited_on as unenrolled_on
from history.enrollments
where sequence = $sequence
  and exit_reason = 'manual'
  and exited_at is not null
union
select contact_id, resolved_at as unenrolled_at, null::date as unenrolled_on
from history.manual_requests
where sequence = $sequence
  and status = 'cancelled'
  and resolved_at is not null;

-- the other sequences' enrolments as recorded (dml_other_enrollments.sql rebuilds their
-- state at each occurrence, for `exclusive_with` and `contact.sequences`)
create or replace table backtest_other_enrollments as
select * from history.enrollments
where sequence <> $sequence;
