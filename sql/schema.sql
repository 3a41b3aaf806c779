-- The stable output tables of SPEC section 7, plus the ledgers the engine keeps.
-- All timestamps are stored as naive UTC `timestamp`; local dates are `date`.
-- Custom columns of contacts/accounts are added by ingest (types inferred once, then fixed).

create table if not exists contacts (
    contact_id varchar primary key,
    email varchar,
    first_name varchar,
    last_name varchar,
    account_id varchar,
    owner_id varchar,
    timezone varchar,
    unsubscribed boolean,
    created_at timestamp,
    updated_at timestamp,
    import_name varchar,
);

create table if not exists accounts (
    account_id varchar primary key,
    name varchar,
    domain varchar,
    owner_id varchar,
    created_at timestamp,
    updated_at timestamp,
    import_name varchar,
);

-- No primary key index: at 1e7 rows the ART index made bulk ingest ~4x slower (measured in
-- bench/). activity_id stays unique because ingest inserts only ids not yet stored (anti-join)
-- and rejects duplicates within a file, and the engine's own activities are written once.
create table if not exists activities (
    activity_id varchar not null,
    contact_id varchar,
    email varchar,
    type varchar not null,
    occurred_at timestamp not null,
    sequence varchar,
    step varchar,
    message_id varchar,
    detail varchar,
);

create table if not exists quarantine (
    file varchar not null,
    line bigint,
    entity varchar not null,
    reason varchar not null,
    raw varchar,
    quarantined_at timestamp default current_localtimestamp(),
);

-- One row per (file content, entity, tag) ever ingested: re-ingesting the same file is a no-op.
-- The tracking server's spool files (pipelines/engagement/spool.py): how far each is loaded.
create table if not exists event_spool (
    file varchar primary key,           -- relative to the project root
    loaded_bytes bigint not null,       -- everything before this offset is loaded
    loaded_lines bigint not null,
    loaded_at timestamp,
);

create table if not exists ingested_files (
    sha256 varchar not null,
    file varchar not null,
    entity varchar not null,
    tag varchar not null default '',
    loaded bigint,
    updated bigint,
    quarantined bigint,
    ingested_at timestamp default current_localtimestamp(),
    primary key (sha256, entity, tag),
);

-- Great Expectations results for every ingested batch (on a sample: ingest/quality.py).
create table if not exists validation_results (
    file varchar not null,
    entity varchar not null,
    expectation varchar not null,
    success boolean not null,
    element_count bigint,
    unexpected_count bigint,
    result json,
    validated_at timestamp default current_localtimestamp(),
    batch_rows bigint,                  -- good rows of the batch; element_count: the sample's
    note varchar,                       -- 'sample of N of M rows' | 'all N rows'
);
-- Databases created before the suite ran on a sample gain the two columns.
alter table validation_results add column if not exists batch_rows bigint;
alter table validation_results add column if not exists note varchar;

-- One row per sequence and contact: a contact is never enrolled twice in the same sequence.
create table if not exists enrollments (
    sequence varchar not null,
    contact_id varchar not null,
    enrollment_id varchar not null,
    enrolled_on date not null,
    enrolled_at timestamp not null,
    status varchar not null,            -- active | exited | holdout (SPEC 11: never contacted)
    exit_reason varchar,                -- completed | replied | unsubscribed | bounced | condition | manual
    exited_on date,
    exited_at timestamp,
    manual boolean not null default false,
    email varchar,                      -- lower(email) at enrolment: prevent_duplicate_emails
    primary key (sequence, contact_id),
);

-- issue 13: the enrolment's experiment bucket, 0-9999, fixed at enrolment from (sequence,
-- contact): md5 in portable SQL (pipelines/tick/experiments.py has the same in Python)
alter table enrollments add column if not exists bucket integer;

-- issue 12: the date a paused enrolment resumes ('infinity': until `resume`); null: not paused
alter table enrollments add column if not exists paused_until date;

-- Pauses (SPEC 11) as intervals, so that any run, catch-up or daily, sees at each occurrence
-- whether the enrolment was paused then: from paused_at, until the first occurrence on or
-- after until_on (a local date of the sequence) and before resumed_at. contact_id null: the
-- whole sequence (its entries stop too). Out-of-office replies pause without a row here
-- (pipelines/tick/pause.py derives them from `email_auto_replied` activities).
create table if not exists pauses (
    sequence varchar not null,
    contact_id varchar,
    paused_at timestamp not null,
    until_on date,
    resumed_at timestamp,
    paused_by varchar,
    resumed_by varchar,
);

-- Every step decision; the idempotency key is the send step's outbox key.
create table if not exists actions (
    idempotency_key varchar primary key,
    sequence varchar not null,
    contact_id varchar not null,
    enrollment_id varchar not null,
    step varchar not null,
    step_index integer,                 -- the step's position in the file when decided
    day integer not null,
    action varchar not null,            -- email | email_reminder | follow_up | call_reminder | sms
    occurrence_on date not null,
    occurrence_at timestamp not null,
    status varchar not null,            -- due | skipped | sent | deferred | held | failed | unknown | expired
    decided_status varchar,             -- due | skipped as the tick decided: never changes, so
                                        -- later decisions do not depend on the send step
    message_id varchar,
    error varchar,
    attempts integer not null default 0,
    decided_at timestamp,
    claimed_at timestamp,
    finished_at timestamp,
    sender_id varchar,                  -- set by send: the user whose mailbox sent (daily limit)
    subject varchar,                    -- set by send: the subject as sent (threads reply to it)
);

