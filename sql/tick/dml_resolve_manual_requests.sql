-- Manual enrol requests pending at the occurrence are resolved by its entries: enrolled, or
-- rejected with the first entry rule the contact failed (tick_entries.reason).
update manual_requests set
    status = case when entries.reason is null then 'enrolled' else 'rejected' end,
    reason = entries.reason,
    resolved_on = $occurrence_on,
    resolved_at = $occurrence_at
from tick_entries as entries
where manual_requests.sequence = $sequence
  and manual_requests.contact_id = entries.contact_id
  and manual_requests.status = 'pending'
  and manual_requests.requested_at <= $occurrence_at
