-- The contact relation {{ relation }} with one generated column per activity function its
-- conditions call (activity_count, last_activity_at: pipelines/compile/activity.py), as of
-- the occurrence instant $occurrence_at (t). `features` lists each distinct call once; a
-- feature's column is ActivityFeature.column. Set-based: ONE aggregate over the activities
-- of the named types at or before t (and within the widest window), grouped by contact and
-- LEFT JOINed — no subquery per contact. Read from `activities` at t itself, so a window is
-- exactly (t - interval, t] at every occurrence whatever the run's shape (daily, catch-up,
-- preview): an activity ages out without any new activity of the contact. Machine opens are
-- not opens (SPEC 10, as for enrollment.opened_*). Included by int_occurrence_contact.sql;
-- rendered by the preview over its contact_state.

{% set types = features | map(attribute='type') | unique | list %}
{% set windows = features | map(attribute='hours') | list %}

with

typed_activities as (
    select contact_id, type, occurred_at
    from activities
    where contact_id is not null
      and occurred_at <= $occurrence_at::timestamp
      and type in ({{ types | map('literal') | join(', ') }})
      {% if none not in windows %}
      and occurred_at > $occurrence_at::timestamp - to_hours({{ windows | max | int }})
      {% endif %}
      {% if 'email_opened' in types %}
      and not is_machine_open(type, detail)  -- sql/schema.sql: human opens only
      {% endif %}
),

activity_features as (
    select
        contact_id,
        {% for f in features %}
        {{ 'count(*)' if f.kind == 'count' else 'max(occurred_at)' }} filter (
            where type = {{ f.type | literal }}
            {% if f.hours is not none %}
            and occurred_at > $occurrence_at::timestamp - to_hours({{ f.hours | int }})
            {% endif %}
        ) as {{ f.column | ident }},
        {% endfor %}
    from typed_activities
    group by contact_id
),

final as (
    select
        contact.*,
        {% for f in features %}
        {% if f.kind == 'count' %}
        coalesce(activity_features.{{ f.column | ident }}, 0) as {{ f.column | ident }},
        {% else %}
        activity_features.{{ f.column | ident }},
        {% endif %}
        {% endfor %}
    from {{ relation }} as contact
    left join activity_features using (contact_id)
)

select * from final
