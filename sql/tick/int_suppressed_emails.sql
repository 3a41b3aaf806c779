-- Addresses that unsubscribed or bounced under any contact of `contact`
-- (int_occurrence_contact.sql): a duplicate contact record with the same lower(email) must
-- not bring the address back. It depends on the instant only, not on the sequence: a batched
-- layer materializes it once (tick_suppressed_emails) for all its entries.
select
    __email_key as email,
    bool_or(__unsubscribed) as unsubscribed,
    bool_or(__bounced) as bounced,
from contact
where (__unsubscribed or __bounced) and __email_key is not null
group by all
