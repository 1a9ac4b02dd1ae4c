{{/*
The Airflow configuration, written once and rendered as the environment of every
component. Input of each template: (dict "root" $ "component" "<component>").
*/}}

{{/* The MWAA log type a component's logs belong to (logging.<type>). */}}
{{- define "airflow-platform.logType" -}}
{{- get (dict "scheduler" "scheduler" "triggerer" "scheduler" "migrations" "scheduler" "dag-processor" "dagProcessing" "api-server" "webServer" "worker" "worker") .component -}}
{{- end -}}

{{/* MWAA's log group name of a log type: airflow-<env>-<Type>. */}}
{{- define "airflow-platform.logGroup" -}}
{{- $suffix := get (dict "scheduler" "Scheduler" "dagProcessing" "DAGProcessing" "webServer" "WebServer" "worker" "Worker" "task" "Task") .type -}}
{{- printf "airflow-%s-%s" .root.Values.environmentName $suffix -}}
{{- end -}}

{{/*
The configuration users may change: MWAA's defaults and what the chart derives from its
values, with airflowConfigurationOptions merged over it. Output: YAML {"section.key": "value"}.
*/}}
{{- define "airflow-platform.airflowConfig" -}}
{{- $v := .root.Values -}}
{{- /* Celery: acks late, prefetch 1 and no soft shutdown timeout make a worker's SIGTERM a
drain (warm shutdown) that loses no message (airflow-platform scaling celery-env); the
worker imports airflow_platform.scaling.worker_shutdown, which lets its open SQS long poll
return and hands back what it received before the process exits.
Latency: kombu polls SQS every 0.2 s instead of 1 s, and the task supervisor checks its
task every second instead of five; together they make a 200-task fan-out ~2-4x faster. */ -}}
{{- $level := (get $v.logging (include "airflow-platform.logType" .)).level -}}
{{- $cfg := dict
  "core.load_examples" "False"
  "core.dagbag_import_timeout" "30"
  "dag_processor.refresh_interval" "300"
  "dag_processor.min_file_process_interval" "30"
  "dag_processor.dag_file_processor_timeout" "50"
  "scheduler.task_queued_timeout" "1800"
  "scheduler.enable_health_check" "True"
  "scheduler.scheduler_health_check_server_port" "8974"
  "celery.worker_concurrency" (include "airflow-platform.tasksPerWorker" .root)
  "celery.task_acks_late" "True"
  "celery.worker_prefetch_multiplier" "1"
  "celery.extra_celery_config" `{"worker_soft_shutdown_timeout": 0, "imports": ["airflow_platform.scaling.worker_shutdown"]}`
  "celery.operation_timeout" (toString $v.celery.operationTimeout)
  "celery_broker_transport_options.region" $v.aws.region
  "celery_broker_transport_options.visibility_timeout" (toString ($v.celery.visibilityTimeout | int))
  "celery_broker_transport_options.is_secure" (ternary "True" "False" $v.celery.isSecure)
  "celery_broker_transport_options.polling_interval" "0.2"
  "workers.min_heartbeat_interval" "1"
  "api.workers" (toString ($v.apiServer.workers | int))
  "logging.logging_level" $level
  "metrics.statsd_prefix" $v.metrics.statsd.prefix
-}}
{{- $cfg = merge $cfg (fromYaml (include "airflow-platform.authConfig" .root)) -}}
{{- if $v.ingress.host -}}
{{- $_ := set $cfg "api.base_url" (printf "%s://%s" (ternary "https" "http" (ne $v.ingress.certificateArn "")) $v.ingress.host) -}}
{{- end -}}
{{- with fromYaml (include "airflow-platform.secretsBackend" .root) -}}
{{- $_ := set $cfg "secrets.backend" .backend -}}
{{- $_ := set $cfg "secrets.backend_kwargs" .backend_kwargs -}}
{{- end -}}
{{- toYaml (merge (deepCopy $v.airflowConfigurationOptions) $cfg) -}}
{{- end -}}

{{/* AIRFLOW__SECTION__KEY of a "section.key". */}}
{{- define "airflow-platform.configEnvName" -}}
{{- printf "AIRFLOW__%s" (. | replace "." "__" | upper) -}}
{{- end -}}

