{#-
  What the live rows need to know of a loaded stream's table: its `columns` (lower case) and whether
  it holds `one_row_per_id` by construction (a primary key or a unique index on `id` alone, as
  target-postgres makes from the stream's key and upserts on). Such a table's live rows need no
  ranking per id, a sort of the whole table (4 times the cost of reading the 200,000 recipients of
  the models benchmark). Known of PostgreSQL's catalogue only: Snowflake does not enforce keys, and
  elsewhere the rows are ranked. Nothing while dbt only parses.
-#}
{% macro vobiz_source_table(table) -%}
    {%- if not execute -%}
        {{ return({'columns': [], 'one_row_per_id': false}) }}
    {%- endif -%}
    {{ return(adapter.dispatch('vobiz_source_table', 'vobiz')(source('vobiz', table))) }}
{%- endmacro %}

{% macro default__vobiz_source_table(relation) -%}
    {%- set columns = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- do columns.append(column.name | lower) -%}
    {%- endfor -%}
    {{ return({'columns': columns, 'one_row_per_id': false}) }}
{%- endmacro %}

{#- On PostgreSQL both in one catalogue query, not dbt's get_columns_in_relation (an
    information_schema query) and another for the key: one statement per staging model. -#}
{% macro postgres__vobiz_source_table(relation) -%}
    {%- set query -%}
        select
            lower(attribute.attname) as column_name,
            exists (
                select 1
                from pg_index as keys
                inner join pg_attribute as key_column
                    on key_column.attrelid = keys.indrelid and key_column.attnum = keys.indkey[0]
                where keys.indrelid = attribute.attrelid
                    and keys.indisunique
                    and keys.indnkeyatts = 1
                    and keys.indpred is null
                    and key_column.attname = 'id'
            ) as one_row_per_id
        from pg_attribute as attribute
        where attribute.attrelid = to_regclass('{{ relation.include(database=false) }}')
            and attribute.attnum > 0
            and not attribute.attisdropped
        order by attribute.attnum
    {%- endset -%}
    {%- set found = run_query(query) -%}
    {{ return({
        'columns': found.columns[0].values() | map('string') | list,
        'one_row_per_id': true in found.columns[1].values(),
    }) }}
{%- endmacro %}

{#-
  The live rows of a loaded stream, one per `id`, whatever the loader did.

  target-postgres upserts (one row per id) or appends (one row per extraction); with
  `add_record_metadata` it adds `_sdc_extracted_at`, `_sdc_sequence` and `_sdc_deleted_at`
  (a row ACTIVATE_VERSION retired). The latest extraction of each id wins, and rows the
  latest one retired are left out; a loader that adds no metadata columns leaves every
  row live, one per id. Each row gets `vobiz_loaded_at` (`vobiz_loaded_at_column`).
  A table whose key holds one row per id (`vobiz_source_table`) needs no ranking.
-#}
{% macro vobiz_live_rows(table) -%}
    {%- set source_table = vobiz_source_table(table) -%}
    {%- set columns = source_table['columns'] -%}
    {%- set order = [] -%}
    {%- for name in ['_sdc_extracted_at', '_sdc_sequence', '_sdc_batched_at'] if name in columns -%}
        {%- do order.append(name ~ ' desc nulls last') -%}
    {%- endfor -%}
    {%- if source_table['one_row_per_id'] %}
    select source_rows.*, {{ vobiz_loaded_at_column(columns) }} as vobiz_loaded_at
    from {{ source('vobiz', table) }} as source_rows
    {%- if '_sdc_deleted_at' in columns %}
    where _sdc_deleted_at is null
    {%- endif %}
    {%- else %}
    select *
    from (
        select
            source_rows.*,
            {{ vobiz_loaded_at_column(columns) }} as vobiz_loaded_at,
            row_number() over (
                partition by id order by {{ order | join(', ') if order else 'id' }}
            ) as vobiz_row_number
        from {{ source('vobiz', table) }} as source_rows
    ) as ranked
    where vobiz_row_number = 1
    {%- if '_sdc_deleted_at' in columns %}
        and _sdc_deleted_at is null
    {%- endif %}
    {%- endif %}
{%- endmacro %}

{#-
  When the loader wrote a row: `_sdc_batched_at` (target-postgres, target-snowflake), else
  `_sdc_extracted_at` (when the tap read it: loaders that stamp no batch). The incremental
  marts take again every row loaded since their last build by it, so a status the tap re-read
  months after the message reaches them. Null when the loader writes neither: those marts then
  take every row on each run.
-#}
{% macro vobiz_loaded_at_column(columns) -%}
    {%- if '_sdc_batched_at' in columns -%}
        cast(_sdc_batched_at as {{ dbt.type_timestamp() }})
    {%- elif '_sdc_extracted_at' in columns -%}
        cast(_sdc_extracted_at as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast(null as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}
