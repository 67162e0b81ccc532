-- What a reviewer decides: every enquiry matched only partially, with its candidate persons
-- (best five), and every pair of patient records that may be one person but was not merged
-- automatically. Each row shows both sides' standardised details and why the pair scored as
-- it did. Decided items leave the queue on the next build (decisions: docs/identity.md).

with settings as (
    select review_probability, auto_link_probability
    from {{ source('organisation', 'settings') }}
),

enquiry_items as (
    select
        'enquiry' as item_kind,
        enquiries.enquiry_key as subject_key,
        enquiries.enquiry_type as subject_kind,
        enquiries.org_location_id,
        enquiries.occurred_at,
        pairs.right_key as candidate_patient_key,
        persons.person_id as candidate_person_id,
        pairs.match_probability,
        pairs.match_weight,
        pairs.explanation,
        row_number() over (
            partition by enquiries.enquiry_key order by pairs.match_weight desc, pairs.right_key
        ) as candidate_rank
    from {{ ref('identity_enquiries') }} as enquiries
    inner join {{ ref('identity_enquiry_pairs') }} as pairs on pairs.left_key = enquiries.enquiry_key
    inner join {{ ref('identity_patient_persons') }} as persons on persons.patient_key = pairs.right_key
    where enquiries.match_outcome = 'partial'
),

patient_items as (
    select
        'patient_pair' as item_kind,
        pairs.left_key as subject_key,
        'patient' as subject_kind,
        left_traits.org_location_id,
        cast(null as timestamptz) as occurred_at,
        pairs.right_key as candidate_patient_key,
        right_person.person_id as candidate_person_id,
        pairs.match_probability,
        pairs.match_weight,
        pairs.explanation,
        1 as candidate_rank
    from {{ ref('identity_patient_pairs') }} as pairs
    cross join settings
    inner join {{ ref('identity_patient_persons') }} as left_person on left_person.patient_key = pairs.left_key
    inner join {{ ref('identity_patient_persons') }} as right_person on right_person.patient_key = pairs.right_key
    inner join {{ ref('identity_patient_traits') }} as left_traits on left_traits.patient_key = pairs.left_key
    left join {{ ref('identity_review_decisions') }} as decided
        on decided.action in ('not_same', 'merge')
        and least(decided.subject_key, decided.object_key) = least(pairs.left_key, pairs.right_key)
        and greatest(decided.subject_key, decided.object_key) = greatest(pairs.left_key, pairs.right_key)
    -- Family members share a phone, an address and often an email: a pair whose names
    -- disagree is not a plausible duplicate and would only bury the real ones.
    where pairs.match_probability >= settings.review_probability
      and pairs.names_agree
      and left_person.person_id <> right_person.person_id
      and decided.decision_id is null
),

items as (
    select * from enquiry_items where candidate_rank <= 5
    union all
    select * from patient_items
)

select
    md5(items.item_kind || ':' || items.subject_key) as review_item_id,
    items.item_kind,
    items.subject_key,
    items.subject_kind,
    items.org_location_id,
    items.occurred_at,
    items.candidate_rank,
    items.candidate_patient_key,
    items.candidate_person_id,
    items.match_probability,
    items.match_weight,
    items.explanation,
    coalesce(enquiry.first_name, subject_patient.first_name) as subject_first_name,
    coalesce(enquiry.last_name, subject_patient.last_name) as subject_last_name,
    coalesce(enquiry.birth_date, subject_patient.birth_date) as subject_birth_date,
    coalesce(enquiry.email, subject_patient.email) as subject_email,
    coalesce(enquiry.phone_1, subject_patient.phone_1) as subject_phone,
    candidate.first_name as candidate_first_name,
    candidate.last_name as candidate_last_name,
    candidate.birth_date as candidate_birth_date,
    candidate.email as candidate_email,
    candidate.phone_1 as candidate_phone,
    candidate.connection_id as candidate_connection_id
from items
left join {{ ref('identity_enquiry_traits') }} as enquiry on enquiry.enquiry_key = items.subject_key
left join {{ ref('identity_patient_traits') }} as subject_patient on subject_patient.patient_key = items.subject_key
left join {{ ref('identity_patient_traits') }} as candidate on candidate.patient_key = items.candidate_patient_key
