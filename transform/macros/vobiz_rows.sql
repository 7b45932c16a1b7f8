{#-
  The live rows of a loaded stream, one per `id`, whatever the loader did.

  target-postgres upserts (one row per id) or appends (one row per extraction); with
  `add_record_metadata` it adds `_sdc_extracted_at`, `_sdc_sequence` and `_sdc_deleted_at`
  (a row ACTIVATE_VERSION retired). The latest extraction of each id wins, and rows the
  latest one retired are left out; a loader that adds no metadata columns leaves every
  row live, one per id.
-#}
{% macro vobiz_live_rows(table) -%}
    {%- set relation = source('vobiz', table) -%}
    {%- set columns = [] -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- do columns.append(column.name | lower) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set order = [] -%}
    {%- for name in ['_sdc_extracted_at', '_sdc_sequence', '_sdc_batched_at'] if name in columns -%}
        {%- do order.append(name ~ ' desc nulls last') -%}
    {%- endfor -%}
    select *
    from (
        select
            source_rows.*,
            row_number() over (
                partition by id order by {{ order | join(', ') if order else 'id' }}
            ) as vobiz_row_number
        from {{ relation }} as source_rows
    ) as ranked
    where vobiz_row_number = 1
    {%- if '_sdc_deleted_at' in columns %}
        and _sdc_deleted_at is null
    {%- endif %}
{%- endmacro %}
