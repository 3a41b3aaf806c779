-- "Assumed sent" (docs/decisions.md, Backtest): after the occurrence of $sequence on
-- $occurrence_on, every email action it decided `due` becomes `sent` one second after the
-- occurrence's instant, with the Message-ID the send step would give it (sha256 of the
-- idempotency key @ the sender's domain, pipelines/channels/message.py; $domains maps each
-- email step to that domain), and gets the `email_sent` activity the send step would write
-- (so later occurrences see it in last_contacted_*, last_activity_*, activity functions).

update actions set
    status = 'sent',
    message_id = case
        when d.domain is not null
            then '<' || left(sha256(idempotency_key), 32) || '@' || d.domain || '>'
    end,
    finished_at = occurrence_at + interval 1 second
from (
    select unnest($steps::varchar[]) as step, unnest($domains::varchar[]) as domain
) as d
where actions.sequence = $sequence
  and actions.occurrence_on = $occurrence_on
  and actions.action = 'email'
  and actions.status = 'due'
  and actions.step = d.step;

insert into activities (
    activity_id, contact_id, email, type, occurred_at, sequence, step, message_id
)
select
    'backtest:' || actions.idempotency_key,
    actions.contact_id,
    contacts.email,
    'email_sent',
    actions.finished_at,
    actions.sequence,
    actions.step,
    actions.message_id,
from actions
left join contacts using (contact_id)
where actions.sequence = $sequence
  and actions.occurrence_on = $occurrence_on
  and actions.action = 'email'
  and actions.status = 'sent';
