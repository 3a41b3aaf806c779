-- Manual enrol requests pending at the occurrence are resolved by its entries: enrolled, or
-- rejected with the first entry rule the contact failed (tick_entries.reason). Batched
-- (several sequences of one instant in one tick_entries), each row carries its sequence and
-- occurrence.
{% set batched = batched | default(false) %}
update manual_requests set
    status = case when entries.reason is null then 'enrolled' else 'rejected' end,
    reason = entries.reason,
    resolved_on = {{ 'entries.occurrence_on' if batched else '$occurrence_on' }},
    resolved_at = {{ 'entries.occurrence_at' if batched else '$occurrence_at' }}
from tick_entries as entries
where manual_requests.sequence = {{ 'entries.sequence' if batched else '$sequence' }}
  and manual_requests.contact_id = entries.contact_id
  and manual_requests.status = 'pending'
  and manual_requests.requested_at <= {{ 'entries.occurrence_at' if batched else '$occurrence_at' }}
