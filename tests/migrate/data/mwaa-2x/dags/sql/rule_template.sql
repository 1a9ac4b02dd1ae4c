-- MIG011: removed context variables in a template file
SELECT *
FROM events
WHERE day BETWEEN '{{ prev_ds }}'
  AND '{{ next_execution_date }}'