{{/* An env entry read from an existing Secret. Input: (list NAME secretName key). */}}
{{- define "airflow-platform.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 | quote }}
      key: {{ index . 2 | quote }}
{{- end -}}

{{/* The connection Airflow uses: through PgBouncer when it runs (never for migrations). */}}
{{- define "airflow-platform.databaseSecret" -}}
{{- $v := .root.Values -}}
{{- if and $v.pgbouncer.enabled (ne .component "migrations") -}}
{{- toJson (list $v.pgbouncer.connectionSecret.secretName $v.pgbouncer.connectionSecret.key) -}}
{{- else -}}
{{- toJson (list $v.database.existingSecret $v.database.secretKey) -}}
{{- end -}}
{{- end -}}

{{/*
The environment of every Airflow container. Platform-owned settings first (users cannot
override them: the schema refuses those keys), then the mergeable configuration.
*/}}
{{- define "airflow-platform.env" -}}
{{- $v := .root.Values -}}
{{- $db := fromJsonArray (include "airflow-platform.databaseSecret" .) -}}
- name: AIRFLOW_HOME
  value: /opt/airflow
- name: AIRFLOW_CONFIG
  # Configuration comes from this environment only; no airflow.cfg is read or written.
  value: /dev/null
- name: AIRFLOW_ENV_NAME
  value: {{ $v.environmentName | quote }}
- name: AIRFLOW_PLATFORM_SYNC_ROOT
  value: /opt/airflow/sync
- name: AIRFLOW_PLATFORM_REQUIREMENTS_ON_FAILURE
  value: {{ $v.requirements.onFailure }}
- name: AIRFLOW_PLATFORM_PACKAGES_DIR
  value: /opt/airflow/packages
- name: AIRFLOW_PLATFORM_WHEEL_CACHE
  value: /opt/airflow/wheel-cache
- name: AWS_REGION
  value: {{ $v.aws.region }}
- name: AWS_DEFAULT_REGION
  value: {{ $v.aws.region }}
- name: PYTHONUNBUFFERED
  value: "1"
- name: AIRFLOW__CORE__EXECUTOR
  value: CeleryExecutor
- name: AIRFLOW__CORE__DAGS_FOLDER
  value: /opt/airflow/sync/dags/current
- name: AIRFLOW__CORE__PLUGINS_FOLDER
  value: /opt/airflow/sync/plugins/current
- name: AIRFLOW__CORE__EXECUTION_API_SERVER_URL
  value: {{ printf "%s/execution/" (include "airflow-platform.apiServerUrl" .root) }}
{{ include "airflow-platform.secretEnv" (list "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" (index $db 0) (index $db 1)) }}
{{ include "airflow-platform.secretEnv" (list "AIRFLOW__CORE__FERNET_KEY" $v.secrets.fernetKey.secretName $v.secrets.fernetKey.key) }}
{{ include "airflow-platform.secretEnv" (list "AIRFLOW__API__SECRET_KEY" $v.secrets.apiSecretKey.secretName $v.secrets.apiSecretKey.key) }}
{{ include "airflow-platform.secretEnv" (list "AIRFLOW__API_AUTH__JWT_SECRET" $v.secrets.jwtSecret.secretName $v.secrets.jwtSecret.key) }}
- name: AIRFLOW__CELERY__BROKER_URL
  # Credentials come from IRSA; the queue URL from predefined_queues.
  value: sqs://
- name: AIRFLOW__CELERY__WORKER_ENABLE_REMOTE_CONTROL
  value: "False"
- name: AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES
  value: {{ toJson (dict "default" (dict "url" $v.celery.sqsQueueUrl)) | quote }}
{{- $task := $v.logging.task }}
{{- if and $v.logging.cloudwatch.enabled $task.enabled }}
- name: AIRFLOW__LOGGING__REMOTE_LOGGING
  value: "True"
- name: AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER
  value: {{ printf "cloudwatch://arn:aws:logs:%s:%s:log-group:%s" $v.aws.region (include "airflow-platform.accountId" .root) (include "airflow-platform.logGroup" (dict "root" .root "type" "task")) }}
{{- else }}
- name: AIRFLOW__LOGGING__REMOTE_LOGGING
  value: "False"
{{- end }}
- name: AIRFLOW__METRICS__STATSD_ON
  value: {{ ternary "True" "False" $v.metrics.statsd.enabled | quote }}
{{- if $v.metrics.statsd.enabled }}
- name: AIRFLOW__METRICS__STATSD_HOST
{{- if $v.metrics.statsd.host }}
  value: {{ $v.metrics.statsd.host | quote }}
{{- else }}
  valueFrom:
    fieldRef:
      fieldPath: status.hostIP
{{- end }}
- name: AIRFLOW__METRICS__STATSD_PORT
  value: {{ $v.metrics.statsd.port | int | quote }}
{{- end }}
{{- range $key, $value := fromYaml (include "airflow-platform.airflowConfig" .) }}
- name: {{ include "airflow-platform.configEnvName" $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
