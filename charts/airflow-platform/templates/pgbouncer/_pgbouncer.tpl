{{/*
The [pgbouncer] section of pgbouncer.ini the chart generates (pgbouncer.configSecret ""). Pool
sizes: explicit values, else the environment class's (its `pgbouncer` entry in
files/environment-classes.json). [databases] and the auth_file come from the database Secret at pod
start.
*/}}
{{- define "airflow-platform.pgbouncerIni" -}}
{{- $p := .Values.pgbouncer -}}
{{- $preset := (fromYaml (include "airflow-platform.class" .)).pgbouncer -}}
{{- $pool := $p.defaultPoolSize | default $preset.pool | int -}}
{{- $reserve := max 1 (div $pool 4) | int -}}
[pgbouncer]
listen_addr = 0.0.0.0
listen_port = {{ $p.port | int }}
unix_socket_dir =
pidfile =
logfile =
auth_type = scram-sha-256
auth_file = /etc/pgbouncer/userlist.txt
pool_mode = transaction
default_pool_size = {{ $pool }}
reserve_pool_size = {{ $reserve }}
max_db_connections = {{ add $pool $reserve }}
max_client_conn = {{ $p.maxClientConn | default $preset.clients | int }}
server_tls_sslmode = {{ $p.serverTlsSslmode }}
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
{{- end -}}
