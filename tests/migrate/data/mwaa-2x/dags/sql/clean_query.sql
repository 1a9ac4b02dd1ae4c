SELECT *
FROM orders
WHERE order_date = '{{ ds }}'
  AND loaded_at < '{{ data_interval_end }}'
  {% if params.region %}AND region = '{{ params.region }}'{% endif %}