-- issue 13: the variant of an email step with variants, fixed at the decision from the
-- enrolment's bucket (sql/tick/int_step_actions.sql); null for every other action
alter table actions add column if not exists variant varchar;

create table if not exists tasks (
    task_id varchar primary key,        -- the action's idempotency key
    owner_id varchar not null,
    sequence varchar not null,
    contact_id varchar not null,
    step varchar not null,
    kind varchar not null,              -- email_reminder | follow_up | call_reminder
    due_on date not null,
    title varchar,
    body varchar,
    done boolean not null default false,
    done_at timestamp,
    created_at timestamp default current_localtimestamp(),
);

-- issue 12: a rep snoozes a task until a date (hidden from the queue until then)
alter table tasks add column if not exists snoozed_until date;

-- Occurrences already processed: a run processes each (sequence, date) once.
create table if not exists occurrences (
    sequence varchar not null,
    occurrence_on date not null,
    occurrence_at timestamp not null,
    run_id varchar not null,
    entries bigint,
    exits bigint,
    due bigint,
    skipped bigint,
    processed_at timestamp default current_localtimestamp(),
    primary key (sequence, occurrence_on),
);

-- What every run did.
create table if not exists runs (
    run_id varchar primary key,
    kind varchar not null,              -- tick | send | ingest
    as_of timestamp,
    started_at timestamp,
    finished_at timestamp,
    stats json,
);

-- Tick state (pipelines/tick/state.py). Derived activity properties of every contact with activity,
-- maintained incrementally: as of tick_state.properties_as_of, the latest instant processed.
create table if not exists contact_activity_state (
    contact_id varchar primary key,
    last_activity_type varchar,
    last_activity_at timestamp,
    last_contacted_type varchar,
    last_contacted_at timestamp,
    unsubscribed_at timestamp,          -- first `unsubscribed` or `email_complained` activity
    bounced_at timestamp,               -- first `email_bounced` activity
    last_replied_at timestamp,          -- latest `email_replied` activity
);

-- One row (id = 1): the instant contact_activity_state reflects, and how many activities
-- (with a contact_id, occurred_at <= that instant) it was built from: a different count at
-- the next run means late-ingested activities, and the state is rebuilt.
create table if not exists tick_state (
    id integer primary key,
    properties_as_of timestamp,
    activities_counted bigint,
);

-- When each sequence was first seen by a run, and its first occurrence date.
create table if not exists sequence_state (
    sequence varchar primary key,
    first_seen_at timestamp not null,
    first_occurrence_on date not null,
);

-- Manual enrolment requests (pipelines/tick/enrollment.py), resolved at the sequence's next
-- occurrence at or after requested_at.
create table if not exists manual_requests (
    sequence varchar not null,
    contact_id varchar not null,
    requested_at timestamp not null,
    status varchar not null,            -- pending | enrolled | rejected | cancelled
    reason varchar,                     -- why rejected/cancelled
    resolved_on date,
    resolved_at timestamp,
    primary key (sequence, contact_id, requested_at),
);

-- The contact-mode rule of SPEC 5, defined once for every model that derives
-- last_contacted_mode (sql/int_contact_properties.sql, sql/tick/). Temp macros: defined per
-- connection and never written to the file, so opening the database for a preview writes
-- nothing.
create or replace temp macro is_contact_mode(activity_type) as
    activity_type in (
        'email_sent', 'email_opened', 'email_clicked', 'email_replied',
        'call_incoming', 'call_outgoing', 'chat'
    )
    or starts_with(activity_type, 'sales_activity:');

-- A machine open (SPEC 10): an `email_opened` whose detail says `"machine": true` (a privacy
-- proxy such as Apple Mail Privacy Protection, or a security scanner, fetched the pixel). Kept
-- in `activities`, left out of `enrollment.opened_*` and of open rates. `detail` is free text
-- for imported rows, so anything that is not a JSON object is a human open.
create or replace temp macro is_machine_open(activity_type, detail) as
    activity_type = 'email_opened'
    and coalesce(
        case when json_valid(detail) then json_extract_string(detail, '$.machine') = 'true' end,
        false
    );

create or replace temp macro contacted_mode(activity_type) as
    case
        when activity_type = 'email_sent' then 'No reply'
        when activity_type in ('email_opened', 'email_clicked') then 'Opened but no reply'
        when activity_type = 'email_replied' then 'Replied'
        when activity_type = 'call_incoming' then 'Incoming call'
        when activity_type = 'call_outgoing' then 'Outgoing call'
        when activity_type = 'chat' then 'Chat'
        when starts_with(activity_type, 'sales_activity:') then 'Sales Activity'
        else 'Not yet contacted'
    end;

-- The mailbox door's IMAP cursors (SPEC 10): the last UID read per user, server, account and
-- folder; a changed UIDVALIDITY restarts from 0. Advanced in the load's transaction.
create table if not exists mailbox_cursors (
    user_id varchar not null,
    host varchar not null,
    username varchar not null,
    folder varchar not null,
    uidvalidity bigint not null,
    last_uid bigint not null,
    polled_at timestamp not null,
    primary key (user_id, host, username, folder),
);

-- Compiled conditions kept between runs (pipelines/compile/cache.py): keyed by a hash of the
-- text, its scope, the columns and types it can see and the compiler's version; only the
-- entries the latest compile used are kept. A cache: deleting it only costs a recompile.
create table if not exists compiled_conditions (
    key varchar primary key,
    source varchar not null,
    sql varchar not null,
    columns varchar not null,
    uses_now boolean not null,
);
-- the activity functions a condition calls (JSON list; pipelines/compile/activity.py)
alter table compiled_conditions add column if not exists activities varchar;
